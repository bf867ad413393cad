"""The load generator's HTTP client, against a real server on loopback that misbehaves on cue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bench.loadgen import LOST, Connection, Prepared, Target, run_phase

#: What the server does with the nth request it reads (0-based, over all connections).
Behaviour = Callable[[int], bytes | None]


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
    handlers: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)  # type: ignore[arg-type]
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                self.requests.append(head + await reader.readexactly(length))
                answer = self.behaviour(len(self.requests) - 1)
                if answer is None:  # drop the connection without answering
                    return
                writer.write(answer)
                await writer.drain()
                if b"Connection: close" in answer:
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
        state.port = server.sockets[0].getsockname()[1]
        return state

    yield start
    for server, state in servers:
        # The tests close their connections; let the handlers see it and end, not be cancelled.
        if state.handlers:
            await asyncio.wait(state.handlers, timeout=5)
        server.close()
        await server.wait_closed()


def _target(port: int) -> Target:
    return Target.parse(f"http://127.0.0.1:{port}/r1/ID/GOV/X/svc?x=1")


def test_a_request_is_built_once_as_bytes() -> None:
    target = _target(8000)
    prepared = Prepared.post(target, {"X-Road-Id": "abc"}, b'{"a":1}')
    assert prepared.wire == (
        b"POST /r1/ID/GOV/X/svc?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nX-Road-Id: abc\r\n"
        b'Content-Length: 7\r\n\r\n{"a":1}'
    )


@pytest.mark.parametrize("url", ["https://127.0.0.1/x", "127.0.0.1:80/x", "http:///x"])
def test_only_plain_http_to_a_host(url: str) -> None:
    with pytest.raises(ValueError, match="plain http"):
        Target.parse(url)


async def test_statuses_counted_over_kept_alive_connections(serve: Serve) -> None:
    server = await serve(lambda n: _answer(503 if n % 4 == 3 else 200))
    target = _target(server.port)
    prepared = Prepared.post(target, {}, b"{}")
    connections: list[Connection] = []
    result = await run_phase(
        target, lambda: prepared, [], concurrency=3, duration=0.3, connections=connections
    )
    again = await run_phase(
        target, lambda: prepared, [], concurrency=3, duration=0.1, connections=connections
    )
    total = result["requests"] + again["requests"]
    assert total == len(server.requests) > 12
    assert result["statuses"]["503"] == result["errors"] > 0
    assert result["statuses"]["200"] + result["errors"] == result["requests"]
    assert result["signed_in_window"] == result["requests"]  # the pool was empty
    # One connection per request in flight, kept from one phase to the next.
    assert server.connections == 3
    for connection in connections:
        connection.close()


async def test_a_prepared_pool_is_used_before_signing(serve: Serve) -> None:
    server = await serve(lambda n: _answer(200))
    target = _target(server.port)
    pool = [Prepared.post(target, {"X-Road-Id": str(i)}, b"{}") for i in range(5)]
    made = Prepared.post(target, {"X-Road-Id": "made"}, b"{}")
    connections: list[Connection] = []
    result = await run_phase(
        target, lambda: made, pool, concurrency=1, duration=0.2, connections=connections
    )
    assert [r.split(b"X-Road-Id: ")[1][:1] for r in server.requests[:5]] == [
        b"4",
        b"3",
        b"2",
        b"1",
        b"0",
    ]
    assert result["signed_in_window"] == result["requests"] - 5
    connections[0].close()


async def test_chunked_answers_and_closing_servers(serve: Serve) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )

    def behaviour(n: int) -> bytes:
        return chunked if n % 2 == 0 else _answer(201, close=True)

    server = await serve(behaviour)
    target = _target(server.port)
    connections: list[Connection] = []
    result = await run_phase(
        target,
        lambda: Prepared.post(target, {}, b"{}"),
        [],
        concurrency=1,
        duration=0.2,
        connections=connections,
    )
    assert result["statuses"]["200"] >= 2
    assert result["statuses"]["201"] >= 2
    assert LOST not in result["statuses"]
    # Each "Connection: close" answer costs the next request a new connection.
    assert server.connections == result["statuses"]["201"] + (result["requests"] % 2 == 1)
    connections[0].close()


async def test_a_dropped_request_counts_as_lost(serve: Serve) -> None:
    server = await serve(lambda n: None if n == 1 else _answer(200))
    target = _target(server.port)
    connections: list[Connection] = []
    result = await run_phase(
        target,
        lambda: Prepared.post(target, {}, b"{}"),
        [],
        concurrency=1,
        duration=0.2,
        connections=connections,
    )
    assert result["statuses"][LOST] == 1
    assert result["errors"] == 1
    assert result["statuses"]["200"] == result["requests"] - 1 >= 2
    assert server.connections == 2
    connections[0].close()


async def test_an_unreadable_answer_is_lost_not_hung(serve: Serve) -> None:
    server = await serve(lambda n: b"NOT HTTP AT ALL\r\n\r\n" if n == 0 else _answer(200))
    target = _target(server.port)
    connection = await Connection.open(target)
    with pytest.raises(ConnectionError, match="unreadable"):
        await asyncio.wait_for(connection.send(Prepared.post(target, {}, b"{}")), 5)
    assert not connection.usable
    assert server.requests


def test_under_uvloop() -> None:
    """The load generator runs on uvloop, whose transports are not asyncio's classes."""
    import uvloop

    async def scenario() -> dict[str, Any]:
        state = _Server(lambda n: _answer(200))
        server = await asyncio.start_server(state.handle, "127.0.0.1", 0)
        target = _target(server.sockets[0].getsockname()[1])
        connections: list[Connection] = []
        result = await run_phase(
            target,
            lambda: Prepared.post(target, {}, b"{}"),
            [],
            concurrency=2,
            duration=0.1,
            connections=connections,
        )
        for connection in connections:
            connection.close()
        await asyncio.wait(state.handlers, timeout=5)
        server.close()
        await server.wait_closed()
        return result

    result = uvloop.run(scenario())
    assert result["statuses"] == {"200": result["requests"]}
    assert result["requests"] > 2
