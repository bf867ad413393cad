"""The adapters' own HTTP/1.1 client: pooled keep-alive connections, answers read by httptools.

The hop to the backend is on every exchange, and a general client's CPU per request was the
largest part of it not ours: aiohttp's session took 135-146 us of client CPU per request at
concurrency 32, this client about a third of that (docs/performance.md). It does what an
adapter needs and nothing else:

- one request at a time per connection, up to ``limit`` connections per backend (a request
  beyond waits for one); idle connections are kept ``keepalive`` seconds, the latest used first;
- answers framed by Content-Length, chunked, or (neither) by the end of the connection, read
  by ``httptools`` (llhttp, the parser uvicorn uses); interim 1xx answers are skipped;
- a request that fails or is cancelled (the adapter's deadline) closes its connection: nothing
  half-read goes back to the pool;
- ``https`` with the default TLS context (certificate and host name verified).

No redirects, cookies, proxies or compression: adapters follow none and send none.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["Origin", "Pool", "WireError"]


class WireError(Exception):
    """No answer: the connection failed or closed first, or what came back is not HTTP."""


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a backend listens: scheme, host and port, as connections and requests need them."""

    host: str
    port: int
    authority: str
    tls: ssl.SSLContext | None

    @classmethod
    def parse(cls, base_url: str, *, tls: ssl.SSLContext | None = None) -> Origin:
        """The origin of an absolute ``http`` or ``https`` URL (an ``https`` one gets ``tls``,
        by default a context that verifies the certificate and host name)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        context = (tls or ssl.create_default_context()) if secure else None
        return cls(host=parts.hostname, port=port, authority=parts.netloc, tls=context)


class _Connection(asyncio.Protocol):
    """One connection, one request at a time; :meth:`exchange` awaits the whole answer."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self._framed = False  # the answer has a Content-Length or is chunked
        self._headers_done = False
        self.idle_since = 0.0

    @classmethod
    async def open(cls, origin: Origin) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                cls,
                origin.host,
                origin.port,
                ssl=origin.tls,
                server_hostname=origin.host if origin.tls is not None else None,
            )
        except (OSError, ssl.SSLError) as exc:  # refused, unreachable, bad certificate
            raise WireError(f"cannot connect ({type(exc).__name__})") from exc
        return protocol

    @property
    def usable(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; the answer's status and body. Cancelled, the connection closes."""
        if self._transport is None or not self.usable or self._waiter is not None:
            raise WireError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        try:
            return await self._waiter
        except BaseException:
            self.close()  # a late or half-read answer must not meet the next request
            raise
        finally:
            self._waiter = None

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's classes.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(WireError(f"the answer is not HTTP ({type(exc).__name__})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._headers_done and not self._framed:
            # Neither Content-Length nor chunked: the body ended with the connection.
            self._resolve(self._parser.get_status_code())
        self._fail(WireError("the backend closed the connection before answering in full"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        self._body = []
        self._framed = self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._headers_done = False
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return  # interim (100 Continue, 103 Early Hints): the answer follows
        if not self._parser.should_keep_alive():
            self.close()
        self._resolve(status)

    def _resolve(self, status: int) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result((status, b"".join(self._body)))
        self._body = []

    def _fail(self, error: WireError) -> None:
        self.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)


class Pool:
    """Keep-alive connections to one :class:`Origin`, at most ``limit`` of them at a time."""

    def __init__(self, origin: Origin, *, limit: int, keepalive: float) -> None:
        self._origin = origin
        self._slots = asyncio.Semaphore(limit)
        self._keepalive = keepalive
        self._idle: deque[_Connection] = deque()
        self._closed = False

    async def request(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[int, bytes]:
        """Send ``method target`` (path and query) with ``headers`` and ``body``; the answer's
        status and body. Raises :class:`WireError` if none came."""
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        request = self._encode(method, target, headers, body)
        async with self._slots:
            connection = self._reuse() or await _Connection.open(self._origin)
            answer = await connection.exchange(request)  # closes the connection if it fails
            if connection.usable and not self._closed:
                connection.idle_since = time.monotonic()
                self._idle.append(connection)
            else:
                connection.close()
            return answer

    def close(self) -> None:
        """Close every idle connection; requests after this are refused."""
        self._closed = True
        while self._idle:
            self._idle.pop().close()

    def _reuse(self) -> _Connection | None:
        """The most recently used idle connection still open; expired ones are closed."""
        oldest = time.monotonic() - self._keepalive
        while self._idle and self._idle[0].idle_since < oldest:
            self._idle.popleft().close()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
        return None

    def _encode(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self._origin.authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head if body is None else head + body
