"""The broker's webhook client (``broker._webhooks``) against small servers on loopback."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker._webhooks import WebhookClient, WebhookUnreachable
from tests._loopback import Serve, answer, loopback_backends, self_signed

HEADERS = {"Content-Type": "application/json", "X-Simpul-Event": "consent.revoke"}


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with loopback_backends() as start:
        yield start


@pytest.fixture
async def client() -> AsyncIterator[WebhookClient]:
    webhooks = WebhookClient(timeout=1.0)
    yield webhooks
    await webhooks.aclose()


class TestPost:
    async def test_the_post_as_it_goes_and_the_status_it_gets(
        self, serve: Serve, client: WebhookClient
    ) -> None:
        backend, port = await serve(lambda n: answer([202, 503][n]))
        url = f"http://127.0.0.1:{port}/hooks/simpul"
        assert await client.post(url, b'{"id": 1}', HEADERS) == 202
        assert await client.post(url, b'{"id": 2}', HEADERS) == 503
        (head, body), _ = backend.requests
        lines = head.decode().split("\r\n")
        assert lines[0] == "POST /hooks/simpul HTTP/1.1"
        assert f"Host: 127.0.0.1:{port}" in lines
        assert "X-Simpul-Event: consent.revoke" in lines
        assert "Accept-Encoding: identity" in lines  # an encoded answer would be unreadable
        assert "User-Agent: simpul-broker" in lines
        assert body == b'{"id": 1}'
        assert backend.connections == 1  # kept alive between deliveries

    async def test_each_origin_has_its_own_connections(
        self, serve: Serve, client: WebhookClient
    ) -> None:
        first, one = await serve(lambda n: answer(200))
        second, two = await serve(lambda n: answer(200))
        for port in (one, two, one):
            assert await client.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS) == 200
        assert (len(first.requests), first.connections) == (2, 1)
        assert (len(second.requests), second.connections) == (1, 1)

    async def test_a_redirect_is_an_answer_not_followed(
        self, serve: Serve, client: WebhookClient
    ) -> None:
        backend, port = await serve(
            lambda n: (
                b"HTTP/1.1 307 X\r\nLocation: http://example.org/\r\nContent-Length: 0\r\n\r\n"
            )
        )
        assert await client.post(f"http://127.0.0.1:{port}/hook", b"{}", HEADERS) == 307
        assert len(backend.requests) == 1

    async def test_a_refused_connection_is_unreachable(self, client: WebhookClient) -> None:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))
            port = closed.getsockname()[1]
            with pytest.raises(WebhookUnreachable):
                await client.post(f"http://127.0.0.1:{port}/hook", b"{}", HEADERS)

    async def test_a_recipient_that_hangs_up_is_unreachable(
        self, serve: Serve, client: WebhookClient
    ) -> None:
        _, port = await serve(lambda n: "close")
        with pytest.raises(WebhookUnreachable):
            await client.post(f"http://127.0.0.1:{port}/hook", b"{}", HEADERS)

    async def test_no_answer_in_time_is_a_timeout(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: "hang")
        webhooks = WebhookClient(timeout=0.2)
        try:
            with pytest.raises(TimeoutError):
                await webhooks.post(f"http://127.0.0.1:{port}/hook", b"{}", HEADERS)
            await asyncio.wait_for(backend.ended.wait(), 5)  # its connection was closed
        finally:
            await webhooks.aclose()

    @pytest.mark.parametrize(
        ("url", "why"),
        [
            ("ftp://127.0.0.1/hook", "must be an absolute http"),
            ("/hook", "must be an absolute http"),
            ("http://user:secret@127.0.0.1/hook", "must not carry a user name"),
            ("http://127.0.0.1/hook?token=1", "no query or fragment"),
            ("http://127.0.0.1/hook#part", "no query or fragment"),
            ("http://bücher.example/hook", "host must be written in ASCII"),
            ("http://127.0.0.1/a b", "not a request line"),
        ],
    )
    async def test_a_url_that_cannot_be_sent_as_written_is_refused(
        self, client: WebhookClient, url: str, why: str
    ) -> None:
        with pytest.raises(ValueError, match=why):
            await client.post(url, b"{}", HEADERS)

    async def test_a_header_that_would_split_the_request_is_refused(
        self, serve: Serve, client: WebhookClient
    ) -> None:
        backend, port = await serve(lambda n: answer(200))
        with pytest.raises(ValueError, match="header"):
            await client.post(f"http://127.0.0.1:{port}/", b"{}", {"X-A": "1\r\nX-B: 2"})
        assert backend.requests == []

    async def test_closed_it_refuses(self, serve: Serve) -> None:
        _, port = await serve(lambda n: answer(200))
        webhooks = WebhookClient(timeout=1.0)
        await webhooks.aclose()
        with pytest.raises(RuntimeError, match="closed"):
            await webhooks.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)


class TestTls:
    async def test_https_verifies_the_recipients_certificate(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        cert, key = self_signed(tmp_path)  # for "localhost" only
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server.load_cert_chain(cert, key)
        _, port = await serve(lambda n: answer(202), tls=server)
        trusting = ssl.create_default_context(cafile=str(cert))
        webhooks = WebhookClient(timeout=2.0, tls=trusting)
        try:
            assert await webhooks.post(f"https://localhost:{port}/hook", b"{}", HEADERS) == 202
            # Not the name on the certificate: refused before anything is sent.
            with pytest.raises(WebhookUnreachable):
                await webhooks.post(f"https://127.0.0.1:{port}/hook", b"{}", HEADERS)
        finally:
            await webhooks.aclose()

        untrusting = WebhookClient(timeout=2.0)  # the system's trust store: not this authority
        try:
            with pytest.raises(WebhookUnreachable):
                await untrusting.post(f"https://localhost:{port}/hook", b"{}", HEADERS)
        finally:
            await untrusting.aclose()
