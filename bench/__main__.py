"""``python -m bench``: see :mod:`bench`."""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import BenchConfig, run
from bench.report import render


def _rounds(text: str) -> int:
    """``--rounds``: a whole number, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


#: The longest phase, in seconds: a window's requests are signed before it, and the broker
#: takes a signature only within 300 s of its ``created`` time, so the signing ahead and the
#: window together must fit in that.
MAX_DURATION = 60.0


def _seconds(text: str, *, zero: bool) -> float:
    """A phase's length in seconds, at most :data:`MAX_DURATION`; 0 only if ``zero``."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not ((value >= 0 if zero else value > 0) and value <= MAX_DURATION):  # nan fails both
        least = "from 0" if zero else "above 0 and"
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds {least} up to {MAX_DURATION:.0f} (a phase's "
            "requests are signed before it, and a signature is good for 300 s; use --rounds "
            "to measure longer)"
        )
    return value


def _duration(text: str) -> float:
    """``--duration``: more than 0 seconds, at most :data:`MAX_DURATION`."""
    return _seconds(text, zero=False)


def _warmup(text: str) -> float:
    """``--warmup``: 0 seconds or more, at most :data:`MAX_DURATION`."""
    return _seconds(text, zero=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark, print the report."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--duration", type=_duration, default=5.0, help="seconds per phase (at most 60)"
    )
    parser.add_argument(
        "--warmup", type=_warmup, default=1.0, help="unmeasured seconds first (at most 60)"
    )
    parser.add_argument(
        "--concurrency",
        default="1,8,32,64",
        help="comma-separated concurrencies (default 1,8,32,64)",
    )
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="broker worker processes"
    )
    parser.add_argument(
        "--no-pin-workers",
        dest="pin_workers",
        action="store_false",
        help="leave the workers unpinned (by default worker k runs on the k-th CPU, on Linux)",
    )
    parser.add_argument(
        "--rounds",
        type=_rounds,
        default=1,
        help="direct-then-broker window pairs per concurrency; the report takes the median round",
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    parser.add_argument(
        "--output", type=Path, default=Path("bench-results") / f"{stamp}.json", help="JSON file"
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="keep keys, databases and logs here"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="simpul-bench-") as tmp:
        results = run(
            BenchConfig(
                data_dir=args.data_dir or Path(tmp),
                output=args.output,
                concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
                duration=args.duration,
                warmup=args.warmup,
                workers=args.workers,
                pin_workers=args.pin_workers,
                rounds=args.rounds,
            )
        )
    render(results, sys.stdout)
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
