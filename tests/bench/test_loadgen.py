"""The load generator's HTTP client, against a real server on loopback that misbehaves on cue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench import loadgen
from bench.loadgen import LOST, TIMED_OUT, Connection, Prepared, Target, run_phase
from tests._loopback import read_request

#: What the server does with the nth request it reads (0-based, over all connections): the
#: answer's bytes, written in one piece or (a tuple) in pieces with pauses between; "hang" to
#: never answer; None to drop the connection without answering.
Answer = bytes | tuple[bytes, ...] | str | None
Behaviour = Callable[[int], Answer]


def _answer(status: int, body: bytes = b"{}", *, close: bool = False) -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


@dataclass
class _Server:
    behaviour: Behaviour
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    handlers: set[asyncio.Task[Any]] = field(default_factory=set)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    listener: Any = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        self.writers.append(writer)
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(b"".join(request))
                answer = self.behaviour(len(self.requests) - 1)
                if answer is None:  # drop the connection without answering
                    return
                if answer == "hang":
                    await reader.read()  # until the client gives up and closes
                    return
                pieces = answer if isinstance(answer, tuple) else (answer,)
                for piece in pieces:
                    assert isinstance(piece, bytes)
                    writer.write(piece)
                    await writer.drain()
                    if len(pieces) > 1:
                        await asyncio.sleep(0.01)
                if any(b"Connection: close" in piece for piece in pieces):
                    return
        finally:
            writer.close()


Serve = Callable[[Behaviour], Awaitable[_Server]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[tuple[asyncio.Server, _Server]] = []

    async def start(behaviour: Behaviour) -> _Server:
        state = _Server(behaviour)
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        servers.append((server, state))
        state.listener = server
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server, state in servers:
        server.close()
        for writer in state.writers:  # a test that failed may have left its connections open
            writer.close()
        if state.handlers:
            await asyncio.wait(state.handlers, timeout=5)
        await asyncio.wait_for(server.wait_closed(), 5)


def _target(port: int) -> Target:
    return Target.parse(f"http://127.0.0.1:{port}/r1/ID/GOV/X/svc?x=1")


async def _phase(
    target: Target,
    *,
    concurrency: int = 1,
    duration: float = 0.3,
    pool: list[Prepared] | None = None,
    connections: list[Connection] | None = None,
) -> dict[str, Any]:
    """One phase with a fresh request for every send; closes the connections it opened."""
    mine = connections if connections is not None else []
    try:
        return await run_phase(
            target,
            lambda: Prepared.post(target, {}, b"{}"),
            pool if pool is not None else [],
            concurrency=concurrency,
            duration=duration,
            connections=mine,
        )
    finally:
        if connections is None:
            for connection in mine:
                connection.close()


class TestRequests:
    def test_a_request_is_built_once_as_bytes(self) -> None:
        prepared = Prepared.post(_target(8000), {"X-Road-Id": "abc"}, b'{"a":1}')
        assert prepared.wire == (
            b"POST /r1/ID/GOV/X/svc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX-Road-Id: abc\r\n"
            b'Content-Length: 7\r\n\r\n{"a":1}'
        )

    @pytest.mark.parametrize("url", ["https://127.0.0.1/x", "127.0.0.1:80/x", "http:///x"])
    def test_only_plain_http_to_a_host(self, url: str) -> None:
        with pytest.raises(ValueError, match="plain http"):
            Target.parse(url)


class TestPhases:
    async def test_statuses_counted_over_kept_alive_connections(self, serve: Serve) -> None:
        server = await serve(lambda n: _answer(503 if n % 4 == 3 else 200))
        target = _target(server.port)
        connections: list[Connection] = []
        try:
            first = await _phase(target, concurrency=3, connections=connections)
            again = await _phase(target, concurrency=3, duration=0.1, connections=connections)
        finally:
            for connection in connections:
                connection.close()
        assert first["requests"] + again["requests"] == len(server.requests) > 12
        assert first["statuses"]["503"] == first["errors"] > 0
        assert first["statuses"]["200"] + first["errors"] == first["requests"]
        assert first["signed_in_window"] == first["requests"]  # the pool was empty
        # One connection per request in flight, kept from one phase to the next.
        assert server.connections == 3

    async def test_a_prepared_pool_is_used_before_signing(self, serve: Serve) -> None:
        server = await serve(lambda n: _answer(200))
        target = _target(server.port)
        pool = [Prepared.post(target, {"X-Road-Id": str(i)}, b"{}") for i in range(5)]
        result = await _phase(target, pool=pool)
        sent = [r.split(b"X-Road-Id: ")[1][:1] for r in server.requests[:5]]
        assert sent == [b"4", b"3", b"2", b"1", b"0"]  # popped from the end
        assert result["signed_in_window"] == result["requests"] - 5

    async def test_a_server_that_cannot_be_reached_ends_the_phase(self, serve: Serve) -> None:
        unreachable = Target(host="127.0.0.1", port=1, path="/", authority="127.0.0.1:1")
        with pytest.raises(ConnectionRefusedError):
            await _phase(unreachable)
        # Reachable at first, then no longer listening: the worker that must reconnect fails,
        # and the phase ends with it rather than running on without it.
        listening: list[asyncio.Server] = []

        def behaviour(n: int) -> Answer:
            listening[0].close()
            return _answer(200, close=True)

        server = await serve(behaviour)
        listening.append(server.listener)
        with pytest.raises(ExceptionGroup) as failed:
            await _phase(_target(server.port), concurrency=2)
        assert failed.group_contains(ConnectionRefusedError)


class TestAnswers:
    async def test_chunked_answers_and_closing_servers(self, serve: Serve) -> None:
        chunked = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        server = await serve(lambda n: chunked if n % 2 == 0 else _answer(201, close=True))
        result = await _phase(_target(server.port))
        assert result["statuses"]["200"] >= 2
        assert result["statuses"]["201"] >= 2
        assert LOST not in result["statuses"]
        # Each "Connection: close" answer costs the next request a new connection.
        assert server.connections == result["statuses"]["201"] + (result["requests"] % 2 == 1)

    async def test_answers_in_pieces_and_interim_answers(self, serve: Serve) -> None:
        whole = _answer(200, b'{"nama": "x"}')

        def behaviour(n: int) -> Answer:
            if n % 2 == 0:  # head and body apart, the head itself split mid-line
                return (whole[:7], whole[7:30], whole[30:])
            return b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + _answer(202)

        server = await serve(behaviour)
        result = await _phase(_target(server.port))
        assert result["statuses"]["200"] >= 2
        assert result["statuses"]["202"] >= 2
        assert result["errors"] == result["statuses"]["202"]  # only 200 counts as success
        assert "103" not in result["statuses"]
        assert server.connections == 1

    async def test_a_dropped_request_counts_as_lost(self, serve: Serve) -> None:
        server = await serve(lambda n: None if n == 1 else _answer(200))
        result = await _phase(_target(server.port))
        assert result["statuses"][LOST] == 1
        assert result["errors"] == 1
        assert result["statuses"]["200"] == result["requests"] - 1 >= 2
        assert server.connections == 2

    async def test_no_answer_in_time_is_given_up(
        self, serve: Serve, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(loadgen, "ANSWER_TIMEOUT", 0.2)
        server = await serve(lambda n: "hang" if n == 1 else _answer(200))
        result = await _phase(_target(server.port), duration=0.5)
        assert result["statuses"][TIMED_OUT] == 1
        assert result["statuses"]["200"] >= 2
        # The connection that timed out was closed: a late answer cannot be miscounted.
        assert server.connections == 2

    @pytest.mark.parametrize(
        "answer",
        [
            b"NOT HTTP AT ALL\r\n\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        ],
    )
    async def test_an_unreadable_answer_is_lost_not_hung(self, serve: Serve, answer: bytes) -> None:
        server = await serve(lambda n: answer if n == 0 else _answer(200))
        target = _target(server.port)
        connection = await Connection.open(target)
        try:
            with pytest.raises(ConnectionError, match="unreadable"):
                await asyncio.wait_for(connection.send(Prepared.post(target, {}, b"{}")), 5)
            assert not connection.usable
        finally:
            connection.close()
        assert server.requests

    async def test_latency_is_of_answers_only(self, serve: Serve) -> None:
        server = await serve(lambda n: None)
        result = await _phase(_target(server.port), duration=0.2)
        assert result["statuses"] == {LOST: result["requests"]}
        assert result["p50_ms"] == result["p99_ms"] == 0.0


class TestUvloop:
    def test_under_uvloop(self) -> None:
        """The load generator runs on uvloop, whose transports are not asyncio's classes."""
        uvloop = pytest.importorskip("uvloop")

        async def scenario() -> dict[str, Any]:
            state = _Server(lambda n: _answer(200))
            server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
            try:
                return await _phase(_target(server.sockets[0].getsockname()[1]), concurrency=2)
            finally:
                server.close()
                await asyncio.wait(state.handlers, timeout=5)

        result = uvloop.run(scenario())
        assert result["statuses"] == {"200": result["requests"]}
        assert result["requests"] > 2
