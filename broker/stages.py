"""Per-stage CPU accounting of the exchange pipeline, for ``make bench``; free when off.

Each stage's time is the CPU time of the event-loop thread (``time.thread_time_ns``) between
two marks. Stages that await (the adapter hop, the audit append) also count whatever other
exchanges the loop ran meanwhile, so under concurrency their share is an upper bound; the
audit writer's own thread is not counted in any stage. Totals go to
``<directory>/stages-<pid>.json`` four times a second from a daemon thread, so a benchmark
can read them from every worker process between runs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

__all__ = ["StageClock"]

_FLUSH_EVERY_SECONDS = 0.25


class StageClock:
    """Accumulates CPU nanoseconds per stage name; every method is a no-op when disabled."""

    def __init__(self, directory: Path | None = None) -> None:
        self.enabled = directory is not None
        self._path = directory / f"stages-{os.getpid()}.json" if directory is not None else None
        self._totals: dict[str, int] = {}
        self._exchanges = 0
        self._writer: threading.Thread | None = None

    def start(self) -> int:
        """A mark: the thread's CPU clock now (0 when disabled)."""
        return time.thread_time_ns() if self.enabled else 0

    def lap(self, stage: str, since: int) -> int:
        """Charge the CPU time since mark ``since`` to ``stage``; return a new mark."""
        if not self.enabled:
            return 0
        now = time.thread_time_ns()
        self._totals[stage] = self._totals.get(stage, 0) + now - since
        return now

    def done(self) -> None:
        """Count one exchange (and start the writer thread on the first)."""
        if not self.enabled:
            return
        self._exchanges += 1
        if self._writer is None:
            self._writer = threading.Thread(target=self._write_forever, daemon=True)
            self._writer.start()

    def flush(self) -> None:
        """Write the totals now (atomically: a reader never sees half a file)."""
        if self._path is None:
            return
        # dict() copies under the GIL: the loop thread may be adding a stage meanwhile.
        body = {"pid": os.getpid(), "exchanges": self._exchanges, "cpu_ns": dict(self._totals)}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self._path)

    def _write_forever(self) -> None:
        while True:
            time.sleep(_FLUSH_EVERY_SECONDS)
            self.flush()
