"""The application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, ClassVar, Final

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import adapters.errors
import audit.errors
import broker.errors
import consent.errors
import schemas.errors
from broker._gc import tuned_gc
from broker._http1 import ExchangeProtocol
from broker.exchange import ExchangeResponse
from broker.logs import configure_logging, get_logger
from broker.problems import PROBLEM_MEDIA_TYPE, InternalError, Problem, problem_body
from broker.routes import auditor, citizen, consent_requests, exchange, meta
from broker.runtime import Broker
from broker.settings import Settings

__all__ = ["SERVER_OPTIONS", "ExchangeApp", "create_app", "create_served_app"]

#: uvicorn's options for the broker, however ``simpul serve`` runs it (one process, a worker of
#: its own supervisor, or uvicorn's supervisor where ``exec`` is not POSIX): no access log (the
#: audit log records every exchange; logs are for operators) and no WebSocket protocol (the
#: broker serves none, and uvicorn's would cost each process ≈4 MB); uvicorn's ``httptools``
#: protocol, which answers an exchange past the ASGI layers (:mod:`broker._http1`).
SERVER_OPTIONS: Final[Mapping[str, Any]] = MappingProxyType(
    {"access_log": False, "ws": "none", "http": ExchangeProtocol}
)

_log = get_logger("simpul.http")

_ERROR_BASES: tuple[type[Exception], ...] = (
    broker.errors.Error,
    consent.errors.Error,
    schemas.errors.Error,
    adapters.errors.Error,
    audit.errors.Error,
)


class _BadRequestBody(broker.errors.BadRequest):
    """A body FastAPI could not parse; the detail names where, never the submitted values."""


def _problem_response(problem: Problem, request: Request) -> Response:
    xroad_id = request.headers.get("x-road-id")
    headers = {"X-Road-Error": problem.problem_type}
    if xroad_id:
        headers["X-Road-Id"] = xroad_id[:64]
    return Response(
        content=problem_body(problem, instance=xroad_id),
        status_code=problem.status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, Problem):  # pragma: no cover - registered for Problem types only
        raise exc
    _log.info("request_refused", reason=exc.problem_type, path=request.url.path)
    return _problem_response(exc, request)


class _HttpProblem(Exception):
    """Starlette's own refusals (no such route, wrong method, body too large) as problems."""

    _TYPES: ClassVar[dict[int, str]] = {
        404: "not-found",
        405: "method-not-allowed",
        413: "content-too-large",
    }

    def __init__(self, exc: StarletteHTTPException) -> None:
        self.status = exc.status_code
        self.problem_type = self._TYPES.get(exc.status_code, "http-error")
        try:
            self.title = HTTPStatus(exc.status_code).phrase
        except ValueError:  # a status with no standard phrase
            self.title = "HTTP error"
        self.detail = self.title
        super().__init__(self.detail)


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for it only
        raise exc
    response = _problem_response(_HttpProblem(exc), request)
    if exc.headers:  # 405 names the allowed methods
        response.headers.update(exc.headers)
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    """Anything no other handler took, as a problem: a database that cannot answer now (its
    drivers' and SQLAlchemy's OperationalError: a lock not had in time, a lost connection) is
    a 503 that may be retried; anything else a 500. Starlette's server-error layer sends this
    and then raises the error again, so the server logs it, with its traceback."""
    if any(cls.__name__ == "OperationalError" for cls in type(exc).__mro__):
        problem: Problem = broker.errors.DatabaseUnavailable(
            "the database cannot answer now; try again shortly"
        )
    else:
        problem = InternalError()
    return _problem_response(problem, request)


async def _validation_error(request: Request, exc: Exception) -> Response:
    # FastAPI's default echoes the submitted input, which may be a NIK; report locations only.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    where = "; ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors[:5])
    return _problem_response(_BadRequestBody(f"invalid request at: {where or 'body'}"), request)


#: The largest request body the broker reads (an exchange query or a consent request is a few
#: hundred bytes; a citizen's decision less). Anything longer is refused with 413 unread.
MAX_BODY_BYTES = 64 * 1024


class _Entry:
    """The app's own first middleware, for every HTTP request but an exchange (pure ASGI).

    It binds the request's ``X-Road-Id`` to every log line the request causes and refuses a
    declared body longer than :data:`MAX_BODY_BYTES` unread; ``POST /r1/{service id}`` gets
    the same from :class:`ExchangeApp`, which answers it before any middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _bind_log_context(scope)
        if await _refused_as_too_long(scope, receive, send):
            return
        await self.app(scope, _bounded(receive), send)


class ExchangeApp(FastAPI):
    """FastAPI, except that ``POST /r1/{service id}`` is answered here, before any layer.

    The exchange needs method, URL, headers and body and returns a signed answer, so FastAPI's
    routing, dependency solving and Request/Response objects (≈300 µs of CPU) and its outer
    layers (error page, body limit, and the OpenTelemetry instrumentation of FastAPI ≥ 0.16x:
    ≈25 µs more, most of it asking whether a tracer is configured) did nothing for it. So
    exchanges are not in FastAPI's own traces, should an operator configure them; every one is
    in the audit log. Refusals are audited and signed by :meth:`ExchangeService.handle`; a bug
    that escapes it is logged and answered with a 500 problem (where the skipped error page
    answered a plain-text 500). The broker's HTTP protocol (:mod:`broker._http1`) calls
    :meth:`answer_exchange` itself for an exchange it reads whole, past uvicorn's ASGI layers.
    ``routes/exchange.py`` keeps the route for the OpenAPI document.
    """

    #: The longest body an exchange may have; :mod:`broker._http1` leaves longer ones to ASGI.
    max_body_bytes: ClassVar[int] = MAX_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _exchange_service(scope) is None:
            await super().__call__(scope, receive, send)
            return
        # The log context is bound by answer_exchange; a refusal here logs nothing.
        if await _refused_as_too_long(scope, receive, send):
            return
        try:
            body = await _read_body(_bounded(receive))
        except broker.errors.ContentTooLarge as exc:
            await _problem_response(exc, Request(scope))(scope, receive, send)
            return
        outcome = await self.answer_exchange(scope, body)
        await _send(send, outcome.status, outcome.headers, outcome.body)

    async def answer_exchange(self, scope: Scope, body: bytes) -> ExchangeResponse:
        """The signed answer to the ``POST /r1/{service id}`` of ``scope``, its body read.

        Binds the request's log context first. A bug that escapes the pipeline is logged and
        answered with a 500 problem (not signed: the pipeline did not finish).
        """
        _bind_log_context(scope)
        service_id = _exchange_service(scope)
        if service_id is None:  # pragma: no cover - both callers check the path first
            raise ValueError("not an exchange")
        running: Broker = self.state.broker
        try:
            return await running.exchange.handle(exchange.exchange_request(scope, service_id, body))
        except Exception:  # noqa: BLE001 - a bug past the pipeline's own net; it is logged
            _log.exception("exchange_crashed", path=scope["path"])
            return _problem_answer(InternalError(), scope)


def _exchange_service(scope: Scope) -> str | None:
    """The service id of a ``POST /r1/{service id}`` request; None for any other."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path[len(_EXCHANGE_PREFIX) :] if path.startswith(_EXCHANGE_PREFIX) else None


async def _refused_as_too_long(scope: Scope, receive: Receive, send: Send) -> bool:
    """Refuse (413, and say so) a declared body too long, unread."""
    if _declared_length(scope) <= MAX_BODY_BYTES:
        return False
    await _problem_response(_too_large(), Request(scope))(scope, receive, send)
    return True


_EXCHANGE_PREFIX = "/r1/"


def _bind_log_context(scope: Scope) -> None:
    """Every log line of this request (this task) carries its ``X-Road-Id``, and nothing older."""
    structlog.contextvars.clear_contextvars()
    for name, value in scope["headers"]:
        if name == b"x-road-id":
            structlog.contextvars.bind_contextvars(xroad_id=value.decode("latin-1")[:64])
            break


def _problem_answer(problem: Problem, scope: Scope) -> ExchangeResponse:
    """What :func:`_problem_response` says, as an unsigned exchange answer."""
    response = _problem_response(problem, Request(scope))
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in response.raw_headers}
    headers.pop("content-length", None)  # each writer states the length itself
    return ExchangeResponse(status=response.status_code, headers=headers, body=bytes(response.body))


async def _send(send: Send, status: int, headers: dict[str, str], content: bytes) -> None:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    raw.append((b"content-length", str(len(content)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": content})


def _declared_length(scope: Scope) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0  # the server refuses a bad one
    return 0


def _bounded(receive: Receive) -> Receive:
    """``receive`` that refuses (ContentTooLarge, a 413 problem) past :data:`MAX_BODY_BYTES`."""
    size = 0

    async def bounded() -> Message:
        nonlocal size
        message = await receive()
        size += len(message.get("body", b""))
        if size > MAX_BODY_BYTES:
            raise _too_large()
        return message

    return bounded


async def _read_body(receive: Receive) -> bytes:
    """The whole request body."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _too_large() -> broker.errors.ContentTooLarge:
    return broker.errors.ContentTooLarge(f"a body may hold at most {MAX_BODY_BYTES} bytes")


def create_app(settings: Settings | None = None, *, tune_gc: bool = False) -> FastAPI:
    """Build the broker's ASGI application; the lifespan owns engines, clients and the writer.

    ``tune_gc``: once started, set the process's garbage collector up for serving (see
    :mod:`broker._gc`); ``simpul serve`` asks for it, through :func:`create_served_app` when it
    runs several workers.
    """
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = await Broker.start(settings)
        app.state.broker = running
        try:
            with tuned_gc() if tune_gc else nullcontext():
                yield
        finally:
            await running.close()

    app = ExchangeApp(
        title="Simpul",
        summary="Consent-gated data exchange between government agencies",
        version="0.1.0",
        lifespan=lifespan,
    )
    for base in _ERROR_BASES:
        app.add_exception_handler(base, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(_Entry)
    app.include_router(meta.router)
    app.include_router(exchange.router)
    app.include_router(consent_requests.router)
    app.include_router(citizen.router)
    app.include_router(auditor.router)
    return app


def create_served_app() -> FastAPI:
    """:func:`create_app` from the environment, for ``simpul serve``: the collector tuned."""
    return create_app(tune_gc=True)
