"""The sandbox world's plumbing: ports of its own, and a health check that knows who answers."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from broker import sandbox_env
from broker.sandbox_env import SandboxWorld, free_ports


class _Kernel:
    """Hands out the lowest port no open socket holds, as a kernel may: one at a time, a
    closed socket's port comes straight back."""

    def __init__(self) -> None:
        self.bound: set[int] = set()
        self.binds = 0

    def socket(self, *_: object) -> _FakeSocket:
        return _FakeSocket(self)


class _FakeSocket:
    def __init__(self, kernel: _Kernel) -> None:
        self.kernel, self.port = kernel, 0

    def bind(self, _address: object) -> None:
        self.kernel.binds += 1
        if self.kernel.binds > 20:  # a caller that never gets a new port: fail, not hang
            raise OSError("the fake kernel's ports ran out")
        self.port = min(p for p in range(40000, 40100) if p not in self.kernel.bound)
        self.kernel.bound.add(self.port)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self.kernel.bound.discard(self.port)


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> _Kernel:
    """``free_ports`` on a fake kernel (only the module's own name for ``socket`` changes)."""
    kernel = _Kernel()
    fake = SimpleNamespace(
        socket=kernel.socket, AF_INET=socket.AF_INET, SOCK_STREAM=socket.SOCK_STREAM
    )
    monkeypatch.setattr(sandbox_env, "socket", fake)
    return kernel


class TestFreePorts:
    def test_distinct_and_free(self) -> None:
        ports = free_ports(40)
        assert len(set(ports)) == 40
        for port in ports:  # nobody holds them: each can be bound again
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", port))

    def test_held_until_all_are_chosen(self, kernel: _Kernel) -> None:
        # Chosen one at a time, each would be 40000.
        assert free_ports(3) == [40000, 40001, 40002]
        assert kernel.bound == set()  # and all given back

    def test_skips_taken_ports(self, kernel: _Kernel) -> None:
        assert free_ports(2, taken=(40000, 40002)) == [40001, 40003]
        assert kernel.bound == set()


@contextmanager
def _health_server(body: dict[str, str], asked: list[str] | None = None) -> Iterator[str]:
    """A /healthz that answers 200 with ``body``, at the URL yielded; ``asked`` gets each path."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if asked is not None:
                asked.append(self.path)
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz"
    finally:
        server.shutdown()
        server.server_close()


def _stand_in(world: SandboxWorld, tmp_path: Path, code: str) -> None:
    """Register a process running ``code`` as the world's "broker" (it serves nothing)."""
    log = (tmp_path / "broker.log").open("ab")
    try:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    except BaseException:
        log.close()
        raise
    world._procs.append(("broker", proc, log))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    """A world whose "broker" is a process that serves nothing (the health server stands in)."""
    world = SandboxWorld.create(tmp_path)
    yield world
    world.stop()


class TestWaitForBroker:
    def test_a_brokers_health_answer_is_accepted(self, world: SandboxWorld, tmp_path: Path) -> None:
        _stand_in(world, tmp_path, "import time; time.sleep(60)")
        with _health_server({"status": "ok", "database": "ok", "audit_database": "ok"}) as url:
            world._wait("broker", url, time.monotonic() + 5)

    def test_a_backend_on_the_brokers_port_is_not_the_broker(
        self, world: SandboxWorld, tmp_path: Path
    ) -> None:
        # A sandbox backend answers /healthz with 200 too; taking it for the broker sent the
        # first consent request to the backend (404) instead of a clear start-up error.
        _stand_in(world, tmp_path, "import time; time.sleep(60)")
        asked: list[str] = []
        with (
            _health_server({"status": "ok"}, asked) as url,
            pytest.raises(RuntimeError, match="which is not a broker"),
        ):
            world._wait("broker", url, time.monotonic() + 1)
        assert asked  # it was asked, and refused for its answer

    def test_a_broker_that_lost_its_port_says_what_answered(
        self, world: SandboxWorld, tmp_path: Path
    ) -> None:
        # As a real broker does: it cannot bind, and exits while the other server answers.
        _stand_in(world, tmp_path, "import sys, time; time.sleep(2); sys.exit(1)")
        with (
            _health_server({"status": "ok"}) as url,
            pytest.raises(RuntimeError, match=r"exited with 1.*which is not a broker"),
        ):
            world._wait("broker", url, time.monotonic() + 20)
