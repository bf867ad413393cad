"""The load generator: its own process, so its CPU is not the broker's.

Reads a JSON spec on stdin, runs one phase per concurrency (a short warm-up, then a fixed
duration) and writes JSON lines on stdout: ``{"event": "start", ...}`` when a measured window
opens and ``{"event": "end", ...}`` with its results when it closes, so the harness can read
the broker's CPU counters at the same instants. Requests to the broker are signed in bulk
before each phase (each needs its own ``X-Road-Id``), never inside the measured window.

The client is a bare HTTP/1.1 keep-alive connection per request in flight: requests go on the
wire as bytes built before the window, and answers are read by ``httptools`` (the parser
uvicorn uses). It costs a fraction of a general client's CPU per request (27-51 us at
concurrency 32-64, where aiohttp's client took 150-200 us), and that CPU is taken from the
machine the broker and the backend share.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

__all__ = [
    "LOST",
    "TIMED_OUT",
    "Connection",
    "Prepared",
    "Target",
    "main",
    "percentiles",
    "run_phase",
]

_PAUSE_BETWEEN_PHASES = 1.0

#: What a request whose connection failed before an answer counts as, beside status codes.
LOST = "connection lost"
#: What a request with no answer after :data:`ANSWER_TIMEOUT` seconds counts as.
TIMED_OUT = "no answer in time"
#: How long a request may wait for its answer before it is given up (as aiohttp's default
#: total timeout did, so that a server that stops answering cannot hang the run).
ANSWER_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: the URL split once, for building requests and opening connections."""

    host: str
    port: int
    path: str
    authority: str

    @classmethod
    def parse(cls, url: str) -> Target:
        """``http://host:port/path`` (plain HTTP only: the benchmark runs on loopback)."""
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the load generator speaks plain http to a host, not {url!r}")
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        port = parts.port or 80
        return cls(host=parts.hostname, port=port, path=path, authority=parts.netloc)


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request ready to go on the wire: a POST of ``body`` with ``headers``, as bytes."""

    wire: bytes

    @classmethod
    def post(cls, target: Target, headers: Mapping[str, str], body: bytes) -> Prepared:
        """Build the request once; sending it is then a single write."""
        lines = [f"POST {target.path} HTTP/1.1", f"Host: {target.authority}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return cls(wire=("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, its status awaited.

    The body of an answer is parsed (by Content-Length or chunked) and dropped; an answer whose
    body ends only with the connection (neither) counts as lost, and interim 1xx answers are
    skipped. A server that closes the connection, or asks to, gets a new one for the next
    request. Enough for uvicorn, which is what the benchmark drives.
    """

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[int] | None = None

    @classmethod
    async def open(cls, target: Target) -> Connection:
        """Connect to ``target``."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, target.host, target.port)
        return protocol

    @property
    def usable(self) -> bool:
        """Whether the next request may go on this connection."""
        return self._transport is not None and not self._transport.is_closing()

    async def send(self, prepared: Prepared) -> int:
        """Send one request; the answer's status (raises ConnectionError if none came).

        Cancelled (a timeout), it closes the connection: a late answer must not be taken for
        the next request's.
        """
        if self._transport is None or not self.usable or self._waiter is not None:
            raise ConnectionError("the connection is closed or busy")
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(prepared.wire)
        try:
            return await self._waiter
        except asyncio.CancelledError:
            self.close()
            raise
        finally:
            self._waiter = None

    def close(self) -> None:
        """Close the connection."""
        if self._transport is not None:
            self._transport.close()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports do not derive from asyncio's classes.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(ConnectionError(f"unreadable answer: {exc!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ConnectionError("the server closed the connection"))

    def on_message_complete(self) -> None:
        """httptools: an answer has been read in full."""
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return  # interim (100 Continue, 103 Early Hints): the answer follows
        if not self._parser.should_keep_alive() and self._transport is not None:
            self._transport.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    def _fail(self, error: ConnectionError) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(error)


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
                connections[slot] = await Connection.open(target)
            try:
                async with asyncio.timeout(ANSWER_TIMEOUT):
                    status = str(await connections[slot].send(prepared))
            except ConnectionError:
                status = LOST
            except TimeoutError:
                status = TIMED_OUT
            else:  # latency of answers only: a failure's time says nothing of the server's
                latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1

    while len(connections) < concurrency:
        connections.append(await Connection.open(target))
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


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def _main(spec: dict[str, Any]) -> None:
    target = Target.parse(spec["url"])
    duration = float(spec["duration"])
    warmup = float(spec["warmup"])
    make: Callable[[], Prepared]
    if spec.get("sign"):
        make = _Signer({**spec["sign"], "url": spec["url"], "body": spec["body"]}, target).sign
    else:
        fixed = Prepared.post(target, {"Content-Type": "application/json"}, spec["body"].encode())

        def make() -> Prepared:
            return fixed

    presign_rate = int(spec.get("presign_per_second", 0))
    connections: list[Connection] = []
    try:
        for concurrency in spec["concurrencies"]:
            needed = int(presign_rate * (duration + warmup)) + 200 if presign_rate else 0
            pool = [make() for _ in range(needed)]
            phase = {"concurrency": concurrency, "connections": connections}
            # Warm-up: connections open, caches filled; not reported.
            await run_phase(target, make, pool, duration=warmup, **phase)
            _emit({"event": "start", "concurrency": concurrency})
            result = await run_phase(target, make, pool, duration=duration, **phase)
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
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        asyncio.run(_main(spec))
    else:
        uvloop.run(_main(spec))


if __name__ == "__main__":
    main()
