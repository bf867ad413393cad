"""Per-stage CPU accounting of the exchange pipeline, for ``make bench``; free when off.

Each stage's time is the CPU time of the event-loop thread (``time.thread_time_ns``) between
two marks. Stages that await (the adapter hop, the audit append) also count whatever other
exchanges the loop ran meanwhile, so under concurrency their share is an upper bound; the
audit writer's own thread is not counted in any stage. Totals go to
``<directory>/stages-<pid>.json`` four times a second from a daemon thread, so a benchmark
can read them from every worker process between runs, with the process's threads by system
id and name, so that it can read the CPU of the writers' own threads from the system.

Only one exchange in :data:`SAMPLE_EVERY` is timed, and the totals count only those: reading
a thread's CPU clock is a system call, and a dozen of them on every exchange cost the broker
several per cent of the CPU the benchmark was measuring. An exchange not timed pays for one
counter step and an integer test per mark.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

__all__ = ["SAMPLE_EVERY", "UNTIMED", "StageClock"]

_FLUSH_EVERY_SECONDS = 0.25

#: One exchange in this many is timed (the first, then every SAMPLE_EVERY-th).
SAMPLE_EVERY = 8

#: The mark of an exchange that is not timed (or of a disabled clock).
UNTIMED = -1


class StageClock:
    """Accumulates CPU nanoseconds per stage name; every method is a no-op when disabled."""

    def __init__(self, directory: Path | None = None, *, sample_every: int = SAMPLE_EVERY) -> None:
        if sample_every < 1:
            raise ValueError("sample_every must be at least 1")
        self.enabled = directory is not None
        self._path = directory / f"stages-{os.getpid()}.json" if directory is not None else None
        self._every = sample_every
        self._seen = 0
        self._totals: dict[str, int] = {}
        self._exchanges = 0
        self._writer: threading.Thread | None = None

    def sample(self) -> bool:
        """Whether to time the exchange that starts now (False when disabled)."""
        if not self.enabled:
            return False
        self._seen += 1
        return self._seen % self._every == 1 % self._every

    def start(self, timed: bool = True) -> int:
        """A mark: the thread's CPU clock now; :data:`UNTIMED` if disabled or not ``timed``."""
        return time.thread_time_ns() if timed and self.enabled else UNTIMED

    def lap(self, stage: str, since: int) -> int:
        """Charge the CPU time since mark ``since`` to ``stage``; return a new mark."""
        if since == UNTIMED:
            return UNTIMED
        now = time.thread_time_ns()
        self._totals[stage] = self._totals.get(stage, 0) + now - since
        return now

    def done(self, timed: bool = True) -> None:
        """Count one timed exchange (and start the writer thread on the first)."""
        if not (timed and self.enabled):
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
        body = {
            "pid": os.getpid(),
            "exchanges": self._exchanges,
            "cpu_ns": dict(self._totals),
            # Which of the process's threads is which (the system knows them all as "python"),
            # so the benchmark can read the audit writer's and the replay cache's CPU apart.
            "threads": {
                str(thread.native_id): thread.name
                for thread in threading.enumerate()
                if thread.native_id is not None
            },
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body))
        tmp.replace(self._path)

    def _write_forever(self) -> None:
        while True:
            time.sleep(_FLUSH_EVERY_SECONDS)
            self.flush()
