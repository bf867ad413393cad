"""The adapters' own HTTP/1.1 client: pooled keep-alive connections, answers read by httptools.

The hop to the backend is on every exchange, and a general client's CPU per request was the
largest part of it not ours (aiohttp's session: 116-146 us of client CPU per request at
concurrency 32; docs/performance.md has this client's figures). It does what an adapter needs
and nothing else:

- one request at a time per connection, up to ``limit`` connections per backend (a request
  beyond waits for one); an idle connection is reused, the latest first, if it has been idle
  less than ``keepalive`` seconds (older ones are closed when the pool is next used);
- answers framed by Content-Length, chunked, or (neither, and not over TLS, where a cut
  could pass for the end) by the clean end of the connection, read by ``httptools`` (llhttp,
  the parser uvicorn uses), at most :data:`MAX_ANSWER_BYTES`; interim 1xx answers are skipped;
- a request that fails or is cancelled (the adapter's deadline) closes its connection, and so
  do bytes nobody asked for: nothing half-read or unsolicited meets the next request;
- an idempotent request (or one its caller says is: a lookup by POST) whose kept-alive
  connection was closed before any answer, or answered 408 first (the backend timed it out
  as the request went), is sent once more, on a new connection;
- ``https`` with the default TLS context (certificate and host name verified).

No redirects, cookies, proxies or compression (``Accept-Encoding: identity`` is sent and an
encoded answer refused): adapters need none. No HEAD (its answer's length would mislead the
parser). Each new connection resolves the host and tries its addresses in the resolver's
order, one after another (no racing of IPv6 against IPv4).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = [
    "IDEMPOTENT_METHODS",
    "MAX_ANSWER_BYTES",
    "Connection",
    "Origin",
    "Pool",
    "WireError",
    "encode_request",
]

#: The most an answer (head and body) may take on the wire; a longer one is refused.
MAX_ANSWER_BYTES = 8 * 2**20
#: The methods whose requests may be sent again (RFC 9110 section 9.2.2), unless told.
IDEMPOTENT_METHODS = frozenset({"GET", "PUT", "DELETE", "OPTIONS"})
_TIMED_OUT = 408  # Request Timeout: said of an idle kept-alive connection, as it is closed
_UNSAFE = frozenset("\r\n\0")
_METHOD = re.compile(r"[A-Z]+")
_TARGET = re.compile(r"/[\x21-\x7e]*")  # a path (and query) of visible ASCII
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a header name (RFC 9110 token)


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
        by default a context that verifies the certificate and host name). No user name,
        query or fragment; a host name in ASCII (IDNA names in their ``xn--`` form)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an absolute http(s) URL")
        if parts.username is not None or parts.query or parts.fragment:
            raise ValueError("base_url must not carry a user name, query or fragment")
        host = parts.hostname
        if not host.isascii() or _UNSAFE.intersection(host) or " " in host:
            raise ValueError("base_url's host must be written in ASCII")
        if parts.path and not _TARGET.fullmatch(parts.path):
            raise ValueError("base_url's path must be visible ASCII (spaces percent-encoded)")
        secure = parts.scheme == "https"
        port = parts.port or (443 if secure else 80)
        authority = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            authority += f":{parts.port}"
        context = (tls or ssl.create_default_context()) if secure else None
        return cls(host=host, port=port, authority=authority, tls=context)


class Connection(asyncio.Protocol):
    """One connection, one request at a time; :meth:`exchange` awaits the whole answer.

    :class:`Pool` keeps them for the adapters; the benchmark's load generator holds one per
    request in flight.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self._body: list[bytes] = []
        self._framed = False  # the answer has a Content-Length or is chunked
        self._headers_done = False
        self._received = 0  # bytes of the current answer so far
        self._secure = False  # over TLS (see connection_lost)
        self.idle_since = 0.0

    @property
    def heard(self) -> bool:
        """Whether any byte of an answer to the current (or last) request has arrived."""
        return self._received > 0

    @classmethod
    async def open(cls, origin: Origin) -> Connection:
        """Connect to ``origin``; :class:`WireError` if that fails."""
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_connection(
                cls,
                origin.host,
                origin.port,
                ssl=origin.tls,
                server_hostname=origin.host if origin.tls is not None else None,
            )
        except (OSError, ValueError) as exc:  # refused, unreachable, bad certificate or name
            raise WireError(f"cannot connect ({type(exc).__name__}: {exc})") from exc
        protocol._secure = origin.tls is not None
        return protocol

    @property
    def usable(self) -> bool:
        """Whether a request may go on this connection (open, and not closing)."""
        return self._transport is not None and not self._transport.is_closing()

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request``; the answer's status and body. Cancelled, the connection closes."""
        if self._transport is None or not self.usable or self._waiter is not None:
            raise WireError("the connection is closed")
        self._waiter = asyncio.get_running_loop().create_future()
        self._received = 0
        self._transport.write(request)
        try:
            return await self._waiter
        except BaseException:
            self.close()  # a late or half-read answer must not meet the next request
            raise
        finally:
            self._waiter = None

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's classes.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self._fail(WireError("the backend sent bytes no request asked for"))
            return
        self._received += len(data)
        if self._received > MAX_ANSWER_BYTES:
            self._fail(WireError(f"the answer is longer than {MAX_ANSWER_BYTES} bytes"))
            return
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            # A WireError a callback below raised comes back wrapped: keep its own words.
            refused = exc.__context__
            if not isinstance(refused, WireError):
                refused = WireError(f"the answer is not HTTP ({exc})")
            self._fail(refused)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if exc is None and self._headers_done and not self._framed:
            # Neither Content-Length nor chunked: the body ended with the connection (a clean
            # close; a reset leaves it cut short). Not over TLS: neither asyncio nor uvloop
            # tells a close without TLS's close_notify (a cut) from one with it.
            if self._secure:
                self._fail(WireError("an answer over TLS framed by neither length nor chunks"))
                return
            self._resolve(self._parser.get_status_code())
        self._fail(WireError("the backend closed the connection before answering in full"))

    # httptools callbacks

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():
            raise WireError("a second answer to one request")  # closes the connection
        self._body = []
        self._framed = self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-length" or (
            name == b"transfer-encoding" and value.rstrip().lower().endswith(b"chunked")
        ):
            self._framed = True
        elif name == b"content-encoding" and value.strip().lower() != b"identity":
            raise WireError("an encoded (compressed) answer, though identity was asked for")

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
        self._idle: deque[Connection] = deque()
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        idempotent: bool | None = None,
    ) -> tuple[int, bytes]:
        """Send ``method target`` (path and query) with ``headers`` and ``body``; the answer's
        status and body. Raises :class:`WireError` if none came, ValueError for a request
        :func:`encode_request` refuses, RuntimeError once the pool is closed.

        ``idempotent`` (by default, whether ``method`` is): the request may be sent once more,
        on a new connection, when a kept-alive one turns out closed before any answer, or
        answers 408 Request Timeout first (the backend timed the idle connection out and
        said so just before the request went: a 408 the loop had not yet read).
        """
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        request = encode_request(self._origin, method, target, headers, body)
        async with self._slots:
            if self._closed:  # closed while this request waited for a connection
                raise RuntimeError("the connection pool is closed")
            reused = self._reuse()
            connection = reused or await Connection.open(self._origin)
            try:
                answer = await connection.exchange(request)  # closes the connection if it fails
            except WireError:
                if reused is None or connection.heard or not idempotent:
                    raise
                # A kept-alive connection the backend closed as the request went: once more.
                answer = None
            if answer is None or (reused is not None and answer[0] == _TIMED_OUT and idempotent):
                connection.close()
                connection = await Connection.open(self._origin)
                answer = await connection.exchange(request)
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

    def _reuse(self) -> Connection | None:
        """The most recently used idle connection still open; expired ones are closed."""
        oldest = time.monotonic() - self._keepalive
        while self._idle and self._idle[0].idle_since < oldest:
            self._idle.popleft().close()
        while self._idle:
            connection = self._idle.pop()
            if connection.usable:
                return connection
        return None


def encode_request(
    origin: Origin, method: str, target: str, headers: Mapping[str, str], body: bytes | None
) -> bytes:
    """``method target`` (path and query) to ``origin`` with ``headers`` and ``body``, as the
    bytes that go on the wire. ValueError for anything but an upper-case method, a target of
    visible ASCII from "/", token header names and values without line breaks; and for HEAD,
    whose answer's length would mislead the parser."""
    if not _METHOD.fullmatch(method) or not _TARGET.fullmatch(target):
        raise ValueError(f"not a request line to send: {method!r} {target!r}")
    if method == "HEAD":
        raise ValueError("HEAD is not supported: its answer's length would mislead")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {origin.authority}"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or _UNSAFE.intersection(value):
            raise ValueError(f"not a header to send: {name!r}")
        lines.append(f"{name}: {value}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if body is None else head + body
