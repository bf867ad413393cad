"""``simpul serve --workers N`` once its checks are done: a supervisor in the standard library.

On POSIX, ``simpul serve --workers N`` replaces itself (same pid) by ``python -P -m
broker._supervise N HOST PORT LEVEL PLACEMENT``. This process binds the port and runs N workers
(``python -P -m broker._worker``, see :mod:`broker._worker`), each handed a listening socket
(its own on Linux, see :func:`bind`) and building its own broker. It imports no framework:
≈11.5 MB, where uvicorn's supervisor held ≈26 MB and the resource tracker its
``multiprocessing`` start brought another ≈12 MB.

- A worker that dies is replaced, on the same socket: at once the first time, then, while its
  slot's workers keep dying within ten seconds of their start, after 0.5, 1, 2 … up to 30
  seconds, so a worker killed at every start does not keep the machine busy starting
  workers. One that exits with an error before it served (the app, its database or its keys
  are broken, and a new one would fail the same way) stops the server, exit status 3
  (uvicorn's stopped only for its own status 3). A worker that cannot be started at all (no
  interpreter there, no processes left) is tried again so, and at start-up stops the server.
- SIGTERM or SIGINT stops the workers gracefully, with no deadline: each finishes what it
  serves. The listening sockets close at once, so new connections are refused (a load
  balancer goes elsewhere) rather than queued for workers that no longer accept. A second
  one kills the workers, and the supervisor exits with 128 + that signal's number.
- SIGHUP replaces the workers one at a time, each old one stopped only once its successor
  serves; a successor that fails, or does not serve within a minute, keeps the old worker.
- Each worker holds the read end of a pipe whose write end only this process holds, so if
  the supervisor is killed, the workers see the pipe close and stop.
- ``--pin-workers`` (PLACEMENT ``pinned``; Linux): the worker in slot k runs on the k-th CPU
  this process may run on (round robin if there are more workers than CPUs), it and every
  thread it starts, from its first instruction; its successor, on the same CPU. Unpinned
  (``free``), the kernel moves them as it likes.
- Unlike uvicorn's, no health pings (a worker that hangs is not killed), and no SIGTTIN or
  SIGTTOU (a worker more or fewer).

``-P`` keeps the working directory off ``sys.path``, as the ``simpul`` script does.
Interpreter options given to ``simpul serve`` itself (``python -X dev -m broker.cli serve``)
do not pass to the supervisor, nor so to its workers: set them as ``PYTHON*`` variables
(``PYTHONDEVMODE=1``), which do. Where ``exec`` is not POSIX, :func:`run_workers` runs
uvicorn's own supervisor in the process instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence

__all__ = [
    "STARTUP_FAILURE",
    "Supervisor",
    "argv",
    "bind",
    "can_pin",
    "main",
    "run_workers",
    "worker_argv",
    "worker_cpus",
]

#: The exit status of a server whose worker could not start (uvicorn's, for the same case).
STARTUP_FAILURE = 3

#: Whether the kernel spreads a port's connections over several sockets (``SO_REUSEPORT`` on
#: Linux; elsewhere the option exists with other meanings, or not at all).
_SPREAD = sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")

#: The listening sockets' queue of connections not yet accepted (uvicorn's default).
_BACKLOG = 2048

#: A worker that lived this long before it died resets its slot's back-off (see
#: Supervisor._replace_later).
_STEADY_SECONDS = 10.0
#: The second replacement in a row waits this long, each after it twice as long as the last,
#: up to _MOST_DELAY.
_FIRST_DELAY = 0.5
_MOST_DELAY = 30.0
#: How long an unexpected failure of the supervisor waits for its workers to stop gracefully
#: before it kills them.
_LAST_GRACE_SECONDS = 30.0

_LEVELS = {"critical": 50, "error": 40, "warning": 30, "info": 20, "debug": 10, "trace": 5}

#: What a worker's command line is built from: its socket, lifeline, readiness fds and level.
WorkerArgv = Callable[[int, int, int, str], list[str]]


#: PLACEMENT on the supervisor's command line: each worker pinned to a CPU, or not.
_PINNED, _FREE = "pinned", "free"


def argv(count: int, host: str, port: int, log_level: str, *, pin: bool = False) -> list[str]:
    """The command line that runs :func:`main` in a fresh interpreter."""
    placement = _PINNED if pin else _FREE
    return [sys.executable, "-P", "-m", __name__, str(count), host, str(port), log_level, placement]


def can_pin() -> bool:
    """Whether this platform can pin a process to a CPU (``sched_setaffinity``: Linux)."""
    return hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity")


def worker_cpus() -> tuple[int, ...]:
    """The CPUs this process may run on, in order: the worker in slot k is pinned to the k-th
    (round robin past the last)."""
    return tuple(sorted(os.sched_getaffinity(0)))


def worker_argv(listener: int, lifeline: int, ready: int, log_level: str) -> list[str]:
    """The command line of one worker (:mod:`broker._worker`)."""
    fds = (str(listener), str(lifeline), str(ready))
    return [sys.executable, "-P", "-m", "broker._worker", *fds, log_level]


def bind(host: str, port: int, count: int = 1) -> list[socket.socket]:
    """The listening sockets: one per worker where the kernel spreads connections (Linux).

    Elsewhere there is one, which the workers share. On one shared socket, whichever worker
    wakes first takes a whole burst of new connections, and a client's keep-alive connection
    stays with the worker that took it. Measured under the benchmark's 64 connections: 0 on
    one worker and 64 on the other, which then did the work of both. With ``SO_REUSEPORT``
    the kernel hashes each connection to one of the sockets. The sockets listen here, so a
    connection hashed to a worker being replaced waits in its socket's queue for the new one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    if _SPREAD:
        # Without the option first: a port held by another program, even by another server
        # of this user's with SO_REUSEPORT (which would share its connections), is refused.
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
            port = probe.getsockname()[1]  # port 0: the one the system chose
    try:
        for _ in range(count if _SPREAD else 1):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if _SPREAD:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # asked for port 0: the others join the one it got
            sock.listen(_BACKLOG)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Log:
    """JSON lines on stderr, shaped as the broker's own (:mod:`broker.logs`) without structlog."""

    def __init__(self, level: str) -> None:
        self._threshold = _LEVELS.get(level.lower(), _LEVELS["info"])

    def __call__(self, level: str, event: str, **context: object) -> None:
        if _LEVELS[level] < self._threshold:
            return
        stamp = _utc_stamp(time.time())
        line = {"event": event, **context, "level": level, "timestamp": stamp}
        print(json.dumps(line), file=sys.stderr, flush=True)


def _utc_stamp(now: float) -> str:
    """``now`` (seconds since the epoch) in ISO 8601, UTC, to the microsecond (``…Z``).

    As the broker's own log lines write it, without importing ``datetime`` (≈0.5 MB here).
    """
    seconds, micros = divmod(round(now * 1_000_000), 1_000_000)  # rounded, as datetime does
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"


class _Process:
    """A started worker: what the supervisor used of ``subprocess.Popen``, by ``posix_spawn``.

    ``subprocess`` and what it imports cost this process ≈1 MB. ``posix_spawn`` starts the
    program with no Python code run in between, and fails here, with an ``OSError``, if it
    cannot be run. The child gets the standard streams and ``pass_fds``: every other file
    this process opens is not inheritable (Python's default), and those it inherited were made
    so by :func:`_keep_inherited_files`.
    """

    __slots__ = ("pid", "returncode")

    def __init__(self, args: Sequence[str], pass_fds: Sequence[int]) -> None:
        for fd in pass_fds:
            os.set_inheritable(fd, True)
        try:
            self.pid = os.posix_spawn(args[0], list(args), os.environ)
        finally:
            for fd in pass_fds:
                os.set_inheritable(fd, False)
        #: None while it runs; then its exit status, or minus the signal that ended it.
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit status, if it has ended (the zombie reaped), else None."""
        if self.returncode is None:
            self._wait(os.WNOHANG)
        return self.returncode

    def wait(self) -> int:
        """Wait for it to end; its exit status."""
        while self.returncode is None:
            self._wait(0)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig``, unless it has already been reaped (its pid may be another's by now)."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def _wait(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # pragma: no cover - only this object reaps its child
            self.returncode = 0  # its status is lost; as subprocess does
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def _start_on(
    cpu: int | None, args: Sequence[str], pass_fds: Sequence[int]
) -> tuple[_Process, int | None]:
    """``_Process(args, pass_fds)`` pinned to ``cpu``, and the CPU it was pinned to.

    A process inherits its parent's CPU affinity when it is spawned, and every thread it
    starts inherits its creator's: so this process pins itself to ``cpu`` for the spawn and
    goes back to where it ran before, and the worker runs on ``cpu`` from its first
    instruction, its writer threads with it. ``cpu`` None, or a CPU the kernel refuses (taken
    offline, or out of the process's cpuset since it started): the worker is started
    unpinned, and None comes back; pinning only makes it faster.
    """
    if cpu is None:
        return _Process(args, pass_fds), None
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return _Process(args, pass_fds), None
    try:
        return _Process(args, pass_fds), cpu
    finally:
        # Never lose the started worker to a failed return: at worst this process stays on
        # ``cpu`` (it only waits), and pins itself anew for each spawn.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, allowed)


def _keep_inherited_files() -> None:
    """Make every file this process inherited above the standard streams not inheritable.

    So a worker gets only the streams and what :class:`_Process` passes it, as
    ``subprocess``'s ``close_fds`` would have it, whatever the program that ran ``simpul
    serve`` left open (a pipe of a test harness, say).
    """
    for directory in ("/proc/self/fd", "/dev/fd"):  # Linux; macOS and the BSDs
        try:
            names = os.listdir(directory)  # noqa: PTH208 - pathlib would cost this process more
        except OSError:
            continue
        for fd in (int(name) for name in names):
            if fd > 2:
                with contextlib.suppress(OSError):  # the listing's own fd, closed since
                    os.set_inheritable(fd, False)
        return


class _Worker:
    """One worker process, and what the supervisor knows of it."""

    __slots__ = ("process", "ready", "retired", "serving", "slot", "started")

    def __init__(self, process: _Process, ready: int, slot: int) -> None:
        self.process = process
        self.slot = slot  # which listening socket it has, kept by its replacement
        self.ready = ready  # the read end of its readiness pipe; -1 once read or closed
        self.serving = False
        self.retired = False  # stopped on purpose (SIGHUP): not replaced when it exits
        self.started = time.monotonic()


class Supervisor:
    """Runs ``count`` workers until told to stop; see the module's docstring.

    ``listeners``: one listening socket, which the workers share, or one for each worker.
    ``cpus``: the CPU of each slot's worker, round robin (see :func:`worker_cpus`); empty,
    none is pinned.
    """

    def __init__(
        self,
        count: int,
        listeners: Sequence[socket.socket],
        log_level: str,
        *,
        command: WorkerArgv = worker_argv,
        successor_seconds: float = 60.0,
        cpus: Sequence[int] = (),
    ) -> None:
        if count < 1:
            raise ValueError("a supervisor needs at least one worker")
        if len(listeners) not in (1, count):
            raise ValueError("one listening socket for all workers, or one for each")
        self._count = count
        self._listeners = list(listeners)
        self._level = log_level
        self._command = command
        self._successor_seconds = successor_seconds
        self._cpus = tuple(cpus)
        self._log = _Log(log_level)
        self._selector = selectors.DefaultSelector()
        self._workers: list[_Worker] = []
        self._retiring: list[_Worker] = []  # SIGHUP: workers still to be replaced, in order
        self._successor: _Worker | None = None
        self._stopping = False
        self._stop_signals = 0  # SIGTERM and SIGINT received: the second kills
        self._status = 0
        self._due: dict[int, float] = {}  # slot -> when its replacement is to be started
        self._deaths: dict[int, int] = {}  # slot -> its workers' early deaths in a row

    def run(self) -> int:
        """Serve until stopped; the exit status: 0, :data:`STARTUP_FAILURE`, or 128 + the
        signal that made the supervisor kill its workers (a second SIGTERM or SIGINT)."""
        lifeline, self._lifeline_w = os.pipe()
        self._lifeline = lifeline
        wake, wake_w = os.pipe()
        os.set_blocking(wake, False)
        os.set_blocking(wake_w, False)
        previous = signal.set_wakeup_fd(wake_w)
        handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        # The signal numbers arrive as bytes on ``wake``; the handlers only need to exist.
        handlers = {sig: signal.signal(sig, _ignore) for sig in handled}
        self._selector.register(wake, selectors.EVENT_READ)
        try:
            self._log("info", "supervisor_started", pid=os.getpid(), workers=self._count)
            for slot in range(self._count):
                worker = self._try_spawn(slot)
                if worker is None:  # no worker can be started: nor would its replacement
                    self._status = STARTUP_FAILURE
                    self._stop()
                    break
                self._workers.append(worker)
            while self._workers or self._successor is not None or self._due:
                for key, _ in self._selector.select(timeout=self._wait_seconds()):
                    if key.fd == wake:
                        self._on_signals(_drain(wake))
                    else:
                        self._on_ready(key.data)
                self._reap()
                self._spawn_due()
                self._check_successor()
            self._log("info", "supervisor_stopped", status=self._status)
            return self._status
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous)
            # Only after a failure of this process's own: what the workers serve, they finish,
            # unless they take longer than a last grace period.
            self._end_all([*self._workers, *self._as_list(self._successor)])
            self._selector.close()
            for fd in (wake, wake_w, lifeline, self._lifeline_w):
                os.close(fd)

    def _end_all(self, workers: Sequence[_Worker]) -> None:
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _LAST_GRACE_SECONDS
        while any(w.process.poll() is None for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in workers:
            with contextlib.suppress(OSError):
                worker.process.kill()
            worker.process.wait()
            self._close_ready(worker)

    def _wait_seconds(self) -> float:
        """How long the loop may wait for a signal or a worker: a second at most, less if a
        replacement is due sooner."""
        if not self._due:
            return 1.0
        return min(1.0, max(0.0, min(self._due.values()) - time.monotonic()))

    # Workers

    def _spawn(self, slot: int) -> _Worker:
        ready, ready_w = os.pipe()
        try:
            listener = self._listeners[slot % len(self._listeners)]
            fds = (listener.fileno(), self._lifeline, ready_w)
            wanted = self._cpus[slot % len(self._cpus)] if self._cpus else None
            process, cpu = _start_on(wanted, self._command(*fds, self._level), pass_fds=fds)
        except BaseException:
            os.close(ready)
            raise
        finally:
            os.close(ready_w)
        worker = _Worker(process, ready, slot)
        self._selector.register(ready, selectors.EVENT_READ, worker)
        if wanted is None:
            self._log("info", "worker_started", pid=process.pid)
        else:
            self._log("info", "worker_started", pid=process.pid, cpu=cpu)
            if cpu is None:
                self._log("warning", "worker_not_pinned", pid=process.pid, cpu=wanted)
        return worker

    def _try_spawn(self, slot: int) -> _Worker | None:
        """:meth:`_spawn`, or None, logged, if the system refused to start the worker."""
        try:
            return self._spawn(slot)
        except OSError as exc:  # no interpreter at that path (a venv rebuilt), no processes left
            self._log("error", "worker_spawn_failed", slot=slot, error=str(exc))
            return None

    def _replace_later(self, slot: int, worker: _Worker | None) -> float:
        """Have ``slot``'s replacement started after a back-off; how many seconds that is.

        ``worker``: the one that died (None: a replacement that could not be started). The
        first replacement is started at once; while the slot's workers keep dying within
        :data:`_STEADY_SECONDS` of their start, each waits twice as long as the last.
        """
        steady = worker is not None and time.monotonic() - worker.started >= _STEADY_SECONDS
        deaths = 1 if steady else self._deaths.get(slot, 0) + 1
        self._deaths[slot] = deaths
        delay = 0.0 if deaths == 1 else min(_FIRST_DELAY * 2 ** (deaths - 2), _MOST_DELAY)
        self._due[slot] = time.monotonic() + delay
        return delay

    def _spawn_due(self) -> None:
        now = time.monotonic()
        for slot, when in sorted(self._due.items()):
            if when > now or self._stopping:
                continue
            del self._due[slot]
            worker = self._try_spawn(slot)
            if worker is None:
                self._replace_later(slot, None)
            else:
                self._workers.append(worker)

    def _on_ready(self, worker: _Worker) -> None:
        self._read_ready(worker)
        if worker is self._successor and worker.serving:
            self._promote()

    def _read_ready(self, worker: _Worker) -> None:
        """Whether ``worker`` says it serves: its one byte, or the end of its pipe."""
        if worker.ready < 0:
            return
        if os.read(worker.ready, 1):  # never blocks: readable, or the worker has exited
            worker.serving = True
            self._log("info", "worker_serving", pid=worker.process.pid)
        self._close_ready(worker)

    def _reap(self) -> None:
        for worker in list(self._workers):
            status = worker.process.poll()
            if status is None:
                continue
            self._workers.remove(worker)
            self._read_ready(worker)  # a byte written just before it exited still counts
            taken_over = False  # by the successor starting in its place (SIGHUP)
            if worker in self._retiring:
                self._retiring.remove(worker)
                taken_over = self._successor is not None and self._successor.slot == worker.slot
            if self._stopping or worker.retired or taken_over:
                continue
            if not worker.serving and status > 0:
                # The app, its database or its keys are broken: a new one would fail the same.
                self._log("error", "worker_failed_to_start", pid=worker.process.pid, status=status)
                self._status = STARTUP_FAILURE
                self._stop()
                continue
            # Died serving, or killed before it served (the OOM killer, an operator).
            delay = self._replace_later(worker.slot, worker)
            self._log(
                "warning", "worker_died", pid=worker.process.pid, status=status, restart_in=delay
            )
        successor = self._successor
        if successor is not None and successor.process.poll() is not None:
            self._read_ready(successor)
            if successor.serving:
                self._promote()  # it served, then died: reaped as any worker next time
            else:
                self._abandon(successor, "the new worker exited before it served")

    def _close_ready(self, worker: _Worker) -> None:
        if worker.ready >= 0:
            self._selector.unregister(worker.ready)
            os.close(worker.ready)
            worker.ready = -1

    # Signals

    def _on_signals(self, signals: Sequence[int]) -> None:
        for sig in signals:
            if sig in (signal.SIGINT, signal.SIGTERM):
                self._stop_signals += 1
                self._log("info", "supervisor_stopping", signal=signal.Signals(sig).name)
                kill = self._stop_signals > 1
                if kill:
                    # Not a clean stop: what the workers were serving is lost, and the exit
                    # status says so, as a shell's does for a program a signal ended.
                    pids = [w.process.pid for w in self._workers if w.process.poll() is None]
                    self._log("warning", "workers_killed", pids=pids)
                    self._status = self._status or 128 + sig
                self._stop(kill=kill)
            elif sig == signal.SIGHUP and not self._stopping:
                self._restart()

    def _stop(self, *, kill: bool = False) -> None:
        """SIGTERM to every worker, which finishes what it serves (or SIGKILL: ``kill``)."""
        self._stopping = True
        self._retiring.clear()
        self._due.clear()
        # No new connections: they would wait for workers that no longer accept them, and be
        # reset when the last one ends. Closed, the port refuses them at once; each worker
        # closes its own copy as it stops accepting.
        for listener in self._listeners:
            listener.close()
        if self._successor is not None:
            self._workers.append(self._successor)  # reaped with the others
            self._successor = None
        how = signal.SIGKILL if kill else signal.SIGTERM
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(how)

    def _restart(self) -> None:
        if self._retiring or self._successor is not None:
            self._log("info", "restart_in_progress")
            return
        # Not one already told to stop (by an earlier restart) and still finishing.
        self._retiring = [worker for worker in self._workers if not worker.retired]
        self._log("info", "restart_requested", workers=len(self._retiring))
        self._next_successor()

    def _next_successor(self) -> None:
        if not self._retiring:
            self._successor = None
            return
        self._successor = self._try_spawn(self._retiring[0].slot)
        if self._successor is None:
            self._retiring.clear()
            reason = "the new worker could not be started"
            self._log("error", "restart_abandoned", reason=reason)

    def _promote(self) -> None:
        """The successor serves: stop the worker it replaces (if still there), start the next."""
        successor = self._successor
        assert successor is not None
        old = next((w for w in self._retiring if w.slot == successor.slot), None)
        if old is not None:
            self._retiring.remove(old)
            old.retired = True
            old.process.send_signal(signal.SIGTERM)
        self._workers.append(successor)
        self._next_successor()

    def _check_successor(self) -> None:
        successor = self._successor
        if successor is None or time.monotonic() - successor.started < self._successor_seconds:
            return
        successor.process.kill()
        successor.process.wait()
        within = f"{self._successor_seconds:g} s"
        self._abandon(successor, f"the new worker did not serve within {within}")

    def _abandon(self, successor: _Worker, reason: str) -> None:
        """Give up a SIGHUP restart: the old workers stay."""
        self._close_ready(successor)
        self._successor = None
        self._retiring.clear()
        status = successor.process.returncode
        self._log(
            "error", "restart_abandoned", reason=reason, pid=successor.process.pid, status=status
        )
        if not any(worker.slot == successor.slot for worker in self._workers):
            # The worker it was to replace died meanwhile, and left its socket to it.
            self._replace_later(successor.slot, successor)

    @staticmethod
    def _as_list(worker: _Worker | None) -> list[_Worker]:
        return [] if worker is None else [worker]


def _ignore(signum: int, frame: object) -> None:
    """A handler that does nothing: the signal's number reaches the loop by the wakeup fd."""


def _drain(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 512)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def run_workers(count: int, host: str, port: int, log_level: str) -> None:
    """Where ``exec`` is not POSIX: uvicorn's supervisor of ``count`` workers, in this process."""
    import uvicorn

    from broker.app import SERVER_OPTIONS

    uvicorn.run(
        "broker.app:create_served_app",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level=log_level,
        **SERVER_OPTIONS,
    )


def main(args: Sequence[str]) -> int:
    """``python -m broker._supervise COUNT HOST PORT LEVEL PLACEMENT``, as :func:`argv`
    builds it."""
    count, host, port, log_level, placement = args
    if placement not in (_PINNED, _FREE):
        raise ValueError(f"PLACEMENT must be {_PINNED} or {_FREE}, not {placement!r}")
    _keep_inherited_files()
    log = _Log(log_level)
    try:
        listeners = bind(host, int(port), int(count))
    except OSError as exc:
        log("error", "bind_failed", host=host, port=int(port), error=str(exc))
        return STARTUP_FAILURE
    try:
        where = listeners[0].getsockname()
        log("info", "listening", host=where[0], port=where[1], sockets=len(listeners))
        cpus = worker_cpus() if placement == _PINNED else ()
        return Supervisor(int(count), listeners, log_level, cpus=cpus).run()
    finally:
        for sock in listeners:
            sock.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
