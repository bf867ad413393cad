"""The workers' supervisor (``broker._supervise``) as a real process, with stand-in workers.

Each test runs a :class:`~broker._supervise.Supervisor` in its own interpreter over
``tests/broker/_fake_worker.py``, which speaks the real workers' protocol (a readiness byte, a
lifeline) and writes down what happens to it. The real workers are run by
``tests/e2e/test_workers.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broker import _supervise
from tests._waiting import until

_FAKE = Path(__file__).with_name("_fake_worker.py")

_RUN = """
import os
import sys
from broker._supervise import Supervisor, _keep_inherited_files, bind

fake, count, successor_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
cpus = [int(cpu) for cpu in sys.argv[4].split(",") if cpu]

def command(listener, lifeline, ready, level):
    # While the file is there, no interpreter at the path (a virtual environment rebuilt).
    gone = os.path.exists(os.path.join(os.environ["FAKE_WORKER_DIR"], "no-interpreter"))
    interpreter = "/nonexistent/python" if gone else sys.executable
    return [interpreter, fake, str(listener), str(lifeline), str(ready), level]

_keep_inherited_files()  # as main() does
listeners = bind("127.0.0.1", 0, count)
supervisor = Supervisor(
    count, listeners, "info", command=command, successor_seconds=successor_seconds, cpus=cpus
)
sys.exit(supervisor.run())
"""


class _Run:
    """A supervisor process, its stand-in workers' mode, and what they wrote down."""

    def __init__(
        self,
        directory: Path,
        count: int,
        successor_seconds: float,
        mode: str,
        pass_fds: tuple[int, ...] = (),
        cpus: tuple[int, ...] = (),
    ) -> None:
        self.directory = directory
        self.mode(mode)
        self._log = (directory / "supervisor.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _RUN,
                str(_FAKE),
                str(count),
                str(successor_seconds),
                ",".join(map(str, cpus)),
            ],
            env={**os.environ, "FAKE_WORKER_DIR": str(directory)},
            stderr=self._log,
            pass_fds=pass_fds,
        )

    def mode(self, mode: str) -> None:
        """What workers started from now on do (see ``_fake_worker.py``)."""
        (self.directory / "mode").write_text(mode)

    def events(self, what: str | None = None) -> list[tuple[str, int]]:
        return [(event, pid) for event, pid, _ in self._lines() if what in (None, event)]

    def pids(self, what: str) -> list[int]:
        return [pid for _, pid in self.events(what)]

    def serving(self) -> list[int]:
        """The workers the supervisor knows to serve (their byte read), in that order."""
        return [int(str(e["pid"])) for e in self.logged() if e["event"] == "worker_serving"]

    def sockets(self) -> dict[int, int]:
        """Each worker's listening socket (an inode), by pid."""
        return {pid: inode for _, pid, inode in self._lines()}

    def _lines(self) -> list[tuple[str, int, int]]:
        path = self.directory / "events"
        lines = path.read_text().splitlines() if path.exists() else []
        return [(event, int(pid), int(inode)) for event, pid, inode in map(str.split, lines)]

    def logged(self) -> list[dict[str, object]]:
        text = (self.directory / "supervisor.log").read_text()
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def logged_events(self) -> list[object]:
        return [line["event"] for line in self.logged()]

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self) -> int:
        return self.process.wait(timeout=20)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()
        for pid in self.pids("serving"):  # a worker a failed test left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., _Run]]:
    runs: list[_Run] = []

    def started(
        count: int = 2,
        *,
        successor_seconds: float = 60.0,
        mode: str = "serve",
        pass_fds: tuple[int, ...] = (),
        cpus: tuple[int, ...] = (),
        no_interpreter: bool = False,
    ) -> _Run:
        if no_interpreter:
            (tmp_path / "no-interpreter").touch()
        run = _Run(tmp_path, count, successor_seconds, mode, pass_fds, cpus)
        runs.append(run)
        return run

    yield started
    for run in runs:
        run.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of the supervisor that exited but is not reaped yet is gone all the same.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1]
    except ProcessLookupError:  # reaped between open and read: /proc says ESRCH
        return False
    except FileNotFoundError:  # reaped since, or a system without /proc (kill's answer)
        return not Path("/proc/self").exists()
    return not state.startswith("Z")


class TestSupervisor:
    @pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="lists /proc/self/fd (Linux)")
    def test_a_worker_gets_the_standard_streams_and_its_three_files_only(
        self, start: Callable[..., _Run], tmp_path: Path
    ) -> None:
        # A file the program that ran the supervisor left inheritable (a harness's pipe).
        stray, stray_w = os.pipe()
        os.set_inheritable(stray_w, True)
        try:
            run = start(1, pass_fds=(stray_w,))
            until(lambda: len(run.serving()) == 1, "a worker serving")
        finally:
            os.close(stray)
            os.close(stray_w)
        (pid,) = run.serving()
        inherited = [int(fd) for fd in (tmp_path / f"fds-{pid}").read_text().split()]
        assert stray_w not in inherited
        # The streams, then its listening socket, lifeline and readiness pipe.
        assert inherited[:3] == [0, 1, 2]
        assert len(inherited) == 6
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_a_worker_killed_by_a_signal_has_minus_that_signal_for_status(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start(1)
        until(lambda: len(run.serving()) == 1, "a worker serving")
        (pid,) = run.serving()
        os.kill(pid, signal.SIGKILL)
        until(lambda: "worker_died" in run.logged_events(), "the supervisor to see it")
        died = next(e for e in run.logged() if e["event"] == "worker_died")
        assert (died["pid"], died["status"]) == (pid, -signal.SIGKILL)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_workers_serve_until_sigterm_then_stop(self, start: Callable[..., _Run]) -> None:
        run = start(3)
        until(lambda: len(run.serving()) == 3, "three workers serving")
        # A listening socket each where the kernel spreads connections over them, else one.
        assert len(set(run.sockets().values())) == (3 if _supervise._SPREAD else 1)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(run.pids("serving"))
        assert run.logged_events()[-1] == "supervisor_stopped"

    def test_a_worker_that_dies_serving_is_replaced(self, start: Callable[..., _Run]) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        first, second = run.serving()
        os.kill(first, signal.SIGKILL)
        until(lambda: len(run.serving()) == 3, "a third worker serving")
        assert run.process.poll() is None
        assert _alive(second)
        third = run.serving()[2]
        assert run.sockets()[third] == run.sockets()[first]  # it takes over the same queue
        died = [line for line in run.logged() if line["event"] == "worker_died"]
        assert [(d["pid"], d["status"]) for d in died] == [(first, -signal.SIGKILL)]
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_a_worker_that_cannot_start_stops_the_server(self, start: Callable[..., _Run]) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        first, second = run.serving()
        run.mode("fail")  # its replacement will fail as the app, the database... would
        os.kill(first, signal.SIGKILL)
        assert run.wait() == _supervise.STARTUP_FAILURE
        assert run.pids("stopped") == [second]  # the serving one was stopped, not left behind
        assert "worker_failed_to_start" in run.logged_events()

    def test_workers_that_cannot_start_at_all(self, start: Callable[..., _Run]) -> None:
        run = start(mode="fail")
        assert run.wait() == _supervise.STARTUP_FAILURE
        assert run.events() == []

    def test_a_worker_killed_before_it_serves_is_replaced(self, start: Callable[..., _Run]) -> None:
        run = start(1, mode="silent")  # starts, never says it serves
        until(lambda: run.logged_events().count("worker_started") == 1, "a worker started")
        (silent,) = [e["pid"] for e in run.logged() if e["event"] == "worker_started"]
        run.mode("serve")
        os.kill(int(str(silent)), signal.SIGKILL)  # the OOM killer, say: not a broken app
        until(lambda: len(run.serving()) == 1, "its replacement serving")
        assert run.process.poll() is None
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_sighup_replaces_each_worker_once_its_successor_serves(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        old = run.serving()
        run.signal(signal.SIGHUP)
        until(lambda: len(run.pids("stopped")) == 2, "both old workers stopped")
        until(lambda: len(run.serving()) == 4, "two successors serving")
        new = run.serving()[2:]
        assert not set(new) & set(old)
        sockets = run.sockets()
        replaced = {sockets[pid]: pid for pid in old}
        events = run.events()
        for successor in new:  # each on its predecessor's socket, which stopped only after
            predecessor = replaced[sockets[successor]]
            assert events.index(("serving", successor)) < events.index(("stopped", predecessor))
        # One at a time: the second successor started after the first one served.
        logged = [(e["event"], e.get("pid")) for e in run.logged()]
        assert logged.index(("worker_serving", new[0])) < logged.index(("worker_started", new[1]))
        assert all(_alive(pid) for pid in new)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(old + new)

    @pytest.mark.skipif(not _supervise.can_pin(), reason="pins with sched_setaffinity (Linux)")
    def test_pinned_each_slot_runs_on_its_cpu_from_the_start_and_so_does_its_replacement(
        self, start: Callable[..., _Run], tmp_path: Path
    ) -> None:
        allowed = _supervise.worker_cpus()
        cpus = (allowed[-1], allowed[0])  # slot 0 on the last CPU: not on the first by chance
        run = start(3, cpus=cpus)
        until(lambda: len(run.serving()) == 3, "three workers serving")
        started = [(e["pid"], e["cpu"]) for e in run.logged() if e["event"] == "worker_started"]
        # Round robin over the CPUs given, slot by slot.
        assert [cpu for _, cpu in started] == [cpus[0], cpus[1], cpus[0]]
        for pid, cpu in started:  # as it started: before any thread of its own
            assert (tmp_path / f"cpus-{pid}").read_text() == str(cpu)
        # The supervisor pinned itself only for each spawn.
        assert os.sched_getaffinity(run.process.pid) == set(allowed)

        second = int(str(started[1][0]))
        os.kill(second, signal.SIGKILL)
        until(lambda: len(run.serving()) == 4, "a replacement serving")
        replacement = run.serving()[-1]
        assert (tmp_path / f"cpus-{replacement}").read_text() == str(cpus[1])
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    @pytest.mark.skipif(not _supervise.can_pin(), reason="pins with sched_setaffinity (Linux)")
    def test_a_cpu_the_kernel_refuses_leaves_the_worker_unpinned_and_says_so(
        self, start: Callable[..., _Run], tmp_path: Path
    ) -> None:
        allowed = _supervise.worker_cpus()
        absent = max(allowed) + 64  # no such CPU: the kernel says EINVAL
        run = start(1, cpus=(absent,))
        until(lambda: len(run.serving()) == 1, "a worker serving")
        (pid,) = run.serving()
        assert (tmp_path / f"cpus-{pid}").read_text() == " ".join(map(str, allowed))
        logged = {e["event"]: e for e in run.logged()}
        assert logged["worker_started"]["cpu"] is None
        assert (logged["worker_not_pinned"]["pid"], logged["worker_not_pinned"]["cpu"]) == (
            pid,
            absent,
        )
        assert os.sched_getaffinity(run.process.pid) == set(allowed)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_unpinned_a_worker_runs_where_the_supervisor_may(
        self, start: Callable[..., _Run], tmp_path: Path
    ) -> None:
        run = start(2)
        until(lambda: len(run.serving()) == 2, "two workers serving")
        started = [e for e in run.logged() if e["event"] == "worker_started"]
        assert all("cpu" not in e for e in started)
        if _supervise.can_pin():
            allowed = " ".join(map(str, _supervise.worker_cpus()))
            assert all((tmp_path / f"cpus-{pid}").read_text() == allowed for pid in run.serving())
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    @pytest.mark.parametrize(
        ("mode", "seconds", "reason"),
        [
            ("fail", 60.0, "the new worker exited before it served"),
            ("silent", 0.5, "the new worker did not serve within 0.5 s"),
        ],
    )
    def test_a_restart_whose_successor_fails_keeps_the_old_workers(
        self, start: Callable[..., _Run], mode: str, seconds: float, reason: str
    ) -> None:
        run = start(successor_seconds=seconds)
        until(lambda: len(run.serving()) == 2, "two workers serving")
        old = run.serving()
        run.mode(mode)
        run.signal(signal.SIGHUP)
        until(lambda: "restart_abandoned" in run.logged_events(), "the restart given up")
        abandoned = next(e for e in run.logged() if e["event"] == "restart_abandoned")
        assert abandoned["reason"] == reason
        assert run.process.poll() is None
        assert all(_alive(pid) for pid in old)
        assert run.pids("stopped") == []
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(old)

    def test_a_restart_whose_successor_cannot_be_started_keeps_the_old_workers(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        old = run.serving()
        (run.directory / "no-interpreter").touch()  # a virtual environment being rebuilt
        run.signal(signal.SIGHUP)
        until(lambda: "restart_abandoned" in run.logged_events(), "the restart given up")
        abandoned = next(e for e in run.logged() if e["event"] == "restart_abandoned")
        assert abandoned["reason"] == "the new worker could not be started"
        assert "worker_spawn_failed" in run.logged_events()
        assert run.process.poll() is None
        assert all(_alive(pid) for pid in old)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(old)

    @pytest.mark.parametrize("which", ["being replaced", "next to be replaced"])
    def test_an_old_worker_that_dies_during_a_restart(
        self, start: Callable[..., _Run], which: str
    ) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        old = run.serving()
        sockets = run.sockets()
        run.mode("slow")  # a successor takes a second to serve: the old one dies meanwhile
        run.signal(signal.SIGHUP)
        until(lambda: run.logged_events().count("worker_started") == 3, "a successor started")
        successor = int(str([e["pid"] for e in run.logged() if e["event"] == "worker_started"][2]))
        # The worker the first successor replaces: the one on the socket it was handed.
        first = next(pid for pid in old if sockets[pid] == _inode_of(run, successor))
        dying = first if which == "being replaced" else next(p for p in old if p != first)
        os.kill(dying, signal.SIGKILL)

        def settled() -> list[int]:
            alive = [pid for pid in run.serving() if _alive(pid)]
            return alive if len(alive) == 2 and not set(alive) & set(old) else []

        until(settled, "two new workers and none of the old")
        alive = settled()
        assert len({run.sockets()[pid] for pid in alive}) == len(set(sockets.values()))
        # Four started in all: the dying worker's slot was taken over by its successor, or
        # (the next one's) refilled at once and then left out of the restart.
        assert run.logged_events().count("worker_started") == 4
        assert run.process.poll() is None
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_a_stop_during_a_restart_stops_the_successor_too(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        run.mode("slow")
        run.signal(signal.SIGHUP)
        until(lambda: run.logged_events().count("worker_started") == 3, "a successor started")
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        started = [int(str(e["pid"])) for e in run.logged() if e["event"] == "worker_started"]
        assert not any(_alive(pid) for pid in started)

    def test_a_second_sighup_waits_for_the_first_restart(self, start: Callable[..., _Run]) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        run.mode("slow")
        run.signal(signal.SIGHUP)
        until(lambda: run.logged_events().count("worker_started") == 3, "a successor started")
        run.signal(signal.SIGHUP)
        until(lambda: "restart_in_progress" in run.logged_events(), "the second one noted")
        until(lambda: len(run.pids("stopped")) == 2, "the first restart done")
        time.sleep(0.3)
        assert run.logged_events().count("worker_started") == 4  # two successors, not four
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_a_second_stop_signal_kills_workers_that_linger(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start(mode="stubborn")
        until(lambda: len(run.serving()) == 2, "two workers serving")
        run.signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            run.process.wait(timeout=0.5)  # the workers ignore SIGTERM: it waits for them
        run.signal(signal.SIGINT)
        assert run.wait() == 128 + signal.SIGINT  # not a clean stop: the workers were killed
        assert not any(_alive(pid) for pid in run.pids("serving"))
        (killed,) = [line for line in run.logged() if line["event"] == "workers_killed"]
        assert sorted(killed["pids"]) == sorted(run.pids("serving"))  # type: ignore[arg-type]

    def test_a_stop_closes_the_port_while_the_workers_finish(
        self, start: Callable[..., _Run]
    ) -> None:
        """New connections are refused at once, not queued for workers that no longer
        accept them (and reset when the last one ends): a load balancer goes elsewhere."""
        run = start(mode="draining")
        until(lambda: len(run.serving()) == 2, "two workers serving")
        port = int((run.directory / "port").read_text())
        socket.create_connection(("127.0.0.1", port), timeout=5).close()  # it listens
        run.signal(signal.SIGTERM)
        until(lambda: len(run.pids("draining")) == 2, "both workers draining")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5)
        assert run.process.poll() is None  # the workers still finish what they serve
        assert run.wait() == 0

    def test_a_worker_killed_at_every_start_is_replaced_ever_more_slowly(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start(1, mode="die")
        until(lambda: run.logged_events().count("worker_died") >= 3, "three deaths")
        died = [line for line in run.logged() if line["event"] == "worker_died"]
        assert [line["restart_in"] for line in died[:3]] == [0.0, 0.5, 1.0]
        run.signal(signal.SIGTERM)
        assert run.wait() == 0  # a replacement due is not started once stopping

    def test_a_worker_that_cannot_be_started_is_tried_again_and_the_others_serve_on(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        first, second = run.serving()
        (run.directory / "no-interpreter").touch()
        os.kill(first, signal.SIGKILL)
        until(lambda: "worker_spawn_failed" in run.logged_events(), "a failed spawn")
        assert run.process.poll() is None
        assert _alive(second)  # not killed with the supervisor's failure, as it was
        (run.directory / "no-interpreter").unlink()
        until(lambda: len(run.serving()) == 3, "the replacement serving")
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_workers_that_cannot_be_started_at_all(self, start: Callable[..., _Run]) -> None:
        run = start(no_interpreter=True)
        assert run.wait() == _supervise.STARTUP_FAILURE
        assert "worker_spawn_failed" in run.logged_events()
        assert run.events() == []

    def test_workers_stop_when_the_supervisor_is_killed(self, start: Callable[..., _Run]) -> None:
        run = start()
        until(lambda: len(run.serving()) == 2, "two workers serving")
        run.signal(signal.SIGKILL)
        run.wait()
        until(lambda: len(run.pids("orphaned")) == 2, "both workers see the lifeline close")

    def test_the_log_is_json_lines_at_the_level_asked(self, start: Callable[..., _Run]) -> None:
        run = start(1)
        until(lambda: len(run.serving()) == 1, "one worker serving")
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        lines = run.logged()
        assert [line["event"] for line in lines] == [
            "supervisor_started",
            "worker_started",
            "worker_serving",
            "supervisor_stopping",
            "supervisor_stopped",
        ]
        assert {line["level"] for line in lines} == {"info"}
        stamps = [datetime.fromisoformat(str(line["timestamp"])) for line in lines]
        assert all(stamp.tzinfo == UTC for stamp in stamps)
        assert stamps == sorted(stamps)
        assert abs(datetime.now(UTC) - stamps[-1]) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("now", "stamp"),
    [
        (0.0, "1970-01-01T00:00:00.000000Z"),
        (1_796_456_711.042817, "2026-12-05T07:45:11.042817Z"),
        (1_796_456_711.9999997, "2026-12-05T07:45:12.000000Z"),  # rounded, into the next second
    ],
)
def test_a_log_line_is_stamped_in_utc_to_the_microsecond(now: float, stamp: str) -> None:
    assert _supervise._utc_stamp(now) == stamp
    # As datetime writes it.
    assert stamp == datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.skipif(not _supervise.can_pin(), reason="pins with sched_setaffinity (Linux)")
@pytest.mark.parametrize("restore_fails", [False, True])
def test_a_pinned_spawn_returns_its_worker_even_if_the_affinity_cannot_be_restored(
    monkeypatch: pytest.MonkeyPatch, restore_fails: bool
) -> None:
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    calls: list[set[int]] = []

    def set_affinity(pid: int, cpus: set[int]) -> None:
        assert pid == 0
        calls.append(set(cpus))
        if restore_fails and len(calls) == 2:
            raise OSError(22, "Invalid argument")

    started: list[Sequence[str]] = []

    class Spawned:
        def __init__(self, args: Sequence[str], pass_fds: Sequence[int]) -> None:
            assert calls == [{cpu}]  # spawned while pinned
            started.append(args)

    # Stand-ins: the test process is never pinned, and nothing is spawned.
    monkeypatch.setattr(_supervise.os, "sched_setaffinity", set_affinity)
    monkeypatch.setattr(_supervise, "_Process", Spawned)
    process, pinned = _supervise._start_on(cpu, ["worker"], pass_fds=())
    assert isinstance(process, Spawned)
    assert pinned == cpu
    assert started == [["worker"]]
    assert calls == [{cpu}, set(allowed)]  # the way back tried, whether or not it worked


def _inode_of(run: _Run, pid: int) -> int:
    """The listening socket of a worker, once it has started."""
    until(lambda: pid in run.sockets(), f"worker {pid} started")
    return run.sockets()[pid]


class TestBind:
    @pytest.mark.skipif(not _supervise._SPREAD, reason="SO_REUSEPORT spreads only on Linux")
    def test_the_kernel_spreads_connections_over_the_workers_sockets(self) -> None:
        listeners = _supervise.bind("127.0.0.1", 0, 2)
        clients: list[socket.socket] = []
        try:
            assert len({sock.getsockname() for sock in listeners}) == 1  # one port
            for _ in range(200):
                clients.append(socket.create_connection(listeners[0].getsockname()))
            accepted = [0, 0]
            for i, sock in enumerate(listeners):
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    while True:
                        sock.accept()[0].close()
                        accepted[i] += 1
            assert sum(accepted) == 200
            # A hash of each connection's addresses: 100 each, give or take; below 50 on a
            # socket would happen about once in 10^13 runs.
            assert min(accepted) >= 50, accepted
        finally:
            for sock in (*clients, *listeners):
                sock.close()

    @pytest.mark.skipif(not _supervise._SPREAD, reason="SO_REUSEPORT spreads only on Linux")
    def test_a_port_another_server_spreads_over_is_refused_not_shared(self) -> None:
        first = _supervise.bind("127.0.0.1", 0, 2)
        try:
            port = first[0].getsockname()[1]
            with pytest.raises(OSError, match="in use"):
                _supervise.bind("127.0.0.1", port, 2)  # a second `simpul serve`, same user
        finally:
            for sock in first:
                sock.close()

    def test_one_shared_socket_where_the_kernel_does_not_spread(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(_supervise, "_SPREAD", False)
        listeners = _supervise.bind("127.0.0.1", 0, 3)
        try:
            assert len(listeners) == 1
        finally:
            listeners[0].close()

    def test_a_port_taken_by_another_program_is_refused(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(OSError, match="in use"):
                _supervise.bind("127.0.0.1", taken.getsockname()[1], 2)


class TestMain:
    def test_a_port_in_use_is_a_startup_failure(self, capsys: pytest.CaptureFixture[str]) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status = _supervise.main(["2", "127.0.0.1", str(port), "info", "free"])
        assert status == _supervise.STARTUP_FAILURE
        line = json.loads(capsys.readouterr().err.strip())
        assert line["event"] == "bind_failed"
        assert line["port"] == port

    def test_warnings_only_hides_info(self, capsys: pytest.CaptureFixture[str]) -> None:
        log = _supervise._Log("warning")
        log("info", "worker_started", pid=1)
        log("warning", "worker_died", pid=1, status=-9)
        lines = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["event"] for line in lines] == ["worker_died"]

    def test_a_supervisor_needs_a_worker_and_a_socket_for_each_or_all(self) -> None:
        with socket.socket() as sock, pytest.raises(ValueError, match="at least one"):
            _supervise.Supervisor(0, [sock], "info")
        with socket.socket() as sock, pytest.raises(ValueError, match="or one for each"):
            _supervise.Supervisor(3, [sock, sock], "info")

    def test_the_supervisor_command_line_says_where_the_workers_run(self) -> None:
        command = [sys.executable, "-P", "-m", "broker._supervise", "2", "127.0.0.1", "80", "info"]
        assert _supervise.argv(2, "127.0.0.1", 80, "info") == [*command, "free"]
        assert _supervise.argv(2, "127.0.0.1", 80, "info", pin=True) == [*command, "pinned"]

    def test_a_supervisor_refuses_a_placement_it_does_not_know(self) -> None:
        with pytest.raises(ValueError, match="PLACEMENT must be pinned or free"):
            _supervise.main(["2", "127.0.0.1", "0", "info", "spread"])

    def test_the_worker_command_line(self) -> None:
        assert _supervise.worker_argv(5, 6, 7, "debug") == [
            sys.executable,
            "-P",
            "-m",
            "broker._worker",
            "5",
            "6",
            "7",
            "debug",
        ]
