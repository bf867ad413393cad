"""Small HTTP/1.1 backends on loopback that answer, or misbehave, on cue (for the tests of the
adapters' HTTP client and of the benchmark's load generator)."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = [
    "Backend",
    "Cut",
    "Reply",
    "Reset",
    "Serve",
    "answer",
    "loopback_backends",
    "read_request",
    "self_signed",
]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next request on ``reader`` as (head, body), the body by its Content-Length (none
    without one); None once the client has closed the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    return head, await reader.readexactly(length)


def answer(status: int, body: bytes = b"{}", *, close: bool = False) -> bytes:
    """An HTTP/1.1 answer with a Content-Length (and ``Connection: close`` if ``close``)."""
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@dataclass(frozen=True)
class Cut:
    """Write ``partial`` (the start of an answer), then hang up."""

    partial: bytes


@dataclass(frozen=True)
class Reset:
    """Write ``partial``, then reset the connection (RST, not a clean close)."""

    partial: bytes


#: What a backend does with the nth request (0-based): bytes to write (a tuple: in pieces,
#: with pauses), "hang" to never answer, "close" to hang up without answering, Cut or Reset.
Reply = bytes | tuple[bytes, ...] | str | Cut | Reset


@dataclass
class Backend:
    """One backend's connection handler, and what it saw."""

    reply: Callable[[int], Reply]
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a request came
    ended: asyncio.Event = field(default_factory=asyncio.Event)  # a connection was closed
    server: asyncio.Server | None = None

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        self.writers.append(writer)
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                self.arrived.set()
                if not await self._answer(self.reply(len(self.requests) - 1), reader, writer):
                    return
        finally:
            self.open_now -= 1
            self.ended.set()
            writer.close()

    @staticmethod
    async def _answer(
        reply: Reply, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Act out ``reply``; whether the connection stays open for another request."""
        if reply == "close":
            return False
        if reply == "hang":
            await reader.read()  # until the client gives up and closes
            return False
        if isinstance(reply, Cut | Reset):
            writer.write(reply.partial)
            await writer.drain()
            if isinstance(reply, Reset):
                await asyncio.sleep(0.05)  # the partial answer arrives first
                linger = struct.pack("ii", 1, 0)  # on, 0 s: closing sends a reset
                writer.get_extra_info("socket").setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, linger
                )
                writer.transport.abort()
            return False
        pieces = reply if isinstance(reply, tuple) else (reply,)
        for piece in pieces:
            assert isinstance(piece, bytes)
            writer.write(piece)
            await writer.drain()
            if len(pieces) > 1:
                await asyncio.sleep(0.01)
        return not any(b"Connection: close" in piece for piece in pieces)


#: Start a backend: its handler, and the port it listens on.
Serve = Callable[..., Awaitable[tuple[Backend, int]]]


@asynccontextmanager
async def loopback_backends() -> AsyncIterator[Serve]:
    """Start backends with ``await start(reply, tls=None)``; all are stopped on exit."""
    started: list[Backend] = []

    async def start(
        reply: Callable[[int], Reply], tls: ssl.SSLContext | None = None
    ) -> tuple[Backend, int]:
        backend = Backend(reply)
        backend.server = await asyncio.start_server(backend, "127.0.0.1", 0, ssl=tls)
        started.append(backend)
        return backend, backend.server.sockets[0].getsockname()[1]

    try:
        yield start
    finally:
        for backend in started:
            assert backend.server is not None
            backend.server.close()
            for writer in backend.writers:
                writer.close()
            if backend.tasks:  # let the handlers see their connections closed, then end them
                await asyncio.wait(backend.tasks, timeout=1)
            for task in backend.tasks:
                task.cancel()
            await asyncio.gather(*backend.tasks, return_exceptions=True)
            await backend.server.wait_closed()


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for "localhost" and its key, as PEM files in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
