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
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from broker import _supervise

_FAKE = Path(__file__).with_name("_fake_worker.py")

_RUN = """
import sys
from broker._supervise import Supervisor, bind

fake, count, successor_seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def command(listener, lifeline, ready, level):
    return [sys.executable, fake, str(listener), str(lifeline), str(ready), level]

listeners = bind("127.0.0.1", 0, count)
supervisor = Supervisor(
    count, listeners, "info", command=command, successor_seconds=successor_seconds
)
sys.exit(supervisor.run())
"""


class _Run:
    """A supervisor process, its stand-in workers' mode, and what they wrote down."""

    def __init__(self, directory: Path, count: int, successor_seconds: float) -> None:
        self.directory = directory
        self.mode("serve")
        self._log = (directory / "supervisor.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _RUN, str(_FAKE), str(count), str(successor_seconds)],
            env={**os.environ, "FAKE_WORKER_DIR": str(directory)},
            stderr=self._log,
        )

    def mode(self, mode: str) -> None:
        """What workers started from now on do (see ``_fake_worker.py``)."""
        (self.directory / "mode").write_text(mode)

    def events(self, what: str | None = None) -> list[tuple[str, int]]:
        return [(event, pid) for event, pid, _ in self._lines() if what in (None, event)]

    def pids(self, what: str) -> list[int]:
        return [pid for _, pid in self.events(what)]

    def sockets(self) -> dict[int, int]:
        """Each worker's listening socket (an inode), by pid."""
        return {pid: inode for event, pid, inode in self._lines() if event == "serving"}

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

    def started(count: int = 2, *, successor_seconds: float = 60.0) -> _Run:
        run = _Run(tmp_path, count, successor_seconds)
        runs.append(run)
        return run

    yield started
    for run in runs:
        run.close()


def _until(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A child of the supervisor that exited but is not reaped yet is gone all the same.
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(") ")[-1].startswith("Z"))


class TestSupervisor:
    def test_workers_serve_until_sigterm_then_stop(self, start: Callable[..., _Run]) -> None:
        run = start(3)
        _until(lambda: len(run.pids("serving")) == 3, "three workers serving")
        # A listening socket each where the kernel spreads connections over them, else one.
        assert len(set(run.sockets().values())) == (3 if _supervise._SPREAD else 1)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(run.pids("serving"))
        assert run.logged_events()[-1] == "supervisor_stopped"

    def test_a_worker_that_dies_serving_is_replaced(self, start: Callable[..., _Run]) -> None:
        run = start()
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        first, second = run.pids("serving")
        os.kill(first, signal.SIGKILL)
        _until(lambda: len(run.pids("serving")) == 3, "a third worker serving")
        assert run.process.poll() is None
        assert _alive(second)
        third = run.pids("serving")[2]
        assert run.sockets()[third] == run.sockets()[first]  # it takes over the same queue
        died = [line for line in run.logged() if line["event"] == "worker_died"]
        assert [(d["pid"], d["status"]) for d in died] == [(first, -signal.SIGKILL)]
        run.signal(signal.SIGTERM)
        assert run.wait() == 0

    def test_a_worker_that_cannot_start_stops_the_server(self, start: Callable[..., _Run]) -> None:
        run = start()
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        first, second = run.pids("serving")
        run.mode("fail")  # its replacement will fail as the app, the database... would
        os.kill(first, signal.SIGKILL)
        assert run.wait() == _supervise.STARTUP_FAILURE
        assert run.pids("stopped") == [second]  # the serving one was stopped, not left behind
        assert "worker_failed_to_start" in run.logged_events()

    def test_workers_that_cannot_start_at_all(self, start: Callable[..., _Run]) -> None:
        run = start()
        run.mode("fail")
        assert run.wait() == _supervise.STARTUP_FAILURE
        assert run.events() == []

    def test_sighup_replaces_each_worker_once_its_successor_serves(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        old = run.pids("serving")
        run.signal(signal.SIGHUP)
        _until(lambda: len(run.pids("stopped")) == 2, "both old workers stopped")
        events = run.events()[2:]
        assert [what for what, _ in events] == ["serving", "stopped", "serving", "stopped"]
        # One at a time: a successor serves, then the worker it replaces (on the same
        # listening socket) stops; then the next.
        (_, new0), (_, old0), (_, new1), (_, old1) = events
        assert sorted([old0, old1]) == sorted(old)
        assert not {new0, new1} & set(old)
        sockets = run.sockets()
        assert sockets[new0] == sockets[old0]
        assert sockets[new1] == sockets[old1]
        new = [new0, new1]
        assert all(_alive(pid) for pid in new)
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(old + new)

    @pytest.mark.parametrize(
        ("mode", "reason"),
        [
            ("fail", "the new worker exited before it served"),
            ("silent", "the new worker did not serve within 0.5 s"),
        ],
    )
    def test_a_restart_whose_successor_fails_keeps_the_old_workers(
        self, start: Callable[..., _Run], mode: str, reason: str
    ) -> None:
        run = start(successor_seconds=0.5)
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        old = run.pids("serving")
        run.mode(mode)
        run.signal(signal.SIGHUP)
        _until(lambda: "restart_abandoned" in run.logged_events(), "the restart given up")
        abandoned = next(e for e in run.logged() if e["event"] == "restart_abandoned")
        assert abandoned["reason"] == reason
        assert run.process.poll() is None
        assert all(_alive(pid) for pid in old)
        assert run.pids("stopped") == []
        run.signal(signal.SIGTERM)
        assert run.wait() == 0
        assert sorted(run.pids("stopped")) == sorted(old)

    def test_a_second_stop_signal_kills_workers_that_linger(
        self, start: Callable[..., _Run]
    ) -> None:
        run = start()
        run.mode("stubborn")
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        run.signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            run.process.wait(timeout=0.5)  # the workers ignore SIGTERM: it waits for them
        run.signal(signal.SIGINT)
        assert run.wait() == 0
        assert not any(_alive(pid) for pid in run.pids("serving"))

    def test_workers_stop_when_the_supervisor_is_killed(self, start: Callable[..., _Run]) -> None:
        run = start()
        _until(lambda: len(run.pids("serving")) == 2, "two workers serving")
        run.signal(signal.SIGKILL)
        run.wait()
        _until(lambda: len(run.pids("orphaned")) == 2, "both workers see the lifeline close")

    def test_the_log_is_json_lines_at_the_level_asked(self, start: Callable[..., _Run]) -> None:
        run = start(1)
        _until(lambda: len(run.pids("serving")) == 1, "one worker serving")
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
        assert all(str(line["timestamp"]).endswith("Z") for line in lines)


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
            status = _supervise.main(["2", "127.0.0.1", str(port), "info"])
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
