"""Adapter-owned clients (adapters/_wire.py) against real sockets: what they send, what they
make of answers, and failures keeping their problem types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from adapters import create_adapter
from adapters.errors import (
    UpstreamError,
    UpstreamInvalid,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from broker.sandbox_env import free_port
from tests._loopback import read_request
from tests.adapters.samples import NIK as SAMPLE_NIK
from tests.adapters.samples import dukcapil_element, page

NIK = "3174095708900001"


async def _serve(handler: Any) -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            tasks.append(task)
        await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # Server.close() leaves accepted connections open (Python 3.11): close them too, or
        # their sockets are collected unclosed after the test.
        server.close()
        for task in tasks:
            task.cancel()
        for writer in writers:
            writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def hangs_up() -> AsyncIterator[str]:
    """A backend that reads the request and closes the connection without answering."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.close()

    async for url in _serve(handler):
        yield url


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A backend that accepts and never answers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    async for url in _serve(handler):
        yield url


class _Backend:
    """A one-route HTTP/1.1 backend that records each request and answers ``reply``."""

    def __init__(
        self,
        reply: bytes,
        *,
        hang_up: bool = False,
        hang_up_after: frozenset[int] = frozenset(),
    ) -> None:
        self.reply = reply
        self.hang_up = hang_up
        self.hang_up_after = hang_up_after  # requests (1-based) read, then left unanswered
        self.requests: list[tuple[bytes, bytes]] = []  # (head, body)
        self.connections = 0

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while (request := await read_request(reader)) is not None:
            self.requests.append(request)
            if len(self.requests) in self.hang_up_after:
                writer.close()  # as a backend does when it times an idle connection out
                return
            writer.write(self.reply)
            await writer.drain()
            if self.hang_up:
                writer.close()
                return


def _reply(status: str, body: bytes, *, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    ).encode() + body


async def _fetch_from(backend: _Backend) -> dict[str, Any]:
    async for url in _serve(backend):
        adapter = create_adapter("dukcapil", base_url=url, timeout=1.0)
        try:
            return await adapter.fetch("ktp", {"nik": SAMPLE_NIK})
        finally:
            await adapter.aclose()
    raise AssertionError("the backend did not start")  # pragma: no cover


class TestOwnedClient:
    async def test_a_round_trip_over_a_socket(self) -> None:
        backend = _Backend(_reply("200 OK", orjson.dumps(page(dukcapil_element()))))
        record = await _fetch_from(backend)
        assert record["nik"] == SAMPLE_NIK
        ((head, body),) = backend.requests
        assert head.startswith(b"POST /dukcapil/api/v1/CALL_NIK HTTP/1.1\r\n")
        lines = head.lower().split(b"\r\n")
        assert b"user-agent: simpul-adapter" in lines
        assert b"content-type: application/json" in lines
        assert b"accept: application/json" in lines
        assert not any(line.startswith(b"cookie") for line in lines)
        assert orjson.loads(body) == {"NIK": SAMPLE_NIK}

    async def test_a_base_url_with_a_path_keeps_it(self) -> None:
        backend = _Backend(_reply("200 OK", orjson.dumps(page(dukcapil_element()))))
        async for url in _serve(backend):
            adapter = create_adapter("dukcapil", base_url=url + "/gateway/", timeout=1.0)
            try:
                await adapter.fetch("ktp", {"nik": SAMPLE_NIK})
            finally:
                await adapter.aclose()
        ((head, _),) = backend.requests
        assert head.startswith(b"POST /gateway/dukcapil/api/v1/CALL_NIK HTTP/1.1\r\n")

    async def test_connections_are_kept_alive(self) -> None:
        backend = _Backend(_reply("200 OK", orjson.dumps(page(dukcapil_element()))))
        async for url in _serve(backend):
            adapter = create_adapter("dukcapil", base_url=url, timeout=1.0)
            try:
                for _ in range(3):
                    await adapter.fetch("ktp", {"nik": SAMPLE_NIK})
            finally:
                await adapter.aclose()
        assert len(backend.requests) == 3
        assert backend.connections == 1  # all three on one connection

    async def test_a_lookup_is_sent_again_when_its_kept_alive_connection_was_closed(
        self,
    ) -> None:
        """Dukcapil's calls are POSTs, but lookups: one that finds its kept-alive connection
        closed by the backend before any answer goes again on a new connection."""
        found = _reply("200 OK", orjson.dumps(page(dukcapil_element())))
        backend = _Backend(found, hang_up_after=frozenset({2}))
        async for url in _serve(backend):
            adapter = create_adapter("dukcapil", base_url=url, timeout=1.0)
            try:
                await adapter.fetch("ktp", {"nik": SAMPLE_NIK})
                await adapter.fetch("ktp", {"nik": SAMPLE_NIK})
            finally:
                await adapter.aclose()
        assert len(backend.requests) == 3  # the second call went twice
        assert backend.connections == 2

    @pytest.mark.parametrize(
        ("backend", "error"),
        [
            pytest.param(
                _Backend(_reply("500 Internal Server Error", b"{}")), UpstreamError, id="http-500"
            ),
            pytest.param(_Backend(_reply("200 OK", b"<html>")), UpstreamInvalid, id="not-json"),
            pytest.param(_Backend(_reply("200 OK", b'{"a": NaN}')), UpstreamInvalid, id="nan"),
            pytest.param(_Backend(_reply("200 OK", b"\xff\xfe")), UpstreamInvalid, id="not-utf8"),
            pytest.param(
                _Backend(_reply("200 OK", b'{"content": [', length=100), hang_up=True),
                UpstreamUnavailable,
                id="cut-short",
            ),
            pytest.param(
                _Backend(b"SPEAKING NONSENSE\r\n\r\n", hang_up=True),
                UpstreamUnavailable,
                id="not-http",
            ),
        ],
    )
    async def test_a_bad_answer_keeps_its_problem_type(
        self, backend: _Backend, error: type[Exception]
    ) -> None:
        with pytest.raises(error):
            await _fetch_from(backend)

    @pytest.mark.parametrize("service", ["ktp", "kk"])
    async def test_refused_connection_is_unavailable(self, service: str) -> None:
        adapter = create_adapter(
            "dukcapil", base_url=f"http://127.0.0.1:{free_port()}", timeout=1.0
        )
        try:
            with pytest.raises(UpstreamUnavailable):
                await adapter.fetch(service, {"nik": NIK})
        finally:
            await adapter.aclose()

    async def test_hang_up_is_unavailable_not_a_timeout(self, hangs_up: str) -> None:
        adapter = create_adapter("dukcapil", base_url=hangs_up, timeout=1.0)
        try:
            with pytest.raises(UpstreamUnavailable):
                await adapter.fetch("ktp", {"nik": NIK})
        finally:
            await adapter.aclose()

    async def test_silence_is_a_timeout(self, silent: str) -> None:
        adapter = create_adapter("dukcapil", base_url=silent, timeout=0.2)
        try:
            with pytest.raises(UpstreamTimeout):
                await adapter.fetch("ktp", {"nik": NIK})
        finally:
            await adapter.aclose()
