"""A stand-in worker for the supervisor's tests: ``python _fake_worker.py LISTENER LIFELINE READY
LEVEL``, the protocol of :mod:`broker._worker`, without a broker.

It reads what to do from ``$FAKE_WORKER_DIR/mode`` when it starts, and appends what happens to
it to ``$FAKE_WORKER_DIR/events`` (``started PID SOCKET``, ``serving PID SOCKET``, ``stopped
PID SOCKET``, where SOCKET names the listening socket it was handed), and the file descriptors
it was started with to ``$FAKE_WORKER_DIR/fds-PID``, and the CPUs it may run on when it starts
(Linux) to ``$FAKE_WORKER_DIR/cpus-PID``:

- ``serve``: says it serves, then waits for SIGTERM or its lifeline to close;
- ``fail``: exits with status 3 before it serves, as uvicorn does when the app cannot start;
- ``stubborn``: serves, and ignores SIGTERM (only SIGKILL ends it);
- ``silent``: never says it serves, and waits for SIGTERM;
- ``slow``: serves after a second;
- ``die``: killed (SIGKILL, by itself) before it serves, as by the OOM killer at each start;
- ``draining``: serves; on SIGTERM closes its listening socket, as uvicorn stops accepting,
  writes ``draining``, and stops a second later (what it serves, it finishes).

It also writes the port it listens on to ``$FAKE_WORKER_DIR/port``.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
from pathlib import Path


def _open_files() -> list[int]:
    listed = [int(name) for name in os.listdir("/proc/self/fd")]  # noqa: PTH208
    open_now = []
    for fd in listed:
        try:
            os.fstat(fd)
        except OSError:
            continue  # the listing's own, closed since
        open_now.append(fd)
    return sorted(open_now)


def main() -> None:
    inherited = _open_files() if os.path.isdir("/proc/self/fd") else []  # noqa: PTH112
    listener, lifeline, ready = (int(fd) for fd in sys.argv[1:4])
    inode = os.fstat(listener).st_ino
    directory = Path(os.environ["FAKE_WORKER_DIR"])
    mode = (directory / "mode").read_text().strip()
    (directory / f"fds-{os.getpid()}").write_text(" ".join(map(str, inherited)))
    if hasattr(os, "sched_getaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        (directory / f"cpus-{os.getpid()}").write_text(" ".join(map(str, cpus)))

    def record(what: str) -> None:
        with (directory / "events").open("a") as events:
            events.write(f"{what} {os.getpid()} {inode}\n")

    with socket.socket(fileno=os.dup(listener)) as copy:
        (directory / "port").write_text(str(copy.getsockname()[1]))
    if mode == "fail":
        sys.exit(3)
    if mode == "die":
        os.kill(os.getpid(), signal.SIGKILL)
    stop = os.pipe()
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: os.write(stop[1], b"."))
    record("started")
    if mode == "slow":
        time.sleep(1.0)
    if mode != "silent":
        record("serving")  # before it says so: the supervisor may act on it at once
        os.write(ready, b".")
    os.close(ready)
    readable, _, _ = select.select([lifeline, stop[0]], [], [])
    if mode == "draining" and stop[0] in readable:
        os.close(listener)
        record("draining")
        time.sleep(1.0)
    record("orphaned" if lifeline in readable else "stopped")


if __name__ == "__main__":
    main()
