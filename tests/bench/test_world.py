"""The benchmark's reading of a process group: CPU and memory of a process and its children."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench._world import ProcessGroup


def test_memory_of_a_group_counts_its_children() -> None:
    alone_rss, alone_pss, alone_file = ProcessGroup(os.getpid()).memory_bytes()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rss, pss, file = ProcessGroup(os.getpid()).memory_bytes()
            if rss > alone_rss + 2**20:
                break
            time.sleep(0.05)
        assert rss > alone_rss + 2**20  # the child's interpreter, at least a megabyte
        if sys.platform == "linux":
            assert alone_pss is not None
            assert pss is not None
            # Shared pages are divided among the processes sharing them, not counted in each.
            assert 0 < alone_pss <= alone_rss
            assert alone_pss < pss <= rss
            # The interpreter and its libraries are mapped from files, in both processes.
            assert alone_file is not None
            assert file is not None
            assert 0 < alone_file < alone_rss
            assert alone_file < file < rss
    finally:
        child.kill()
        child.wait()
