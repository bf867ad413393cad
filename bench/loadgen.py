"""The load generator: its own process, so its CPU is not the broker's.

Reads a JSON spec on stdin, runs one phase per concurrency (a short warm-up, then a fixed
duration) and writes JSON lines on stdout: ``{"event": "start", ...}`` when a measured window
opens and ``{"event": "end", ...}`` with its results when it closes, so the harness can read
the broker's CPU counters at the same instants. Requests to the broker are signed in bulk
before each phase (each needs its own ``X-Road-Id``), never inside the measured window.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["Prepared", "main", "percentiles", "run_phase"]

_PAUSE_BETWEEN_PHASES = 1.0


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request ready to go on the wire."""

    headers: dict[str, str]
    body: bytes


def percentiles(samples: list[float], points: tuple[float, ...] = (50, 95, 99)) -> list[float]:
    """Nearest-rank percentiles of ``samples`` (0.0 each when there are none)."""
    if not samples:
        return [0.0 for _ in points]
    ordered = sorted(samples)
    last = len(ordered) - 1
    return [ordered[min(last, max(0, round(p / 100 * len(ordered)) - 1))] for p in points]


class _Signer:
    """Signs exchange requests as the benchmark's consumer (the broker target only)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from broker.keys import load_private_jwk, to_private_key

        key = load_private_jwk(Path(spec["key_file"]))
        self._private = to_private_key(key)
        self._kid = str(key.kid)
        self._client = spec["client_id"]
        self._token = spec["consent_token"]
        self._url = spec["url"]
        self._body = spec["body"].encode()

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
        return Prepared(headers=signed, body=self._body)


async def run_phase(
    session: aiohttp.ClientSession,
    url: str,
    make: Any,
    pool: list[Prepared],
    *,
    concurrency: int,
    duration: float,
) -> dict[str, Any]:
    """Send from ``pool`` (then ``make()`` if it runs dry) with ``concurrency`` in flight."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    deadline = time.perf_counter() + duration
    live = 0

    async def worker() -> None:
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
            async with session.post(url, data=prepared.body, headers=prepared.headers) as resp:
                await resp.read()
                status = resp.status
            latencies.append(time.perf_counter() - start)
            statuses[str(status)] = statuses.get(str(status), 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    p50, p95, p99 = percentiles(latencies)
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "per_second": len(latencies) / elapsed if elapsed else 0.0,
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
    url = spec["url"]
    duration = float(spec["duration"])
    warmup = float(spec["warmup"])
    if spec.get("sign"):
        signer = _Signer({**spec["sign"], "url": url, "body": spec["body"]})
        make = signer.sign
    else:
        fixed = Prepared(headers={"Content-Type": "application/json"}, body=spec["body"].encode())

        def make() -> Prepared:
            return fixed

    presign_rate = int(spec.get("presign_per_second", 0))
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        for concurrency in spec["concurrencies"]:
            needed = int(presign_rate * (duration + warmup)) + 200 if presign_rate else 0
            pool = [make() for _ in range(needed)]
            await run_phase(
                session, url, make, pool, concurrency=concurrency, duration=warmup
            )  # warm-up: connections open, caches filled; not reported
            _emit({"event": "start", "concurrency": concurrency})
            result = await run_phase(
                session, url, make, pool, concurrency=concurrency, duration=duration
            )
            _emit({"event": "end", "concurrency": concurrency, **result})
            await asyncio.sleep(_PAUSE_BETWEEN_PHASES)


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
