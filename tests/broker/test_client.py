"""The consumer's client shared by many threads over several broker nodes."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from broker.client import SimpulClient, SimpulClientError
from broker.keys import generate_key, public_jwk, to_private_key
from broker.signatures import AUDIT_SEQ_HEADER, request_hash, sign_response


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


class _Broker:
    """A stand-in broker behind httpx's MockTransport: it signs its answers as the broker
    does, with ``signing``, and publishes ``published`` (then ``later``) as its JWK Set."""

    def __init__(self, *, status: int, body: dict[str, Any], seq: str | None = "7") -> None:
        self.signing = generate_key("broker-2")
        self.published = [generate_key("broker-1")]
        self.later = [*self.published, self.signing]
        self.status, self.body, self.seq = status, body, seq
        self.jwks_fetched = 0
        self.unsigned_headers: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/jwks.json":
            self.jwks_fetched += 1
            keys = self.published if self.jwks_fetched == 1 else self.later
            return httpx.Response(200, json={"keys": [public_jwk(k) for k in keys]})
        content = json.dumps(self.body).encode()
        headers = {"Content-Type": "application/json", "X-Road-Id": request.headers["x-road-id"]}
        if self.seq is not None:
            headers[AUDIT_SEQ_HEADER] = self.seq
        signed = sign_response(
            status=self.status,
            headers=headers,
            body=content,
            request_hash=request_hash(
                method=request.method,
                url=str(request.url),
                headers=list(request.headers.items()),
                body=request.content,
            ),
            key=to_private_key(self.signing),
            key_id=str(self.signing.kid),
        )
        return httpx.Response(
            self.status, headers={**signed, **self.unsigned_headers}, content=content
        )


def _client(broker: _Broker) -> SimpulClient:
    return SimpulClient(
        base_url="http://broker.test",
        client_id="ID/GOV/DPMPTSP-DKI/perizinan",
        key=generate_key("client-1"),
        http=httpx.Client(transport=httpx.MockTransport(broker)),
    )


class TestAnswersChecked:
    def test_a_rotated_broker_key_is_looked_up_again(self) -> None:
        broker = _Broker(status=200, body={"nama": "SITI"})
        with _client(broker) as client:
            result = client.fetch("ID/GOV/X/y/ktp", {"nik": "1"}, consent_token="t")
        assert (result.ok, result.audit_seq, broker.jwks_fetched) == (True, 7, 2)

    def test_a_refusal_s_type_is_the_signed_body_s_not_an_unsigned_header(self) -> None:
        problem = {"type": "urn:simpul:problem:consent-revoked", "status": 403}
        broker = _Broker(status=403, body=problem)
        broker.unsigned_headers = {"X-Road-Error": "upstream-timeout"}  # added on the way
        with _client(broker) as client:
            result = client.fetch("ID/GOV/X/y/ktp", {"nik": "1"}, consent_token="t")
        assert result.problem_type == "consent-revoked"

    def test_data_released_without_an_audit_record_is_refused(self) -> None:
        broker = _Broker(status=200, body={"nama": "SITI"}, seq=None)
        with _client(broker) as client, pytest.raises(SimpulClientError, match="audit record"):
            client.fetch("ID/GOV/X/y/ktp", {"nik": "1"}, consent_token="t")
