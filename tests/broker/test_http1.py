"""The broker's HTTP protocol (``broker._http1``): an exchange it reads whole is answered past
uvicorn's ASGI layers, with the bytes uvicorn's own protocol would have written; everything
else is uvicorn's. Each case runs the same raw bytes through both, on real loopback sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.server import Server

from broker._http1 import ExchangeProtocol
from broker.app import MAX_BODY_BYTES, ExchangeApp
from broker.exchange import ExchangeResponse
from broker.routes.exchange import exchange_request

_PATH = "/r1/ID/GOV/DUKCAPIL/adminduk/ktp"
#: uvicorn's options here; ``log_config=None``: the test process's logging is left as it is.
_OPTIONS: dict[str, Any] = {
    "ws": "none",
    "lifespan": "off",
    "log_level": "warning",
    "log_config": None,
}


class _Echo(ExchangeApp):
    """Answers an exchange with what it was given; counts the exchanges that came by ASGI."""

    def __init__(self) -> None:
        super().__init__(openapi_url=None)
        self.by_asgi = 0
        self.answered = 0
        self.hold: asyncio.Event | None = None
        self.held = asyncio.Event()  # set once an exchange waits on ``hold``
        self.crash = False
        self.headers = {"Content-Type": "application/json", "X-Road-Id": "id-1", "Signature": "s"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/r1/"):
            self.by_asgi += 1
        await super().__call__(scope, receive, send)

    async def answer_exchange(self, scope: Scope, body: bytes) -> ExchangeResponse:
        if self.hold is not None:
            self.held.set()
            await self.hold.wait()
        if self.crash:
            raise RuntimeError("a bug past the pipeline's net")
        request = exchange_request(scope, scope["path"][4:], body)
        self.answered += 1
        seen = {
            "service": request.service_id,
            "url": request.url,
            "headers": request.headers,
            "body": body.decode(),
            "client": scope["client"][0],  # the host: the port differs between connections
        }
        return ExchangeResponse(
            status=200,
            headers=self.headers,
            body=json.dumps(seen).encode(),
        )


async def _start(
    app: _Echo, http: Any, *, access_log: bool = False
) -> tuple[Server, socket.socket, asyncio.Task[None]]:
    """uvicorn with ``http`` as its protocol, serving on a loopback socket: the server, the
    socket and the task that serves (it ends once ``server.should_exit`` is set)."""
    server = Server(Config(app, http=http, **_OPTIONS, access_log=access_log))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    await _started(server)
    return server, sock, serving


@asynccontextmanager
async def _serving(app: _Echo, http: Any, *, access_log: bool = False) -> AsyncIterator[int]:
    """uvicorn with ``http`` as its protocol, on a loopback port (yielded) until the block ends."""
    server, sock, serving = await _start(app, http, access_log=access_log)
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving
        sock.close()


async def _started(server: Server) -> None:
    """Once ``server`` listens (uvicorn sets a flag, not an event); fails after 10 s."""
    for _ in range(1000):
        if server.started:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not start within 10 s")


def _connections(server: Server) -> list[Any]:
    """The server's open connections (uvicorn types them as bare asyncio protocols)."""
    return list(server.server_state.connections)


async def _answered(app: _Echo, count: int) -> None:
    """Once ``app`` has answered ``count`` exchanges; fails after 10 s."""
    for _ in range(1000):
        if app.answered >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} exchanges not answered within 10 s")


async def _told_to_close(server: Server) -> None:
    """Once uvicorn's shutdown has told every connection to close after its answer."""
    for _ in range(1000):
        connections = _connections(server)
        if connections and all(not c.cycle.keep_alive for c in connections):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the server did not begin shutting down within 10 s")


async def _exchange(port: int, raw: bytes, answers: int = 1) -> list[bytes]:
    """Write ``raw`` on one connection; read ``answers`` answers (by their Content-Length)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        return [await asyncio.wait_for(_read_one(reader), 10) for _ in range(answers)]
    finally:
        writer.close()


def _request(
    body: bytes = b'{"nik": "3171012345678901"}',
    *,
    target: str = _PATH,
    extra: str = "",
    length: bool = True,
) -> bytes:
    head = f"POST {target} HTTP/1.1\r\nHost: broker.example:8443\r\nX-Road-Id: abc\r\n{extra}"
    if length:
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


def _without_date(answer: bytes) -> bytes:
    return b"\r\n".join(line for line in answer.split(b"\r\n") if not line.startswith(b"date:"))


async def _both(raw: bytes, answers: int = 1) -> tuple[list[bytes], list[bytes], _Echo]:
    """``raw`` answered by uvicorn's own protocol and by the broker's; the latter's app."""
    ours, theirs = _Echo(), _Echo()
    async with _serving(theirs, "httptools") as port:
        expected = await _exchange(port, raw, answers)
    async with _serving(ours, ExchangeProtocol) as port:
        got = await _exchange(port, raw, answers)
    assert theirs.by_asgi == theirs.answered == answers
    return [_without_date(a) for a in expected], [_without_date(a) for a in got], ours


class TestAnExchangeReadWhole:
    """Answered past ASGI, byte for byte as uvicorn would answer it."""

    @pytest.mark.parametrize(
        "raw",
        [
            _request(),
            _request(target=_PATH + "?x=1&y=%20"),
            _request(target="/r1/ID/GOV/DUKCAPIL/adminduk/k%74p"),
            _request(b""),
            _request(b"{" + b" " * (MAX_BODY_BYTES - 2) + b"}"),
            _request(extra="Connection: keep-alive\r\nX-Other:  spaced  \r\n"),
        ],
        ids=["plain", "query", "escaped path", "empty body", "at the limit", "more headers"],
    )
    async def test_the_same_answer(self, raw: bytes) -> None:
        expected, got, ours = await _both(raw)
        assert got == expected
        assert (ours.by_asgi, ours.answered) == (0, 1)
        assert b"\r\nserver: uvicorn\r\n" in got[0]  # uvicorn's default headers, as ever

    async def test_one_connection_one_exchange_after_another(self) -> None:
        app = _Echo()
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answers = []
            for body in (b"{}", b"[]", b"{}"):
                writer.write(_request(body))
                answers.append(await asyncio.wait_for(_read_one(reader), 10))
            writer.close()
        assert [json.loads(a.split(b"\r\n\r\n")[1])["body"] for a in answers] == ["{}", "[]", "{}"]
        assert (app.by_asgi, app.answered) == (0, 3)

    async def test_a_request_in_pieces(self) -> None:
        raw = _request(b'{"nik": "3171012345678901", "fields": ["nama"]}')
        app = _Echo()
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for piece in (raw[:30], raw[30:-20], raw[-20:-5], raw[-5:]):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.02)
            answer = await asyncio.wait_for(_read_one(reader), 10)
            writer.close()
        assert (
            json.loads(answer.split(b"\r\n\r\n")[1])["body"] == raw.split(b"\r\n\r\n")[1].decode()
        )
        assert (app.by_asgi, app.answered) == (0, 1)

    async def test_pipelined_exchanges_are_answered_in_order(self) -> None:
        expected, got, ours = await _both(_request(b"[1]") + _request(b"[2]"), answers=2)
        assert got == expected
        assert [json.loads(a.split(b"\r\n\r\n")[1])["body"] for a in got] == ["[1]", "[2]"]
        # The second came while the first was in flight: it waits its turn on uvicorn's path.
        assert (ours.by_asgi, ours.answered) == (1, 2)

    async def test_connection_close_is_honoured(self) -> None:
        app = _Echo()
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request(extra="Connection: close\r\n"))
            answer = await asyncio.wait_for(reader.read(), 10)  # to the end: the server closes
            writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nconnection: close\r\n" in answer
        assert json.loads(answer.split(b"\r\n\r\n")[1])["service"] == "ID/GOV/DUKCAPIL/adminduk/ktp"
        assert (app.by_asgi, app.answered) == (0, 1)

    async def test_a_client_gone_before_the_answer_leaves_the_server_serving(self) -> None:
        app = _Echo()
        app.hold = asyncio.Event()
        async with _serving(app, ExchangeProtocol) as port:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request())
            await asyncio.wait_for(app.held.wait(), 10)
            writer.close()
            await asyncio.sleep(0.05)
            app.hold.set()  # answered to nobody: nothing written, nothing raised
            app.hold = None
            assert len(await _exchange(port, _request())) == 1
        assert app.answered == 2

    async def test_a_bug_closes_the_connection_not_the_server(self) -> None:
        app = _Echo()
        app.crash = True
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request())
            assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing written
            writer.close()
            app.crash = False
            assert len(await _exchange(port, _request())) == 1
        assert (app.by_asgi, app.answered) == (0, 1)

    async def test_a_client_gone_before_the_answer_has_its_pipelined_request_dropped(
        self,
    ) -> None:
        """A request pipelined behind an exchange pauses reading; the exchange's own answer
        resumes it (as uvicorn's receive() does), so a client that has gone is seen going and
        what it pipelined is not run for no one (an audit record, a backend call, a use)."""
        app = _Echo()
        app.hold = asyncio.Event()
        server, sock, serving = await _start(app, ExchangeProtocol)
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        writer.write(_request(b"[1]") + _request(b"[2]"))
        await asyncio.wait_for(app.held.wait(), 10)
        writer.close()
        for _ in range(200):  # uvicorn forgets a connection once it has seen it lost
            if not _connections(server):
                break
            await asyncio.sleep(0.01)
        gone = not _connections(server)
        app.hold.set()
        app.hold = None
        await _answered(app, 1)
        await asyncio.sleep(0.1)  # time for a pipelined request to start, were it to
        server.should_exit = True
        await serving
        sock.close()
        assert gone
        assert (app.by_asgi, app.answered) == (0, 1)

    async def test_an_answer_that_cannot_be_written_closes_the_connection(self) -> None:
        app = _Echo()
        app.headers = {**app.headers, "X-Road-Id": "caf\u00e9\u20ac"}  # not latin-1
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(_request())
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, nothing written
            finally:
                writer.close()
            app.headers = _Echo().headers
            assert len(await _exchange(port, _request())) == 1
        assert app.answered == 2

    async def test_a_body_past_uvicorn_s_reading_pause_takes_its_path(self) -> None:
        """uvicorn pauses reading past 64 KiB of body, and only its ASGI receive() resumes:
        an app that reads more still has such bodies read by that path (here refused, 413)."""

        class Reads128KiB(_Echo):
            max_body_bytes = 2 * HIGH_WATER_LIMIT

        app = Reads128KiB()
        body = b"[" + b" " * 100_000 + b"]"
        raw = _request(body)
        async with _serving(app, ExchangeProtocol) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for piece in (raw[:50_000], raw[50_000:]):
                    writer.write(piece)
                    await writer.drain()
                    await asyncio.sleep(0.02)
                answer = await asyncio.wait_for(_read_one(reader), 5)
            finally:
                writer.close()  # else a stalled connection would hold the server's shutdown
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert app.answered == 0

    async def test_a_header_value_with_a_control_character_is_never_written(self) -> None:
        """As uvicorn refuses it: the connection closes, nothing of the answer is written."""
        ours, theirs = _Echo(), _Echo()
        closed = []
        for app, http in ((theirs, "httptools"), (ours, ExchangeProtocol)):
            app.headers = {**app.headers, "X-Road-Id": "id\x01injected"}
            async with _serving(app, http) as port:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_request())
                closed.append(await asyncio.wait_for(reader.read(), 10))
                writer.close()
        assert closed == [b"", b""]
        assert (ours.by_asgi, ours.answered) == (0, 1)

    async def test_an_answer_waits_while_the_client_reads_nothing(self) -> None:
        """With writing paused (the transport's buffer past its high-water mark), the answer
        is written only once the transport can take it again, as uvicorn's ``send`` waits."""
        app = _Echo()
        app.hold = asyncio.Event()
        server, sock, serving = await _start(app, ExchangeProtocol)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        writer.write(_request())
        await asyncio.wait_for(app.held.wait(), 10)
        (protocol,) = _connections(server)
        protocol.pause_writing()  # what the transport calls when its buffer fills
        app.hold.set()
        await _answered(app, 1)
        nothing = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        await asyncio.sleep(0.1)
        assert not nothing.done()  # answered, but nothing written while paused
        protocol.resume_writing()
        head = await asyncio.wait_for(nothing, 10)
        server.should_exit = True
        await serving
        writer.close()
        sock.close()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")

    async def test_a_client_gone_while_writing_is_paused_gets_nothing(self) -> None:
        app = _Echo()
        app.hold = asyncio.Event()
        server, sock, serving = await _start(app, ExchangeProtocol)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_request())
        await asyncio.wait_for(app.held.wait(), 10)
        (protocol,) = _connections(server)
        protocol.pause_writing()
        app.hold.set()
        app.hold = None
        await _answered(app, 1)
        writer.close()  # uvicorn's connection_lost resumes writing; the answer finds no one
        for _ in range(1000):
            if not server.server_state.tasks:
                break
            await asyncio.sleep(0.01)
        assert not server.server_state.tasks  # the answer's task has ended
        assert protocol.transport.is_closing()
        assert len(await _exchange(port, _request())) == 1  # the server serves on
        server.should_exit = True
        await serving
        sock.close()
        assert app.answered == 2

    async def test_shutting_down_finishes_the_exchange_in_flight(self) -> None:
        app = _Echo()
        app.hold = asyncio.Event()
        server, sock, serving = await _start(app, ExchangeProtocol)
        reader, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        writer.write(_request())
        await asyncio.wait_for(app.held.wait(), 10)
        server.should_exit = True
        await _told_to_close(server)  # uvicorn's shutdown has reached the connection
        app.hold.set()
        answer = await asyncio.wait_for(reader.read(), 10)
        await serving
        writer.close()
        sock.close()
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nconnection: close\r\n" in answer


class TestLeftToUvicorn:
    """What the broker's protocol does not answer itself goes through ASGI, as before."""

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            (_request(extra="X-Forwarded-Proto: https\r\n"), 200),
            (_request(extra="X-Forwarded-For: 10.0.0.7\r\n"), 200),
            (
                _request(b"", extra="Transfer-Encoding: chunked\r\n", length=False)
                + b"2\r\n{}\r\n0\r\n\r\n",
                200,
            ),
            (_request(b"{" + b" " * MAX_BODY_BYTES + b"}"), 413),
            (_request(extra="Expect: 100-continue\r\n"), 200),
        ],
        ids=["forwarded proto", "forwarded for", "chunked", "too long", "expect"],
    )
    async def test_by_asgi(self, raw: bytes, status: int) -> None:
        expected, got, ours = await _both(raw) if status == 200 else await _refused(raw)
        assert got == expected
        assert got[0].startswith(b"HTTP/1.1 %d " % status)
        assert ours.by_asgi == 1

    @pytest.mark.parametrize(
        "extra",
        [
            "Content-Length: 27\r\n",  # a second, equal, Content-Length
            "Transfer-Encoding: chunked\r\n",
        ],
        ids=["two lengths", "length and chunked"],
    )
    async def test_an_ambiguous_length_is_refused_by_the_parser(self, extra: str) -> None:
        """Before the protocol looks: uvicorn's 400 and the connection closed, by both."""
        ours, theirs = _Echo(), _Echo()
        answers = []
        for app, http in ((theirs, "httptools"), (ours, ExchangeProtocol)):
            async with _serving(app, http) as port:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_request(extra=extra))
                answers.append(_without_date(await asyncio.wait_for(reader.read(), 10)))
                writer.close()
        assert answers[0] == answers[1]
        assert answers[1].startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert ours.answered == ours.by_asgi == 0

    async def test_with_uvicorn_s_access_log_on(self) -> None:
        """An operator who turns uvicorn's access log on sees exchanges in it too."""
        access = logging.getLogger("uvicorn.access")
        handler = logging.NullHandler()
        access.addHandler(handler)
        try:
            app = _Echo()
            async with _serving(app, ExchangeProtocol, access_log=True) as port:
                assert len(await _exchange(port, _request())) == 1
        finally:
            access.removeHandler(handler)
        assert (app.by_asgi, app.answered) == (1, 1)

    async def test_the_proxy_headers_still_apply(self) -> None:
        _, got, _ = await _both(_request(extra="X-Forwarded-Proto: https\r\n"))
        seen = json.loads(got[0].split(b"\r\n\r\n")[1])
        assert seen["url"] == "https://broker.example:8443" + _PATH

    @pytest.mark.parametrize(
        "head",
        [
            b"GET " + _PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /r2/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            b"POST " + _PATH.encode() + b" HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        ],
        ids=["another method", "another path", "HTTP/1.0"],
    )
    async def test_not_an_exchange_read_whole(self, head: bytes) -> None:
        ours, theirs = _Echo(), _Echo()
        answers = []
        for app, http in ((theirs, "httptools"), (ours, ExchangeProtocol)):
            async with _serving(app, http) as port:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(head)
                answers.append(_without_date(await asyncio.wait_for(_read_one(reader), 10)))
                writer.close()
        assert answers[0] == answers[1]
        assert ours.by_asgi == theirs.by_asgi


async def _refused(raw: bytes) -> tuple[list[bytes], list[bytes], _Echo]:
    ours, theirs = _Echo(), _Echo()
    async with _serving(theirs, "httptools") as port:
        expected = await _exchange(port, raw)
    async with _serving(ours, ExchangeProtocol) as port:
        got = await _exchange(port, raw)
    return [_without_date(a) for a in expected], [_without_date(a) for a in got], ours


async def _read_one(reader: asyncio.StreamReader) -> bytes:
    """The next final answer on ``reader`` (an interim 100 Continue skipped), body included."""
    head = await reader.readuntil(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 1"):
        head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next((int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)
