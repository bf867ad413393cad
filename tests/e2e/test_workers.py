"""``simpul serve --workers 2`` as a real process: uvicorn's supervisor and two workers.

The command checks and prepares in its own process, then replaces itself by uvicorn's
supervisor (same pid): what the checks imported and built is not kept for the server's life.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from broker.client import SimpulClient
from broker.sandbox_env import KTP, PERMIT_OFFICE, SandboxWorld
from tests.e2e.conftest import grant, running

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    data_dir: Path = tmp_path_factory.mktemp("workers")
    world = SandboxWorld.create(data_dir)
    world.extra_env["SIMPUL_WORKERS"] = "2"
    with running(world):
        yield world


def test_a_lean_supervisor_and_two_workers(two_workers: SandboxWorld, people: Any) -> None:
    supervisor = psutil.Process(two_workers.process("broker").pid)
    command = supervisor.cmdline()[1:5]
    assert command == ["-P", "-m", "broker._supervise", "2"]
    workers = [p for p in supervisor.children() if "--multiprocessing-fork" in p.cmdline()]
    assert len(workers) == 2

    nik = next(p.nik for p in people.people if p.has_ktp and p.nik not in people.faults)
    with SimpulClient(
        base_url=two_workers.broker_url, client_id=PERMIT_OFFICE, key=two_workers.permit_key
    ) as office:
        granted = grant(two_workers, office, nik)
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(
                    lambda _: office.fetch(KTP, {"nik": nik}, consent_token=granted.token),
                    range(40),
                )
            )
    assert all(r.ok for r in results), [r.problem_type for r in results if not r.ok]
    assert len({r.audit_seq for r in results}) == 40
    # The supervisor holds uvicorn (≈26 MB), not a broker (≈110 MB, what it held before).
    assert supervisor.memory_info().rss < 60 * 2**20

    two_workers.stop()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "a worker outlived the supervisor"
