"""One worker of ``simpul serve --workers N``: the broker on the socket its supervisor hands it.

``python -P -m broker._worker LISTENER LIFELINE READY LEVEL``, started by
:mod:`broker._supervise` with those three file descriptors inherited: the bound listening
socket; the read end of a pipe that closes when the supervisor dies (the worker then stops, as
it does on SIGTERM); and a pipe on which the worker writes one byte once it serves, so the
supervisor knows a worker that dies before that from one that died serving.
"""

from __future__ import annotations

import sys

# Packages that libraries import when they can, for what a worker never does: rich and
# pygments (structlog's pretty exceptions, httpx's command line; a worker logs JSON lines),
# watchfiles (uvicorn's --reload), and pydantic.v1 (FastAPI imports it only to ask whether a
# route's types are pydantic v1 models, and takes ImportError for no). They are there for the
# command line, for development, or inside pydantic. Refused, they cost a worker nothing, where
# importing them took ≈6.4 MB.
for _unused in ("rich", "pygments", "watchfiles", "pydantic.v1"):
    sys.modules.setdefault(_unused, None)  # type: ignore[arg-type]  # None: import fails

import asyncio  # noqa: E402 - after the loop above
import contextlib  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
from collections.abc import Sequence  # noqa: E402


def _uvicorn_without_command_line() -> None:
    """uvicorn's package with its ``Config`` and ``Server``, its ``__init__`` never run.

    That ``__init__`` imports ``uvicorn.main``, the command line, and with it click and the
    reloader's and process manager's modules (multiprocessing among them): 58 modules and
    ≈2.5 MB of objects a worker never uses. The package module is made from its spec, so
    ``uvicorn.config``, ``uvicorn.server`` and the protocols import from its directory as
    usual, and it is given the two names its own modules import from it (``from uvicorn import
    Config``). Where uvicorn is already imported (a test), that module is used as it is.
    """
    if "uvicorn" not in sys.modules:
        spec = importlib.util.find_spec("uvicorn")
        if spec is None:  # pragma: no cover - a dependency
            raise ImportError("uvicorn is not installed")
        sys.modules["uvicorn"] = importlib.util.module_from_spec(spec)
    package = sys.modules["uvicorn"]
    from uvicorn.config import Config
    from uvicorn.server import Server

    package.Config, package.Server = Config, Server  # type: ignore[attr-defined]


_uvicorn_without_command_line()

from uvicorn.config import Config  # noqa: E402
from uvicorn.server import Server  # noqa: E402

from broker.app import SERVER_OPTIONS  # noqa: E402
from broker.logs import get_logger  # noqa: E402

__all__ = ["main", "server_config"]

_log = get_logger("simpul.worker")


class _Server(Server):
    """uvicorn's server, which tells its supervisor once it serves and stops when it is gone."""

    def __init__(self, config: Config, *, lifeline: int, ready: int) -> None:
        super().__init__(config)
        self._lifeline = lifeline
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)  # exits the process (status 3) if the app cannot start
        asyncio.get_running_loop().add_reader(self._lifeline, self._supervisor_gone)
        try:
            if not self.should_exit:  # not when told to stop while starting
                os.write(self._ready, b".")
        except BrokenPipeError:
            pass  # the supervisor is gone: the lifeline says so too
        finally:
            os.close(self._ready)

    def _supervisor_gone(self) -> None:
        # Nothing is ever written on the lifeline: readable means its write end closed.
        asyncio.get_running_loop().remove_reader(self._lifeline)
        _log.warning("supervisor_gone", pid=os.getpid())
        self.should_exit = True


def server_config(log_level: str) -> Config:
    """uvicorn's configuration of a worker: the app factory, so each worker builds its own."""
    return Config(
        "broker.app:create_served_app",
        factory=True,
        log_level=log_level,
        **SERVER_OPTIONS,
    )


def main(args: Sequence[str]) -> None:
    """Serve on the inherited socket until stopped (SIGTERM, SIGINT, or the supervisor gone)."""
    listener, lifeline, ready = (int(fd) for fd in args[:3])
    for fd in (listener, lifeline, ready):
        os.set_inheritable(fd, False)  # ours: not for any program a worker may start
    server = _Server(server_config(args[3]), lifeline=lifeline, ready=ready)
    # uvicorn raises SIGINT again once it has shut down: stopped, as asked, not a traceback.
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[socket.socket(fileno=listener)])


if __name__ == "__main__":
    main(sys.argv[1:])
