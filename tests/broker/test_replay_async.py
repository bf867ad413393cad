"""The group-committed replay check: the same answers as the synchronous one, in batches."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import Engine, text

from broker import replay
from broker.errors import Replay
from broker.replay import ReplayCache
from tests.broker.test_replay import PERMIT, TAX, WINDOW, Clock, rows


@pytest.fixture
def installed(engine: Engine) -> Engine:
    replay.install(engine)
    return engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(installed: Engine, clock: Clock) -> ReplayCache:
    return ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)


async def remember(cache: ReplayCache, client_id: str, xroad_id: str) -> None:
    """What the exchange does with ``remember_soon`` (see ``RequestAuthenticator.remembered``)."""
    if not await cache.remember_soon(client_id, xroad_id):
        raise Replay(xroad_id)


class TestRememberAsync:
    async def test_concurrent_new_ids_all_pass_in_few_transactions(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        ids = [str(uuid.uuid4()) for _ in range(50)]
        await asyncio.gather(*(remember(cache, PERMIT, i) for i in ids))
        assert rows(installed) == 50

    async def test_an_id_sent_twice_at_once_passes_once(self, cache: ReplayCache) -> None:
        xroad_id = str(uuid.uuid4())
        outcomes = await asyncio.gather(
            *(remember(cache, PERMIT, xroad_id) for _ in range(5)), return_exceptions=True
        )
        assert sum(o is None for o in outcomes) == 1
        assert all(isinstance(o, Replay) for o in outcomes if o is not None)

    @pytest.mark.parametrize("first_sync", [True, False])
    async def test_sync_and_async_see_each_other(
        self, cache: ReplayCache, first_sync: bool
    ) -> None:
        xroad_id = str(uuid.uuid4())
        if first_sync:
            cache.remember(PERMIT, xroad_id)
            with pytest.raises(Replay):
                await remember(cache, PERMIT, xroad_id)
        else:
            await remember(cache, PERMIT, xroad_id)
            with pytest.raises(Replay):
                cache.remember(PERMIT, xroad_id)

    async def test_another_client_may_use_the_same_id(self, cache: ReplayCache) -> None:
        xroad_id = str(uuid.uuid4())
        await asyncio.gather(remember(cache, PERMIT, xroad_id), remember(cache, TAX, xroad_id))

    async def test_two_caches_on_one_database_share_ids(
        self, cache: ReplayCache, installed: Engine, clock: Clock
    ) -> None:
        # A second worker process, on the same database.
        other = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        xroad_id = str(uuid.uuid4())
        await remember(cache, PERMIT, xroad_id)
        with pytest.raises(Replay):
            await remember(other, PERMIT, xroad_id)

    async def test_ids_past_the_window_are_purged(
        self, cache: ReplayCache, installed: Engine, clock: Clock
    ) -> None:
        old = str(uuid.uuid4())
        await remember(cache, PERMIT, old)
        clock.now += WINDOW + 1
        await remember(cache, PERMIT, str(uuid.uuid4()))
        assert rows(installed) == 1
        await remember(cache, PERMIT, old)  # forgotten with its window

    async def test_a_failed_batch_fails_every_waiter(
        self, cache: ReplayCache, installed: Engine
    ) -> None:
        with installed.begin() as conn:
            conn.execute(text("DROP TABLE seen_requests"))
        outcomes = await asyncio.gather(
            *(remember(cache, PERMIT, str(uuid.uuid4())) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(o, Exception) and not isinstance(o, Replay) for o in outcomes)
