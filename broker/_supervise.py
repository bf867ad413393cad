"""``simpul serve`` with several workers, once its checks are done: uvicorn's supervisor alone.

On POSIX, ``simpul serve --workers N`` replaces itself (same pid) by ``python -P -m
broker._supervise N HOST PORT LEVEL``, so the process that lives as long as the server holds
uvicorn and not what the checks imported and built (≈26 instead of ≈118 MB). ``-P`` keeps the
working directory off ``sys.path``, as the ``simpul`` script does, and uvicorn is called as
``simpul serve`` calls it: its own command line would also read ``UVICORN_*`` variables.
Interpreter options given to ``simpul serve`` itself (``python -X dev -m broker.cli serve``)
do not pass to the supervisor, nor so to its workers: set them as ``PYTHON*`` variables
(``PYTHONDEVMODE=1``), which do.
"""

from __future__ import annotations

import sys

__all__ = ["argv", "main", "run_workers"]


def argv(count: int, host: str, port: int, log_level: str) -> list[str]:
    """The command line that runs :func:`run_workers` in a fresh interpreter."""
    return [sys.executable, "-P", "-m", __name__, str(count), host, str(port), log_level]


def run_workers(count: int, host: str, port: int, log_level: str) -> None:
    """Serve the broker with ``count`` worker processes; each builds its own app."""
    import uvicorn

    uvicorn.run(
        "broker.app:create_served_app",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
    )


def main(args: list[str]) -> None:
    """``python -m broker._supervise COUNT HOST PORT LEVEL``, as :func:`argv` builds it."""
    count, host, port, log_level = args
    run_workers(int(count), host, int(port), log_level)


# Not when a spawned worker imports this module again (as ``__mp_main__``).
if __name__ == "__main__":
    main(sys.argv[1:])
