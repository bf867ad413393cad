"""The load generator: its own process, so its CPU is not the broker's.

Reads a JSON spec on stdin, runs one phase per concurrency (a short warm-up, then a fixed
duration) and writes JSON lines on stdout: ``{"event": "start", ...}`` when a measured window
opens and ``{"event": "end", ...}`` with its results when it closes, so the harness can read
the broker's CPU counters at the same instants. Requests to the broker are signed in bulk
(each needs its own ``X-Road-Id``) before the measured window, not inside it (see below).

The client is one keep-alive connection of the adapters' own HTTP/1.1 client
(:class:`adapters._wire.Connection`) per request in flight, and requests go on the wire as
bytes built before the window. It costs a fraction of a general client's CPU per request
(19-30 us at concurrency 32-64 on a 2-core Xeon, where aiohttp's client took 150-200 us), and
that CPU is taken from the machine the broker and the backend share.

Signing one request costs the generator ≈350 us of CPU (a 2-core Xeon), so the window's
requests are signed between the warm-up and the window, as many as the warm-up's pace says the
window needs (with :data:`HEADROOM`); the warm-up's own come from ``presign_per_second``, a
first guess. Should a window still outrun its pool, the rest are signed in it, and
``signed_in_window`` counts them (``signing_us``: what one signature took ahead of the window)
for the report to name. (Until the twentieth machine one pool, sized for 2,500 exchanges a
second, served the warm-up and the window, and a faster broker had its window's last requests
signed inside it.)
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from adapters._wire import Connection, Origin, WireError, encode_request

__all__ = [
    "HEADROOM",
    "LOST",
    "POOL_FLOOR",
    "TIMED_OUT",
    "Prepared",
    "Target",
    "main",
    "percentiles",
    "pool_size",
    "run_phase",
]

_PAUSE_BETWEEN_PHASES = 1.0

#: How much faster than its warm-up a window may run before its pool of signed requests runs
#: out (a window usually runs a little faster: connections are open, caches filled).
HEADROOM = 1.5

#: Requests signed ahead beyond what a pace asks for: enough for a window that starts fast.
POOL_FLOOR = 200

#: What a request whose connection failed before an answer counts as, beside status codes.
LOST = "connection lost"
#: What a request with no answer after :data:`ANSWER_TIMEOUT` seconds counts as.
TIMED_OUT = "no answer in time"
#: How long a request may wait for its answer before it is given up, so that a server that
#: stops answering cannot hang the run (aiohttp's client, used before, gave up after 5 min).
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: the origin to connect to, and the path and query to ask for."""

    origin: Origin
    path: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """``http://host:port/path`` (plain HTTP only: the benchmark runs on loopback)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the load generator speaks plain http to a host, not {url!r}")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return cls(origin=Origin.parse(f"http://{parts.netloc}"), path=path)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request ready to go on the wire: a POST of ``body`` with ``headers``, as bytes."""

    wire: bytes

    @classmethod
    def post(cls, target: Target, headers: Mapping[str, str], body: bytes) -> Prepared:
        """Build the request once; sending it is then a single write."""
        return cls(wire=encode_request(target.origin, "POST", target.path, headers, body))


def pool_size(per_second: float, seconds: float) -> int:
    """How many requests to sign ahead for ``seconds`` at ``per_second``, with headroom."""
    return math.ceil(max(per_second, 0.0) * HEADROOM * seconds) + POOL_FLOOR


def percentiles(samples: list[float], points: tuple[float, ...] = (50, 95, 99)) -> list[float]:
    """Nearest-rank percentiles of ``samples`` (0.0 each when there are none)."""
    if not samples:
        return [0.0 for _ in points]
    ordered = sorted(samples)
    last = len(ordered) - 1
    return [ordered[min(last, max(0, round(p / 100 * len(ordered)) - 1))] for p in points]


class _Signer:
    """Signs exchange requests as the benchmark's consumer (the broker target only)."""

    def __init__(self, spec: dict[str, Any], target: Target) -> None:
        from broker.keys import load_private_jwk, to_private_key

        key = load_private_jwk(Path(spec["key_file"]))
        self._private = to_private_key(key)
        self._kid = str(key.kid)
        self._client = spec["client_id"]
        self._token = spec["consent_token"]
        self._url = spec["url"]
        self._body = spec["body"].encode()
        self._target = target

    def sign(self) -> Prepared:
        from broker.signatures import sign_request

        headers = {
            "X-Road-Client": self._client,
            "X-Road-Id": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "Consent-Token": self._token,
        }
        signed = sign_request(
            method="POST",
            url=self._url,
            headers=headers,
            body=self._body,
            key=self._private,
            key_id=self._kid,
        )
        return Prepared.post(self._target, signed, self._body)


async def run_phase(
    target: Target,
    make: Callable[[], Prepared],
    pool: list[Prepared],
    *,
    concurrency: int,
    duration: float,
    connections: list[Connection],
) -> dict[str, Any]:
    """Send from ``pool`` (then ``make()`` if it runs dry) with ``concurrency`` in flight.

    ``connections`` are reused from one phase to the next (opened as needed, one per request
    in flight). A request whose connection is lost counts as an error (:data:`LOST`).
    """
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    live = 0

    async def worker(slot: int) -> None:
        nonlocal live
        while True:
            start = time.perf_counter()
            if start >= deadline:
                return
            if pool:
                prepared = pool.pop()
            else:
                prepared = make()
                live += 1
                start = time.perf_counter()
            if not connections[slot].usable:
                connections[slot] = await Connection.open(target.origin)
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    status = str((await connections[slot].exchange(prepared.wire))[0])
            except WireError:
                status = LOST
            except TimeoutError:
                status = TIMED_OUT
            else:  # latency of answers only: a failure's time says nothing of the server's
                latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    while len(connections) < concurrency:
        connections.append(await Connection.open(target.origin))
    began = time.perf_counter()
    # A worker that cannot even connect ends the run, and the others with it.
    async with asyncio.TaskGroup() as group:
        for slot in range(concurrency):
            group.create_task(worker(slot))
    elapsed = time.perf_counter() - began
    p50, p95, p99 = percentiles(latencies)
    requests = sum(statuses.values())
    return {
        "requests": requests,
        "elapsed_s": elapsed,
        "per_second": requests / elapsed if elapsed else 0.0,
        "p50_ms": p50 * 1000,
        "p95_ms": p95 * 1000,
        "p99_ms": p99 * 1000,
        "statuses": statuses,
        "errors": sum(n for s, n in statuses.items() if s != "200"),
        "signed_in_window": live,
    }


def _signed_ahead(make: Callable[[], Prepared], count: int) -> tuple[list[Prepared], float]:
    """``count`` requests from ``make`` (at least one), and the seconds each took to sign (the
    first, which also imports the signing code, not counted)."""
    pool = [make()]
    started = time.perf_counter()
    pool += [make() for _ in range(count - 1)]
    return pool, (time.perf_counter() - started) / max(count - 1, 1)


def _pace(warm: dict[str, Any], per_signature: float, guess: float) -> float:
    """Requests a second the warm-up ``warm`` reached, not counting the time it spent signing
    once its pool ran out (the loop signs in line, holding back every request in flight), and
    at most ten times what it measured; ``guess`` where it answered nothing."""
    if not warm["requests"]:
        return guess
    elapsed = warm["elapsed_s"]
    busy = max(elapsed - warm["signed_in_window"] * per_signature, elapsed / 10)
    return warm["requests"] / busy


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _main(spec: dict[str, Any]) -> None:
    target = Target.parse(spec["url"])
    duration = float(spec["duration"])
    warmup = float(spec["warmup"])
    make: Callable[[], Prepared]
    signs = bool(spec.get("sign"))
    if signs:
        make = _Signer({**spec["sign"], "url": spec["url"], "body": spec["body"]}, target).sign
    else:
        fixed = Prepared.post(target, {"Content-Type": "application/json"}, spec["body"].encode())

        def make() -> Prepared:
            return fixed

    guess = float(spec.get("presign_per_second", 0))  # the warm-up's pace, before it is known
    connections: list[Connection] = []
    try:
        for concurrency in spec["concurrencies"]:
            pool, per_signature = (
                _signed_ahead(make, pool_size(guess, warmup)) if signs else ([], 0)
            )
            phase = {"concurrency": concurrency, "connections": connections}
            # Warm-up: connections open, caches filled; not reported. Its pace sizes the pool
            # the window takes its requests from.
            warm = await run_phase(target, make, pool, duration=warmup, **phase)
            if signs:
                pace = _pace(warm, per_signature, guess)
                pool += [make() for _ in range(pool_size(pace, duration) - len(pool))]
            _emit({"event": "start", "concurrency": concurrency})
            result = await run_phase(target, make, pool, duration=duration, **phase)
            if signs:
                result["signing_us"] = per_signature * 1e6
            else:
                del result["signed_in_window"]  # nothing is signed: every request is the same
            _emit({"event": "end", "concurrency": concurrency, **result})
            await asyncio.sleep(_PAUSE_BETWEEN_PHASES)
    finally:
        for connection in connections:
            connection.close()


def main() -> None:
    """Entry point: ``python -m bench.loadgen < spec.json``."""
    spec = json.load(sys.stdin)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a dependency, except on Windows and PyPy
        asyncio.run(_main(spec))
    else:
        uvloop.run(_main(spec))


if __name__ == "__main__":
    main()
