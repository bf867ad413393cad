"""The per-stage CPU clock: free when off, totals per stage and exchange when on."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from broker.stages import StageClock


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class TestStageClock:
    def test_off_records_nothing(self, tmp_path: Path) -> None:
        clock = StageClock()
        mark = clock.start()
        assert clock.lap("schema", mark) == 0
        clock.done()
        clock.flush()
        assert not clock.enabled
        assert list(tmp_path.iterdir()) == []

    def test_on_charges_each_stage_and_writes_totals(self, tmp_path: Path) -> None:
        clock = StageClock(tmp_path / "stages")
        mark = clock.start()
        _burn(0.01)
        mark = clock.lap("schema", mark)
        _burn(0.005)
        clock.lap("signing", mark)
        clock.done()
        clock.flush()
        data = json.loads((tmp_path / "stages" / f"stages-{os.getpid()}.json").read_text())
        assert data["exchanges"] == 1
        assert data["cpu_ns"]["schema"] >= 10_000_000
        assert 5_000_000 <= data["cpu_ns"]["signing"] < data["cpu_ns"]["schema"]
