"""``simpul serve --workers 2`` as a real process: the supervisor and two workers.

The command checks and prepares in its own process, then replaces itself by the workers'
supervisor (same pid), which imports no framework: what the checks imported and built is not
kept for the server's life. Where the platform can, the module's server pins its workers to
CPUs (``SIMPUL_PIN_WORKERS``); the server whose supervisor a test kills does not.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest

from broker._supervise import can_pin, worker_cpus
from broker.client import SimpulClient
from broker.sandbox_env import KTP, PERMIT_OFFICE, SandboxWorld
from tests._waiting import until
from tests.e2e.conftest import grant, running

pytestmark = pytest.mark.e2e


def _two_workers(data_dir: Path, *, pinned: bool = False) -> SandboxWorld:
    world = SandboxWorld.create(data_dir)
    world.extra_env["SIMPUL_WORKERS"] = "2"
    world.extra_env["SIMPUL_PIN_WORKERS"] = "true" if pinned else "false"
    return world


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorld]:
    world = _two_workers(tmp_path_factory.mktemp("workers"), pinned=can_pin())
    with running(world) as world:
        yield world


def _expected_cpus() -> list[list[int]]:
    """Where the module's server runs its two workers, slot by slot."""
    cpus = worker_cpus()
    return sorted([[cpus[0]], [cpus[1 % len(cpus)]]])


def _cpus(workers: list[psutil.Process]) -> list[list[int]]:
    """The CPUs each worker may run on, which every one of its threads shares."""
    found = []
    for worker in workers:
        threads = {tuple(sorted(os.sched_getaffinity(t.id))) for t in worker.threads()}
        assert len(threads) == 1, f"worker {worker.pid}'s threads run on different CPUs"
        found.append(list(threads.pop()))
    return sorted(found)


def _workers(supervisor: psutil.Process) -> list[psutil.Process]:
    return [p for p in supervisor.children() if "broker._worker" in p.cmdline()]


def _fetch_all(world: SandboxWorld, people: Any, count: int) -> list[Any]:
    nik = next(p.nik for p in people.people if p.has_ktp and p.nik not in people.faults)
    with SimpulClient(
        base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.permit_key
    ) as office:
        granted = grant(world, office, nik)
        with ThreadPoolExecutor(8) as pool:
            return list(
                pool.map(
                    lambda _: office.fetch(KTP, {"nik": nik}, consent_token=granted.token),
                    range(count),
                )
            )


def test_a_lean_supervisor_and_two_workers(two_workers: SandboxWorld, people: Any) -> None:
    supervisor = psutil.Process(two_workers.process("broker").pid)
    command = supervisor.cmdline()[1:5]
    assert command == ["-P", "-m", "broker._supervise", "2"]
    workers = _workers(supervisor)
    assert len(workers) == 2
    if can_pin():
        assert supervisor.cmdline()[-1] == "pinned"

    results = _fetch_all(two_workers, people, 40)
    assert all(r.ok for r in results), [r.problem_type for r in results if not r.ok]
    assert len({r.audit_seq for r in results}) == 40
    # The supervisor holds the standard library (≈12 MB), not uvicorn (≈26 MB and a ≈12 MB
    # resource tracker) nor a broker (≈110 MB, what it held first).
    assert supervisor.memory_info().rss < 24 * 2**20
    assert [p.pid for p in supervisor.children(recursive=True)] == [w.pid for w in workers]
    if can_pin():  # after the exchanges: the writers' threads have started
        assert _cpus(workers) == _expected_cpus()
        assert os.sched_getaffinity(supervisor.pid) == set(worker_cpus())


def test_sighup_replaces_the_workers_and_the_broker_serves_on(
    two_workers: SandboxWorld, people: Any
) -> None:
    supervisor = psutil.Process(two_workers.process("broker").pid)
    old = _workers(supervisor)
    supervisor.send_signal(signal.SIGHUP)
    _, alive = psutil.wait_procs(old, timeout=60)
    assert not alive, "an old worker was not replaced"
    until(lambda: len(_workers(supervisor)) == 2, "two new workers")
    assert not {p.pid for p in _workers(supervisor)} & {p.pid for p in old}
    results = _fetch_all(two_workers, people, 10)
    assert all(r.ok for r in results), [r.problem_type for r in results if not r.ok]
    if can_pin():  # each successor where its predecessor ran
        assert _cpus(_workers(supervisor)) == _expected_cpus()


def test_the_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    with running(_two_workers(tmp_path)) as world:
        supervisor = psutil.Process(world.process("broker").pid)
        workers = _workers(supervisor)
        assert len(workers) == 2
        world.kill("broker")  # SIGKILL: the supervisor cannot pass anything on
        _, alive = psutil.wait_procs(workers, timeout=30)
        assert not alive, "a worker outlived its supervisor"


def test_one_worker_notes_sighup_and_serves_on(tmp_path: Path, people: Any) -> None:
    """One worker has no supervisor to replace it: SIGHUP would have ended the process, and
    every exchange in flight with it."""
    with running(SandboxWorld.create(tmp_path)) as world:
        broker = world.process("broker")
        broker.send_signal(signal.SIGHUP)
        log = world.data_dir / "logs" / "broker.log"
        until(lambda: "sighup_ignored" in log.read_text(), "SIGHUP noted in the log")
        assert broker.poll() is None
        results = _fetch_all(world, people, 4)
        assert all(r.ok for r in results), [r.problem_type for r in results if not r.ok]
