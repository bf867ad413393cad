"""The application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

import adapters.errors
import audit.errors
import broker.errors
import consent.errors
import schemas.errors
from broker.logs import configure_logging, get_logger
from broker.problems import PROBLEM_MEDIA_TYPE, Problem, problem_body
from broker.routes import auditor, citizen, consent_requests, exchange, meta
from broker.runtime import Broker
from broker.settings import Settings

__all__ = ["create_app"]

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


async def _validation_error(request: Request, exc: Exception) -> Response:
    # FastAPI's default echoes the submitted input, which may be a NIK; report locations only.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    where = "; ".join(".".join(str(p) for p in e.get("loc", ())) for e in errors[:5])
    return _problem_response(_BadRequestBody(f"invalid request at: {where or 'body'}"), request)


class _RequestContext:
    """Bind the request's ``X-Road-Id`` to every log line it causes (pure ASGI, no copying)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            structlog.contextvars.clear_contextvars()
            for name, value in scope["headers"]:
                if name == b"x-road-id":
                    structlog.contextvars.bind_contextvars(xroad_id=value.decode("latin-1")[:64])
                    break
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the broker's ASGI application; the lifespan owns engines, clients and the writer."""
    settings = settings or Settings()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running = await Broker.start(settings)
        app.state.broker = running
        try:
            yield
        finally:
            await running.close()

    app = FastAPI(
        title="Simpul",
        summary="Consent-gated data exchange between government agencies",
        version="0.1.0",
        lifespan=lifespan,
    )
    for base in _ERROR_BASES:
        app.add_exception_handler(base, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(_RequestContext)
    app.include_router(meta.router)
    app.include_router(exchange.router)
    app.include_router(consent_requests.router)
    app.include_router(citizen.router)
    app.include_router(auditor.router)
    return app
