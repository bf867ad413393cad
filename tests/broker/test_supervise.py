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

with bind("127.0.0.1", 0) as listener:
    supervisor = Supervisor(
        count, listener, "info", command=command, successor_seconds=successor_seconds
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
        path = self.directory / "events"
        lines = path.read_text().split() if path.exists() else []
        pairs = [(lines[i], int(lines[i + 1])) for i in range(0, len(lines), 2)]
        return [p for p in pairs if what is None or p[0] == what]

    def pids(self, what: str) -> list[int]:
        return [pid for _, pid in self.events(what)]

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
        new = [pid for what, pid in events if what == "serving"]
        assert len(new) == 2
        assert not set(new) & set(old)
        # One at a time: a successor serves, then one old worker stops; then the next.
        assert events == [
            ("serving", new[0]),
            ("stopped", old[0]),
            ("serving", new[1]),
            ("stopped", old[1]),
        ]
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

    def test_a_supervisor_needs_a_worker(self) -> None:
        with socket.socket() as sock, pytest.raises(ValueError, match="at least one"):
            _supervise.Supervisor(0, sock, "info")

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
