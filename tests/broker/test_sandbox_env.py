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

import pytest

from broker import sandbox_env
from broker.sandbox_env import SandboxWorld, free_ports


class TestFreePorts:
    def test_distinct_and_free(self) -> None:
        ports = free_ports(40)
        assert len(set(ports)) == 40
        for port in ports:  # nobody holds them: each can be bound again
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind(("127.0.0.1", port))

    def test_skips_taken_ports(self, monkeypatch: pytest.MonkeyPatch) -> None:
        handed_out = iter([5001, 5000, 5003, 5002])

        class Fake:
            def __init__(self, *_: object) -> None:
                self.port = 0

            def bind(self, _address: object) -> None:
                self.port = next(handed_out)

            def getsockname(self) -> tuple[str, int]:
                return ("127.0.0.1", self.port)

            def close(self) -> None:
                pass

        monkeypatch.setattr(sandbox_env.socket, "socket", Fake)
        assert free_ports(2, taken=(5001, 5003)) == [5000, 5002]


@contextmanager
def _health_server(body: dict[str, str]) -> Iterator[str]:
    """A /healthz that answers 200 with ``body``, at the URL yielded."""

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
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


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SandboxWorld]:
    """A world whose "broker" is a process that serves nothing (the health server stands in)."""
    world = SandboxWorld.create(tmp_path)
    log = (tmp_path / "broker.log").open("ab")
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    world._procs.append(("broker", idle, log))
    yield world
    world.stop()


class TestWaitForBroker:
    def test_a_brokers_health_answer_is_accepted(self, world: SandboxWorld) -> None:
        with _health_server({"status": "ok", "database": "ok", "audit_database": "ok"}) as url:
            world._wait("broker", url, time.monotonic() + 5)

    def test_a_backend_on_the_brokers_port_is_not_the_broker(self, world: SandboxWorld) -> None:
        # A sandbox backend answers /healthz with 200 too; taking it for the broker sent the
        # first consent request to the backend (404) instead of a clear start-up error.
        with (
            _health_server({"status": "ok"}) as url,
            pytest.raises(RuntimeError, match="did not become ready"),
        ):
            world._wait("broker", url, time.monotonic() + 1)
