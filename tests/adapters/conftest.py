"""Fixtures for the adapters tests: the population, the sandbox apps in-process, adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx.mocks

from adapters import Adapter, create_adapter
from adapters.sandbox import create_capil_app, create_dukcapil_app, generate
from adapters.sandbox.population import Population
from tests.adapters.samples import CAPIL_URL, DUKCAPIL_URL

# Adapters under respx are given an httpx client (an adapter-owned client is our own, which
# respx cannot see); intercept at the httpx client, whatever its transport.
respx.mocks.DEFAULT_MOCKER = respx.mocks.HTTPXMocker.name

# Well under the sandbox's 3 s stall, so a slow NIK times out quickly.
ROUND_TRIP_TIMEOUT = 0.3


@pytest.fixture(scope="session")
def population() -> Population:
    """The default population (cached by ``generate``)."""
    return generate()


@pytest.fixture
async def dukcapil_client(population: Population) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests go to the Dukcapil sandbox app, in-process."""
    transport = httpx.ASGITransport(app=create_dukcapil_app(population))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
async def capil_client(population: Population) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests go to the birth registry sandbox app, in-process."""
    transport = httpx.ASGITransport(app=create_capil_app(population))
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
async def dukcapil(dukcapil_client: httpx.AsyncClient) -> AsyncIterator[Adapter]:
    """The Dukcapil adapter talking to the sandbox through ``dukcapil_client``."""
    adapter = create_adapter(
        "dukcapil", base_url=DUKCAPIL_URL, timeout=ROUND_TRIP_TIMEOUT, client=dukcapil_client
    )
    yield adapter
    await adapter.aclose()


@pytest.fixture
async def capil(capil_client: httpx.AsyncClient) -> AsyncIterator[Adapter]:
    """The birth registry adapter talking to the sandbox through ``capil_client``."""
    adapter = create_adapter(
        "capil", base_url=CAPIL_URL, timeout=ROUND_TRIP_TIMEOUT, client=capil_client
    )
    yield adapter
    await adapter.aclose()
