"""Adapter-owned clients (aiohttp under the httpx API) against real sockets: failures keep
their problem types."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters import create_adapter
from adapters._http import pooled_client
from adapters.errors import UpstreamTimeout, UpstreamUnavailable
from broker.sandbox_env import free_port

NIK = "3174095708900001"


async def _serve(handler: Any) -> AsyncIterator[str]:
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.current_task()
        if task is not None:
            tasks.append(task)
        await handler(reader, writer)

    server = await asyncio.start_server(tracked, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        # Server.close() leaves accepted connections open (Python 3.11): close them too, or
        # their sockets are collected unclosed after the test.
        server.close()
        for task in tasks:
            task.cancel()
        for writer in writers:
            writer.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


@pytest.fixture
async def hangs_up() -> AsyncIterator[str]:
    """A backend that reads the request and closes the connection without answering."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.close()

    async for url in _serve(handler):
        yield url


@pytest.fixture
async def silent() -> AsyncIterator[str]:
    """A backend that accepts and never answers."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    async for url in _serve(handler):
        yield url


class TestOwnedClient:
    async def test_speaks_http_through_aiohttp(self) -> None:
        client = pooled_client(timeout=1.0)
        try:
            assert type(client._transport).__name__ == "AiohttpTransport"
            assert client.headers["user-agent"] == "simpul-adapter"
        finally:
            await client.aclose()

    @pytest.mark.parametrize("service", ["ktp", "kk"])
    async def test_refused_connection_is_unavailable(self, service: str) -> None:
        adapter = create_adapter(
            "dukcapil", base_url=f"http://127.0.0.1:{free_port()}", timeout=1.0
        )
        try:
            with pytest.raises(UpstreamUnavailable):
                await adapter.fetch(service, {"nik": NIK})
        finally:
            await adapter.aclose()

    async def test_hang_up_is_unavailable_not_a_timeout(self, hangs_up: str) -> None:
        adapter = create_adapter("dukcapil", base_url=hangs_up, timeout=1.0)
        try:
            with pytest.raises(UpstreamUnavailable):
                await adapter.fetch("ktp", {"nik": NIK})
        finally:
            await adapter.aclose()

    async def test_silence_is_a_timeout(self, silent: str) -> None:
        adapter = create_adapter("dukcapil", base_url=silent, timeout=0.2)
        try:
            with pytest.raises(UpstreamTimeout):
                await adapter.fetch("ktp", {"nik": NIK})
        finally:
            await adapter.aclose()
