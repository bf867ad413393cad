"""The common half of every adapter: one pooled HTTP client, a deadline, failures mapped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from adapters.errors import (
    ServiceUnsupported,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

__all__ = ["POOL_LIMITS", "HttpAdapter", "pooled_client"]

POOL_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50, keepalive_expiry=30)
"""Connection pool of an adapter-owned client: keep connections to the backend warm under load."""


def pooled_client(*, timeout: float) -> httpx.AsyncClient:
    """An adapter-owned client: the httpx API over aiohttp's connection pool.

    aiohttp's HTTP/1.1 client costs several times less CPU per call than httpx's own
    transport under concurrency (see docs/performance.md); the httpx API stays, so the
    adapters' code and their tests (respx, ``using="httpx"``) are unchanged.
    """
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=POOL_LIMITS),
        timeout=httpx.Timeout(timeout),
        headers={"Accept": "application/json", "User-Agent": "simpul-adapter"},
    )


class HttpAdapter:
    """Base of the adapters that call one agency backend over HTTP.

    ``timeout`` bounds each ``fetch`` as a whole, all its HTTP calls included (and, for an
    adapter-owned client, each connect/read/write/pool wait too). A ``client`` passed in is
    used as is and left open by :meth:`aclose`; otherwise the adapter owns a pooled one.
    """

    name: str
    services: ClassVar[frozenset[str]]

    def __init__(
        self, *, base_url: str, timeout: float, client: httpx.AsyncClient | None = None
    ) -> None:
        if not timeout > 0:
            raise ValueError("timeout must be a positive number of seconds")
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        self._base_url = base_url.rstrip("/")
        self._timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else pooled_client(timeout=timeout)

    async def fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The record ``query`` names, in the shared shape of ``service``."""
        if service not in self.services:
            served = ", ".join(sorted(self.services))
            raise ServiceUnsupported(f"the {self.name} adapter serves {served}, not {service}")
        try:
            async with asyncio.timeout(self._timeout):
                return await self._fetch(service, query)
        except TimeoutError as exc:
            raise self._timed_out() from exc

    async def aclose(self) -> None:
        """Close the HTTP client if the adapter owns it."""
        if self._owns_client:
            await self._client.aclose()

    async def _fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _timed_out(self) -> UpstreamTimeout:
        return UpstreamTimeout(f"the {self.name} backend did not answer within {self._timeout:g} s")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call to the backend; transport failures become adapter errors."""
        try:
            return await self._client.request(
                method, self._base_url + path, json=json, params=params
            )
        except httpx.TimeoutException as exc:
            if _dropped(exc):
                raise UpstreamUnavailable(
                    f"the {self.name} backend dropped the connection ({type(exc).__name__})"
                ) from exc
            raise self._timed_out() from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise UpstreamUnavailable(
                f"the {self.name} backend is unreachable ({type(exc).__name__})"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamError(
                f"calling the {self.name} backend failed ({type(exc).__name__})"
            ) from exc


def _dropped(exc: httpx.TimeoutException) -> bool:
    # httpx-aiohttp maps every aiohttp connection error it has no closer name for (a backend
    # that closes or resets the connection) to ConnectTimeout; that is unavailability, not a
    # timeout, and the problem type must say so.
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientConnectionError) and not isinstance(
        cause, aiohttp.ServerTimeoutError | TimeoutError
    )
