"""The load generator's phases, against real backends on loopback that misbehave on cue.

Its connections are the adapters' own client (tests/adapters/test_wire.py tests how they read
answers); here, what a phase counts and how it ends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters._wire import Connection, Origin, WireError
from bench import loadgen
from bench.loadgen import (
    HEADROOM,
    LOST,
    POOL_FLOOR,
    TIMED_OUT,
    Prepared,
    Target,
    pool_size,
    run_phase,
)
from broker.keys import generate_key, save_private_jwk
from tests._loopback import Backend, Reply, Serve, loopback_backends
from tests._loopback import answer as _answer


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with loopback_backends() as start:
        yield start


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
        backend, port = await serve(lambda n: _answer(503 if n % 4 == 3 else 200))
        target = _target(port)
        connections: list[Connection] = []
        try:
            first = await _phase(target, concurrency=3, connections=connections)
            again = await _phase(target, concurrency=3, duration=0.1, connections=connections)
        finally:
            for connection in connections:
                connection.close()
        assert first["requests"] + again["requests"] == len(backend.requests) > 12
        assert first["statuses"]["503"] == first["errors"] > 0
        assert first["statuses"]["200"] + first["errors"] == first["requests"]
        assert first["signed_in_window"] == first["requests"]  # the pool was empty
        # One connection per request in flight, kept from one phase to the next.
        assert backend.connections == 3

    async def test_a_prepared_pool_is_used_before_signing(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(200))
        target = _target(port)
        pool = [Prepared.post(target, {"X-Road-Id": str(i)}, b"{}") for i in range(5)]
        result = await _phase(target, pool=pool)
        sent = [head.split(b"X-Road-Id: ")[1][:1] for head, _ in backend.requests[:5]]
        assert sent == [b"4", b"3", b"2", b"1", b"0"]  # popped from the end
        assert result["signed_in_window"] == result["requests"] - 5

    async def test_a_backend_that_closes_gets_new_connections(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(200, close=n % 2 == 1))
        result = await _phase(_target(port))
        assert result["statuses"] == {"200": result["requests"]}
        # A new connection after each "Connection: close" answer that another request followed.
        assert backend.connections == 1 + (result["requests"] - 1) // 2

    async def test_a_server_that_cannot_be_reached_ends_the_phase(self, serve: Serve) -> None:
        unreachable = Target(origin=Origin.parse("http://127.0.0.1:1"), path="/")
        with pytest.raises(WireError, match="cannot connect"):
            await _phase(unreachable)
        # Reachable at first, then no longer listening: the worker that must reconnect fails,
        # and the phase ends with it rather than running on without it.
        listening: list[Backend] = []

        def reply(n: int) -> Reply:
            assert listening[0].server is not None
            listening[0].server.close()
            return _answer(200, close=True)

        backend, port = await serve(reply)
        listening.append(backend)
        with pytest.raises(ExceptionGroup) as failed:
            await _phase(_target(port), concurrency=2)
        assert failed.group_contains(WireError)


class TestFailures:
    @pytest.mark.parametrize("reply", ["close", b"NOT HTTP\r\n\r\n"])
    async def test_a_request_without_an_answer_counts_as_lost(
        self, serve: Serve, reply: Reply
    ) -> None:
        backend, port = await serve(lambda n: reply if n == 1 else _answer(200))
        result = await _phase(_target(port))
        assert result["statuses"][LOST] == 1
        assert result["errors"] == 1
        assert result["statuses"]["200"] == result["requests"] - 1 >= 2
        assert backend.connections == 2

    async def test_no_answer_in_time_is_given_up(
        self, serve: Serve, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(loadgen, "ANSWER_TIMEOUT", 0.2)
        backend, port = await serve(lambda n: "hang" if n == 1 else _answer(200))
        result = await _phase(_target(port), duration=0.5)
        assert result["statuses"][TIMED_OUT] == 1
        assert result["statuses"]["200"] >= 2
        # The connection that timed out was closed: a late answer cannot be miscounted.
        assert backend.connections == 2

    async def test_latency_is_of_answers_only(self, serve: Serve) -> None:
        _, port = await serve(lambda n: "close")
        result = await _phase(_target(port), duration=0.2)
        assert result["statuses"] == {LOST: result["requests"]}
        assert result["p50_ms"] == result["p99_ms"] == 0.0


class TestPresigning:
    def test_a_pool_covers_the_pace_with_headroom(self) -> None:
        assert pool_size(1000.0, 5.0) == round(1000 * HEADROOM * 5) + POOL_FLOOR
        assert pool_size(0.0, 5.0) == pool_size(-1.0, 5.0) == POOL_FLOOR  # no pace known

    async def test_the_window_is_signed_for_from_the_warm_ups_pace(
        self, serve: Serve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A first guess far too low (1/s) leaves the warm-up a pool of a dozen requests, so it
        signs the rest in line; the window's pool is signed for the pace the warm-up reached
        (not counting that signing), so nothing is signed inside the window."""
        monkeypatch.setattr(loadgen, "POOL_FLOOR", 10)
        monkeypatch.setattr(loadgen, "_PAUSE_BETWEEN_PHASES", 0.0)
        answer = _answer(200)
        # Each answer in two pieces 10 ms apart: ≈200 a second over two connections, so the
        # test signs a few hundred requests at most.
        _, port = await serve(lambda n: (answer[:20], answer[20:]))
        save_private_jwk(generate_key("bench"), tmp_path / "client.jwk")
        events: list[dict[str, Any]] = []
        monkeypatch.setattr(loadgen, "_emit", events.append)
        spec = {
            "url": f"http://127.0.0.1:{port}/r1/ID/GOV/X/svc",
            "body": '{"nik": "3171010101010001"}',
            "duration": 0.5,
            "warmup": 0.3,
            "concurrencies": [2],
        }
        signed = {
            "presign_per_second": 1,
            "sign": {
                "key_file": str(tmp_path / "client.jwk"),
                "client_id": "ID/GOV/X/Y",
                "consent_token": "token",
            },
        }
        await loadgen._main({**spec, **signed})
        end = next(e for e in events if e["event"] == "end")
        assert end["requests"] > 2 * pool_size(1, 0.8)  # far more than the guess's pool held
        assert end["signed_in_window"] == 0
        assert end["signing_us"] > 0
        # A target whose requests are all alike signs nothing and says nothing of it.
        events.clear()
        await loadgen._main(spec)
        end = next(e for e in events if e["event"] == "end")
        assert end["requests"] > 0
        assert "signed_in_window" not in end

    def test_the_warm_ups_pace_leaves_out_its_own_signing(self) -> None:
        warm = {"requests": 300, "elapsed_s": 0.3, "signed_in_window": 200}
        assert loadgen._pace(warm, 0.001, 5.0) == pytest.approx(3000.0)  # 300 in 0.1 s
        assert loadgen._pace({**warm, "signed_in_window": 0}, 0.001, 5.0) == pytest.approx(1000)
        # Signing that seems to take all its time: at most ten times the pace it measured.
        assert loadgen._pace(warm, 0.01, 5.0) == pytest.approx(10_000.0)
        assert loadgen._pace({**warm, "requests": 0}, 0.001, 5.0) == 5.0  # nothing to go on


class TestUvloop:
    def test_under_uvloop(self) -> None:
        """The load generator runs on uvloop, whose transports are not asyncio's classes."""
        uvloop = pytest.importorskip("uvloop")

        async def scenario() -> dict[str, Any]:
            async with loopback_backends() as start:
                _, port = await start(lambda n: _answer(200))
                return await _phase(_target(port), concurrency=2)

        result = uvloop.run(scenario())
        assert result["statuses"] == {"200": result["requests"]}
        assert result["requests"] > 2
