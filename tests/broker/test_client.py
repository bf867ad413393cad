"""The consumer's client shared by many threads over several broker nodes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import pytest

from broker.client import SimpulClient
from broker.keys import generate_key


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the broker answers

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(0.001)  # long enough for other threads' requests to queue in the pool
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def two_nodes() -> Iterator[list[str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), _Answer) for _ in range(2)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def test_threads_over_two_nodes_never_lose_a_connection_under_them(
    two_nodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # httpcore closes the connections its pool drops after releasing its lock; a pause there
    # widens the window in which a connection it dropped was already handed to a waiting thread
    # (encode/httpcore#1110), which then read from a closed socket (EBADF) in the suite's
    # two-node load test.
    close = httpcore.ConnectionPool._close_connections

    def close_late(pool: httpcore.ConnectionPool, closing: list[Any]) -> None:
        if closing:
            time.sleep(0.002)
        close(pool, closing)

    monkeypatch.setattr(httpcore.ConnectionPool, "_close_connections", close_late)
    errors: Counter[str] = Counter()

    def send(client: SimpulClient) -> None:
        try:
            client.send(
                "POST", "/r1/x", b"{}", extra_headers={"Consent-Token": "t"}
            ).raise_for_status()
        except Exception as exc:  # noqa: BLE001 - counted, so the assertion shows every kind
            errors[repr(exc)[:80]] += 1

    with (
        SimpulClient(base_url=two_nodes, client_id="c", key=generate_key("k")) as client,
        ThreadPoolExecutor(32) as pool,
    ):
        list(pool.map(lambda _: send(client), range(1500)))
    assert not errors
