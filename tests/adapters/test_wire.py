"""The adapters' own HTTP/1.1 client (adapters/_wire.py) against real sockets on loopback."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters._wire import Origin, Pool, WireError
from broker.sandbox_env import free_port
from tests._loopback import Cut, Reply, Reset, Serve, loopback_backends, self_signed
from tests._loopback import answer as _answer


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with loopback_backends() as start:
        yield start


def _pool(port: int, *, limit: int = 10, keepalive: float = 30.0) -> Pool:
    return Pool(Origin.parse(f"http://127.0.0.1:{port}"), limit=limit, keepalive=keepalive)


class TestOrigin:
    def test_ports_and_tls_by_scheme(self) -> None:
        plain = Origin.parse("http://backend.example")
        assert (plain.host, plain.port, plain.authority, plain.tls) == (
            "backend.example",
            80,
            "backend.example",
            None,
        )
        secure = Origin.parse("https://backend.example:8443/api")
        assert (secure.port, secure.authority) == (8443, "backend.example:8443")
        assert secure.tls is not None
        assert secure.tls.verify_mode == ssl.CERT_REQUIRED
        assert secure.tls.check_hostname

    @pytest.mark.parametrize("url", ["ftp://x/", "backend:80", "http:///x"])
    def test_only_absolute_http_urls(self, url: str) -> None:
        with pytest.raises(ValueError, match="absolute http"):
            Origin.parse(url)

    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("http://user:pw@backend/", "user name"),
            ("http://backend/?a=1", "query"),
            ("http://backend/#x", "fragment"),
            ("http://bäckend/", "ASCII"),
            ("http://backend/my base", "path"),
            ("http://backend/b\u00e4se", "path"),
        ],
    )
    def test_what_a_base_url_may_not_carry(self, url: str, problem: str) -> None:
        with pytest.raises(ValueError, match=problem):
            Origin.parse(url)

    def test_an_ipv6_host_is_bracketed_in_the_host_header(self) -> None:
        origin = Origin.parse("http://[::1]:8101/api")
        assert (origin.host, origin.port, origin.authority) == ("::1", 8101, "[::1]:8101")


class TestRequests:
    async def test_what_goes_on_the_wire(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(200, b'{"a": 1}'))
        pool = _pool(port)
        try:
            status, body = await pool.request(
                "POST", "/api/v1/X?q=1", {"Accept": "application/json"}, b'{"NIK": "1"}'
            )
            assert (status, body) == (200, b'{"a": 1}')
            got = await pool.request("GET", "/births?nik=2", {}, None)
            assert got == (200, b'{"a": 1}')
        finally:
            pool.close()
        (head, sent), (get_head, get_body) = backend.requests
        assert (
            head
            == (
                f"POST /api/v1/X?q=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Accept: application/json\r\nContent-Length: 12\r\n\r\n"
            ).encode()
        )
        assert sent == b'{"NIK": "1"}'
        assert get_head == f"GET /births?nik=2 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        assert get_body == b""
        assert backend.connections == 1  # kept alive

    @pytest.mark.parametrize(
        ("method", "target", "headers"),
        [
            ("GET", "/a\r\nX-Evil: 1", {}),
            ("GET", "/a b", {}),
            ("GET", "/", {"X-Id": "1\r\nX-Evil: 1"}),
            ("GET", "/", {"X-Id:": "1"}),
            ("G ET", "/", {}),
            ("get", "/", {}),
            ("GÉT", "/", {}),
            ("GET", "relative", {}),
            ("GET", "/\tx", {}),
            ("GET", "/", {"": "1"}),
            ("GET", "/", {"X Id": "1"}),
            ("HEAD", "/", {}),
        ],
    )
    async def test_nothing_unsafe_goes_on_the_wire(
        self, serve: Serve, method: str, target: str, headers: dict[str, str]
    ) -> None:
        backend, port = await serve(lambda n: _answer(200))
        pool = _pool(port)
        try:
            with pytest.raises(ValueError, match=r"not a|HEAD"):
                await pool.request(method, target, headers, None)
        finally:
            pool.close()
        assert backend.requests == []

    async def test_the_adapters_caller_keeps_the_base_path_and_encodes_parameters(
        self, serve: Serve
    ) -> None:
        from adapters._http import _Wire

        backend, port = await serve(lambda n: _answer(200, b"[]"))
        caller = _Wire(Origin.parse(f"http://127.0.0.1:{port}"), "/prefix", name="capil")
        try:
            answer = await caller.request(
                "GET", "/births", json=None, params={"nik": "1 2", "x": "&"}, idempotent=True
            )
        finally:
            await caller.aclose()
        assert (answer.status_code, answer.content) == (200, b"[]")
        ((head, _),) = backend.requests
        assert head.startswith(b"GET /prefix/births?nik=1+2&x=%26 HTTP/1.1\r\n")
        assert b"\r\nAccept-Encoding: identity\r\n" in head

    async def test_a_closed_pool_refuses(self, serve: Serve) -> None:
        _, port = await serve(lambda n: _answer(200))
        pool = _pool(port)
        pool.close()
        with pytest.raises(RuntimeError, match="closed"):
            await pool.request("GET", "/", {}, None)


class TestAnswers:
    @pytest.mark.parametrize(
        ("reply", "expected"),
        [
            pytest.param(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                (200, b"abcde"),
                id="chunked",
            ),
            pytest.param(
                (b"HTTP/1.1 20", b"1 Created\r\nContent-Len", b"gth: 5\r\n\r\nhel", b"lo"),
                (201, b"hello"),
                id="in-pieces",
            ),
            pytest.param(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + _answer(200, b"[1]"),
                (200, b"[1]"),
                id="interim-1xx",
            ),
            pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", (204, b""), id="no-content"),
            pytest.param(
                b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\n{}", (500, b"{}"), id="error"
            ),
        ],
    )
    async def test_framings(self, serve: Serve, reply: Reply, expected: tuple[int, bytes]) -> None:
        backend, port = await serve(lambda n: reply)
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == expected
            assert await pool.request("GET", "/", {}, None) == expected  # and again, reused
        finally:
            pool.close()
        assert backend.connections == 1

    async def test_a_body_ended_by_the_connection(self, serve: Serve) -> None:
        backend, port = await serve(
            lambda n: b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it"
        )
        pool = _pool(port)
        try:
            task = asyncio.ensure_future(pool.request("GET", "/", {}, None))
            await asyncio.wait_for(backend.arrived.wait(), 5)
            await asyncio.sleep(0.05)
            assert not task.done()  # neither a length nor chunks: the body may go on
            backend.writers[0].close()  # the end of the connection ends the body
            assert await asyncio.wait_for(task, 5) == (200, b"all of it")
        finally:
            pool.close()

    @pytest.mark.parametrize(
        "reply",
        [
            pytest.param("close", id="hung-up"),
            pytest.param(b"NONSENSE\r\n\r\n", id="not-http"),
            pytest.param(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
                id="upgrade",
            ),
            pytest.param(Cut(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), id="cut"),
            pytest.param(Cut(b"HTTP/1.1 200 OK\r\nContent-Le"), id="cut-in-head"),
            pytest.param(Reset(b"HTTP/1.1 200 OK\r\n\r\nno length, then"), id="reset-unframed"),
        ],
    )
    async def test_no_answer_is_a_wire_error_and_the_connection_is_not_reused(
        self, serve: Serve, reply: Reply
    ) -> None:
        backend, port = await serve(lambda n: reply if n == 0 else _answer(200))
        pool = _pool(port)
        try:
            with pytest.raises(WireError):
                await asyncio.wait_for(pool.request("GET", "/", {}, None), 5)
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")
        finally:
            pool.close()
        assert backend.connections == 2

    async def test_a_second_answer_to_one_request_closes_the_connection(self, serve: Serve) -> None:
        backend, port = await serve(
            lambda n: _answer(200, b"[1]") + _answer(200, b"[2]") if n == 0 else _answer(200)
        )
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == (200, b"[1]")
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")  # not b"[2]"
        finally:
            pool.close()
        assert backend.connections == 2

    async def test_bytes_that_come_while_idle_close_the_connection(self, serve: Serve) -> None:
        backend, port = await serve(
            lambda n: (_answer(200, b"[1]"), b"HTTP/1.1 200") if n == 0 else _answer(200)
        )
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == (200, b"[1]")
            await asyncio.wait_for(backend.ended.wait(), 5)  # the stray bytes closed it
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")
        finally:
            pool.close()
        assert backend.connections == 2

    @pytest.mark.parametrize(
        ("reply", "problem"),
        [
            (_answer(200, b"x" * 2000), "longer than 1000 bytes"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
                "encoded",
            ),
        ],
    )
    async def test_answers_refused(
        self, serve: Serve, monkeypatch: pytest.MonkeyPatch, reply: bytes, problem: str
    ) -> None:
        from adapters import _wire

        monkeypatch.setattr(_wire, "MAX_ANSWER_BYTES", 1000)
        _, port = await serve(lambda n: reply)
        pool = _pool(port)
        try:
            with pytest.raises(WireError, match=problem):
                await pool.request("GET", "/", {}, None)
        finally:
            pool.close()

    @pytest.mark.parametrize(
        "reply",
        [
            pytest.param(Cut(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), id="cut"),
            pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n", id="interim-then-silence"),
        ],
    )
    async def test_a_reused_connection_that_answered_in_part_is_not_retried(
        self, serve: Serve, reply: Reply
    ) -> None:
        backend, port = await serve(lambda n: reply if n == 1 else _answer(200))
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")
            with pytest.raises((WireError, TimeoutError)):
                async with asyncio.timeout(0.5):
                    await pool.request("GET", "/", {}, None)
        finally:
            pool.close()
        assert len(backend.requests) == 2  # not sent again: the backend had begun to answer

    async def test_a_request_out_of_time_is_not_retried(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: "hang" if n == 1 else _answer(200))
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await pool.request("GET", "/", {}, None)
        finally:
            pool.close()
        assert len(backend.requests) == 2

    @pytest.mark.parametrize(("method", "retried"), [("GET", True), ("POST", False)])
    async def test_a_kept_alive_connection_closed_under_a_request(
        self, serve: Serve, method: str, retried: bool
    ) -> None:
        # The second request finds the kept-alive connection closed by the backend unanswered.
        backend, port = await serve(lambda n: "close" if n == 1 else _answer(200))
        pool = _pool(port)
        try:
            assert await pool.request(method, "/", {}, b"{}") == (200, b"{}")
            if retried:
                assert await pool.request(method, "/", {}, b"{}") == (200, b"{}")
            else:
                with pytest.raises(WireError, match="closed the connection"):
                    await pool.request(method, "/", {}, b"{}")
        finally:
            pool.close()
        assert len(backend.requests) == (3 if retried else 2)

    async def test_a_lookup_by_post_said_to_be_idempotent_is_sent_again(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: "close" if n == 1 else _answer(200))
        pool = _pool(port)
        try:
            assert await pool.request("POST", "/", {}, b"{}") == (200, b"{}")
            assert await pool.request("POST", "/", {}, b"{}", idempotent=True) == (200, b"{}")
        finally:
            pool.close()
        assert len(backend.requests) == 3

    @pytest.mark.parametrize(
        ("method", "idempotent", "retried"),
        [("GET", None, True), ("POST", None, False), ("POST", True, True), ("GET", False, False)],
    )
    async def test_a_408_on_a_kept_alive_connection(
        self, serve: Serve, method: str, idempotent: bool | None, retried: bool
    ) -> None:
        """A backend that times an idle connection out may say 408 as it closes it; read
        only once the next request has gone, that 408 is no answer to it."""
        backend, port = await serve(
            lambda n: _answer(408, b"", close=True) if n == 1 else _answer(200)
        )
        pool = _pool(port)
        try:
            assert await pool.request(method, "/", {}, b"{}") == (200, b"{}")
            second = await pool.request(method, "/", {}, b"{}", idempotent=idempotent)
        finally:
            pool.close()
        assert second == ((200, b"{}") if retried else (408, b""))
        assert len(backend.requests) == (3 if retried else 2)

    async def test_a_408_on_a_new_connection_is_the_answer(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(408, b"", close=True))
        pool = _pool(port)
        try:
            assert await pool.request("GET", "/", {}, None) == (408, b"")
        finally:
            pool.close()
        assert len(backend.requests) == 1

    async def test_refused_is_a_wire_error(self) -> None:
        pool = _pool(free_port())
        with pytest.raises(WireError, match="cannot connect"):
            await pool.request("GET", "/", {}, None)


class TestPool:
    async def test_at_most_limit_connections_and_the_rest_wait(self, serve: Serve) -> None:
        # Each answer comes after a pause, so twelve requests are all in flight at once.
        backend, port = await serve(lambda n: (b"", _answer(200)))
        pool = _pool(port, limit=3)
        try:
            results = await asyncio.gather(
                *(pool.request("GET", f"/{i}", {}, None) for i in range(12))
            )
        finally:
            pool.close()
        assert results == [(200, b"{}")] * 12
        assert backend.most_open == backend.connections == 3

    async def test_a_cancelled_request_closes_its_connection(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: "hang" if n == 0 else _answer(200))
        pool = _pool(port)
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.2):
                    await pool.request("GET", "/", {}, None)
            await asyncio.wait_for(backend.ended.wait(), 5)  # closed by the client, not leaked
            # A late answer on that connection can never be taken for the next request's.
            assert await pool.request("GET", "/", {}, None) == (200, b"{}")
        finally:
            pool.close()
        assert backend.connections == 2

    async def test_idle_connections_expire(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(200))
        pool = _pool(port, keepalive=0.05)
        try:
            await pool.request("GET", "/", {}, None)
            await pool.request("GET", "/", {}, None)
            assert backend.connections == 1
            await asyncio.sleep(0.1)
            await pool.request("GET", "/", {}, None)
        finally:
            pool.close()
        assert backend.connections == 2

    async def test_connection_close_answers(self, serve: Serve) -> None:
        backend, port = await serve(lambda n: _answer(200, close=n % 2 == 0))
        pool = _pool(port)
        try:
            for _ in range(4):
                assert await pool.request("GET", "/", {}, None) == (200, b"{}")
        finally:
            pool.close()
        assert backend.connections == 3  # the first, and one after each "Connection: close"


class TestTls:
    async def test_https_verifies_the_certificate(self, serve: Serve, tmp_path: Path) -> None:
        cert, key = self_signed(tmp_path)
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_side.load_cert_chain(cert, key)
        backend, port = await serve(lambda n: _answer(200, b"[]"), server_side)
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = Pool(Origin.parse(f"https://localhost:{port}", tls=trusting), limit=2, keepalive=5)
        stranger = Pool(Origin.parse(f"https://localhost:{port}"), limit=2, keepalive=5)
        try:
            assert await pool.request("GET", "/", {}, None) == (200, b"[]")
            with pytest.raises(WireError, match="SSL"):
                await stranger.request("GET", "/", {}, None)  # not a certificate we trust
        finally:
            pool.close()
            stranger.close()
        assert len(backend.requests) == 1

    async def test_an_answer_ended_by_the_connection_is_refused(
        self, serve: Serve, tmp_path: Path
    ) -> None:
        """Over TLS a cut (no close_notify) cannot be told from the end: neither loop says."""
        cert, key = self_signed(tmp_path)
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_side.load_cert_chain(cert, key)
        unframed = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n[1, 2"
        _, port = await serve(lambda n: unframed, server_side)
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = Pool(Origin.parse(f"https://localhost:{port}", tls=trusting), limit=2, keepalive=5)
        try:
            with pytest.raises(WireError, match="framed by neither"):
                await pool.request("GET", "/", {}, None)
        finally:
            pool.close()

    async def test_the_host_name_is_verified(self, serve: Serve, tmp_path: Path) -> None:
        cert, key = self_signed(tmp_path)  # for "localhost" only
        server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_side.load_cert_chain(cert, key)
        backend, port = await serve(lambda n: _answer(200, b"[]"), server_side)
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = Pool(Origin.parse(f"https://127.0.0.1:{port}", tls=trusting), limit=2, keepalive=5)
        try:
            with pytest.raises(WireError, match=r"IP address mismatch|hostname"):
                await pool.request("GET", "/", {}, None)
        finally:
            pool.close()
        assert backend.requests == []
