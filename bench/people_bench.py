"""``python -m bench.people_bench``: what a record about several people costs an exchange, each
figure beside its baseline measured in the same run.

- broker CPU to work out whom a record names and whom to file it under besides
  (:func:`consent.people.record_people`, :func:`broker.exchange.co_subject_refs`, and the
  ``exchange.co_subject`` entries), for a four-member family card beside a KTP;
- a durable audit append (SQLite, WAL, ``synchronous=FULL``) of such an exchange's four records
  in one transaction, beside the one record of a KTP exchange: wall time and CPU.

Not a test: it prints figures, asserts nothing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from audit import append_now, install, subject_ref
from bench.audit_bench import _engine, _entry
from broker.exchange import CO_SUBJECT_EVENT, co_subject_refs
from consent.people import record_people

SECRET = b"\x5e" * 32
TODAY = date(2026, 12, 7)
_FAMILY = [
    ("1980-01-02", "KAWIN", "KEPALA KELUARGA"),
    ("1982-03-04", "KAWIN", "ISTRI"),
    ("2010-05-06", "BELUM KAWIN", "ANAK"),
    ("2014-07-08", "BELUM KAWIN", "ANAK"),
]
KK: dict[str, Any] = {
    "no_kk": "3174010101200001",
    "anggota": [
        {
            "nik": f"31740115059000{i:02d}",
            "tanggal_lahir": born,
            "status_perkawinan": status,
            "hubungan_keluarga": relation,
        }
        for i, (born, status, relation) in enumerate(_FAMILY, 1)
    ],
}
KTP: dict[str, Any] = {"nik": KK["anggota"][0]["nik"]}
FILED_UNDER = subject_ref(KTP["nik"], SECRET)
ENTRY = _entry(0)


def _co_subject_entries(code: str, record: dict[str, Any]) -> int:
    people = record_people(code, record, today=TODAY)
    refs = co_subject_refs(people.subjects, filed_under=FILED_UNDER, secret=SECRET)
    return len([replace(ENTRY, event=CO_SUBJECT_EVENT, subject_ref=ref) for ref in refs])


def _per_call_us(
    fn: Callable[[], object],
    calls: int,
    rounds: int = 5,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Median over ``rounds`` of the mean µs per call of ``calls`` calls."""
    means = []
    for _ in range(rounds):
        start = clock()
        for _ in range(calls):
            fn()
        means.append((clock() - start) / calls * 1e6)
    return statistics.median(means)


def main() -> int:
    """Print each figure beside its baseline."""
    cpu = time.process_time
    ktp = _per_call_us(lambda: _co_subject_entries("ktp", KTP), 20_000, clock=cpu)
    kk = _per_call_us(lambda: _co_subject_entries("kk", KK), 20_000, clock=cpu)
    print(f"whom to file under, KK of 4: {kk:5.1f} µs CPU (baseline, a KTP: {ktp:.1f} µs)")
    with tempfile.TemporaryDirectory(prefix="simpul-bench-people-") as tmp:
        engine = _engine(Path(tmp) / "audit.db")
        install(engine)
        numbers = iter(range(10**9))

        def append(records: int) -> Callable[[], object]:
            def once() -> object:
                first = _entry(next(numbers))
                others = [replace(first, event=CO_SUBJECT_EVENT) for _ in range(records - 1)]
                return append_now(engine, [first, *others])

            return once

        for _ in range(50):  # the file and its WAL grown, the caches warm
            append(1)()
        for records in (1, 4):
            wall = _per_call_us(append(records), 300)
            cpu = _per_call_us(append(records), 300, clock=time.process_time)
            label = "KTP, 1 record:     " if records == 1 else "KK of 4, 4 records:"
            print(f"durable audit append, {label} {wall:5.0f} µs wall, {cpu:5.0f} µs CPU")
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
