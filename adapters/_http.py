"""The common half of every adapter: one pooled HTTP client, a deadline, failures mapped.

An adapter-owned client is :mod:`adapters._wire`, a small HTTP/1.1 client of our own: one hop
through it costs about a third of the client CPU of an aiohttp session (docs/performance.md
has the figures), and the hop is on every exchange. A client passed in is an
``httpx.AsyncClient`` and is used as is: tests hand in one over the sandbox app
(``ASGITransport``) or intercept it with respx. Either way the adapter sees an
:class:`Answer` and the same adapter errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol
from urllib.parse import urlencode, urlsplit

import orjson

from adapters._wire import IDEMPOTENT_METHODS, Origin, Pool, WireError
from adapters.errors import (
    ServiceUnsupported,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

if TYPE_CHECKING:  # imported where a client is handed in (its caller has imported httpx)
    import httpx

__all__ = ["MAX_CONNECTIONS", "Answer", "HttpAdapter"]

#: Connections an adapter-owned client keeps to its backend.
MAX_CONNECTIONS = 100
# An idle connection is reused for this long: under common servers' own idle limits (uvicorn
# and Apache close after 5 s), so that a request seldom meets a connection the backend is
# closing (an idempotent one is then sent again; a POST fails as unavailable).
_KEEPALIVE_SECONDS = 4.0
_HEADERS: Mapping[str, str] = {
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "User-Agent": "simpul-adapter",
}
_JSON_HEADERS: Mapping[str, str] = {**_HEADERS, "Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Answer:
    """A backend's answer, read whole: its status and its body."""

    status_code: int
    content: bytes

    def json(self) -> object:
        """The body as JSON; ValueError if it is not (orjson: no NaN, no invalid UTF-8)."""
        return orjson.loads(self.content)


class _Caller(Protocol):
    """Calls the backend at ``path`` (below its base URL)."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        idempotent: bool,
    ) -> Answer: ...

    async def aclose(self) -> None: ...


class _Wire:
    """The adapter-owned client (:mod:`adapters._wire`), its pool opened on first use inside
    the event loop."""

    def __init__(self, origin: Origin, base_path: str, *, name: str) -> None:
        self._origin = origin
        self._base_path = base_path
        self._pool: Pool | None = None
        self._closed = False
        self._name = name

    def _open(self) -> Pool:
        if self._closed:
            raise RuntimeError(f"the {self._name} adapter's client is closed")
        self._pool = Pool(self._origin, limit=MAX_CONNECTIONS, keepalive=_KEEPALIVE_SECONDS)
        return self._pool

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        idempotent: bool,
    ) -> Answer:
        pool = self._pool or self._open()
        target = self._base_path + path
        if params:
            target += "?" + urlencode(params)
        body = None if json is None else orjson.dumps(dict(json))
        headers = _HEADERS if body is None else _JSON_HEADERS
        try:
            status, content = await pool.request(
                method, target, headers, body, idempotent=idempotent
            )
        except WireError as exc:
            # Refused, reset, closed before or while answering, cut short, not HTTP.
            raise UpstreamUnavailable(f"the {self._name} backend is unreachable ({exc})") from exc
        return Answer(status, content)

    async def aclose(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.close()


class _Httpx:
    """A client handed in: used as is, never closed by the adapter."""

    def __init__(self, client: httpx.AsyncClient, base_url: str, *, name: str) -> None:
        self._client = client
        self._base_url = base_url
        self._name = name

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        idempotent: bool,
    ) -> Answer:
        del idempotent  # httpx decides for itself what it sends again
        import httpx  # its caller's: the broker's own adapters never load it (≈3 MB)

        url = self._base_url + path
        try:
            response = await self._client.request(method, url, json=json, params=params)
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise UpstreamUnavailable(
                f"the {self._name} backend is unreachable ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"calling the {self._name} backend failed ({type(exc).__name__})"
            ) from exc
        return Answer(response.status_code, response.content)

    async def aclose(self) -> None:
        return


class HttpAdapter:
    """Base of the adapters that call one agency backend over HTTP.

    ``timeout`` bounds each ``fetch`` as a whole, all its HTTP calls included. A ``client``
    passed in is used as is and left open by :meth:`aclose`; otherwise the adapter owns a
    pool of connections (:mod:`adapters._wire`).
    """

    name: str
    services: ClassVar[frozenset[str]]

    def __init__(
        self, *, base_url: str, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        origin = Origin.parse(base_url)  # ValueError for anything but an absolute http(s) URL
        self._timeout = timeout
        self._caller: _Caller
        if client is None:
            self._caller = _Wire(origin, urlsplit(base_url).path.rstrip("/"), name=self.name)
        else:
            self._caller = _Httpx(client, base_url.rstrip("/"), name=self.name)

    async def fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The record ``query`` names, in the shared shape of ``service``."""
        if service not in self.services:
            served = ", ".join(sorted(self.services))
            raise ServiceUnsupported(f"the {self.name} adapter serves {served}, not {service}")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(service, query)
        except TimeoutError as exc:
            raise UpstreamTimeout(
                f"the {self.name} backend did not answer within {self._timeout:g} s"
            ) from exc

    async def aclose(self) -> None:
        """Close the HTTP client if the adapter owns it."""
        await self._caller.aclose()

    async def _fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
    ) -> Answer:
        """One call to the backend; transport failures become adapter errors (a timeout, a
        TimeoutError that :meth:`fetch` names). ``idempotent``: whether the call may be sent
        again on a new connection when a kept-alive one turns out closed before any answer
        (by default, as its method says: GET yes, POST no); a lookup that happens to be a
        POST says yes."""
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        return await self._caller.request(
            method, path, json=json, params=params, idempotent=idempotent
        )
