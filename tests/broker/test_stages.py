"""The per-stage CPU clock: free when off, totals per stage and exchange when on."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from broker.stages import UNTIMED, StageClock


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class TestStageClock:
    def test_off_records_nothing(self, tmp_path: Path) -> None:
        clock = StageClock()
        assert not clock.sample()
        mark = clock.start()
        assert clock.lap("schema", mark) == UNTIMED
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

    def test_totals_name_the_processs_threads_by_system_id(self, tmp_path: Path) -> None:
        started, stop = threading.Event(), threading.Event()

        def waiting() -> None:
            started.set()
            stop.wait()

        helper = threading.Thread(target=waiting, name="simpul-replay_0")
        helper.start()
        started.wait()
        try:
            clock = StageClock(tmp_path / "stages")
            clock.flush()
        finally:
            stop.set()
            helper.join()
        data = json.loads((tmp_path / "stages" / f"stages-{os.getpid()}.json").read_text())
        assert data["threads"][str(helper.native_id)] == "simpul-replay_0"
        assert data["threads"][str(threading.get_native_id())] == threading.current_thread().name

    def test_one_exchange_in_n_is_timed_and_only_those_count(self, tmp_path: Path) -> None:
        clock = StageClock(tmp_path / "stages", sample_every=3)
        timed = [clock.sample() for _ in range(7)]
        assert timed == [True, False, False, True, False, False, True]
        for sampled in timed:
            mark = clock.start(sampled)
            if sampled:
                _burn(0.002)
            clock.lap("schema", mark)
            clock.done(sampled)
        clock.flush()
        data = json.loads((tmp_path / "stages" / f"stages-{os.getpid()}.json").read_text())
        assert data["exchanges"] == 3
        assert data["cpu_ns"]["schema"] >= 3 * 2_000_000

    def test_an_exchange_not_timed_reads_no_clock(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        clock = StageClock(tmp_path / "stages")
        monkeypatch.setattr(time, "thread_time_ns", lambda: pytest.fail("clock read"))
        mark = clock.start(False)
        assert clock.lap("schema", mark) == UNTIMED
        clock.done(False)
        assert clock.enabled

    def test_sample_every_must_be_positive(self) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            StageClock(sample_every=0)
