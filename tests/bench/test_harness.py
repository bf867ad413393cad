"""The harness's reading of the broker workers' own writer threads."""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bench.harness import _writer_threads, _writer_threads_us
from broker.stages import StageClock

REPLAY = "replay cache's thread"
AUDIT = "audit writer's thread"


def _burn(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="psutil's thread ids are the system's on Linux"
)
class TestReadingTheThreads:
    def test_a_named_threads_cpu_is_read_under_its_label(self, tmp_path: Path) -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simpul-replay") as pool:
            pool.submit(_burn, 0).result()  # the thread exists, and the totals name it
            StageClock(tmp_path).flush()
            before = _writer_threads(tmp_path, {os.getpid()})
            pool.submit(_burn, 0.2).result()
            after = _writer_threads(tmp_path, {os.getpid()})
        assert [label for label, _ in after.values()] == [REPLAY]  # this thread alone
        per_request = _writer_threads_us(before, after, requests=10)
        assert list(per_request) == [REPLAY]  # no audit writer here: left out, not a zero
        assert per_request[REPLAY] >= 0.1 / 10 * 1e6  # ticks of 10 ms: at least half of it

    def test_a_process_outside_the_group_is_passed_over(self, tmp_path: Path) -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simpul-audit-writer") as pool:
            pool.submit(_burn, 0).result()
            StageClock(tmp_path).flush()
            assert [label for label, _ in _writer_threads(tmp_path, {os.getpid()}).values()] == [
                AUDIT
            ]
            assert _writer_threads(tmp_path, set()) == {}  # a stage file of another run


class TestPerRequest:
    def test_a_thread_new_since_the_start_counts_from_zero(self) -> None:
        assert _writer_threads_us({}, {(1, 2): (AUDIT, 0.003)}, requests=3) == {AUDIT: 1000.0}

    def test_a_thread_gone_by_the_end_counts_nothing(self) -> None:
        before = {(1, 2): (AUDIT, 5.0), (1, 3): (REPLAY, 1.0)}
        after = {(1, 3): (REPLAY, 1.5)}
        assert _writer_threads_us(before, after, requests=1000) == {REPLAY: 500.0}

    def test_threads_of_one_label_add_up(self) -> None:
        before = {(1, 2): (REPLAY, 1.0), (7, 8): (REPLAY, 2.0)}
        after = {(1, 2): (REPLAY, 1.25), (7, 8): (REPLAY, 2.25)}
        assert _writer_threads_us(before, after, requests=500) == {REPLAY: 1000.0}
