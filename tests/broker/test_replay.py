"""The replay cache: an ``X-Road-Id`` is accepted once per client inside the window."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from broker import replay
from broker.db import create_db_engine
from broker.errors import Replay
from broker.replay import PURGE_MARGIN_SECONDS, ReplayCache, seen_requests

PERMIT = "ID/GOV/DPMPTSP-DKI/perizinan"
TAX = "ID/GOV/BAPENDA-DKI/pajak"
WINDOW = 600
T0 = 1_750_000_000.0


class Clock:
    """A hand-driven clock."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(seen_requests)).scalar_one())


class TestRemember:
    def test_first_use_is_accepted_and_stored(self, cache: ReplayCache, installed: Engine) -> None:
        cache.remember(PERMIT, str(uuid.uuid4()))
        assert rows(installed) == 1

    def test_second_use_is_a_replay(self, cache: ReplayCache) -> None:
        xroad_id = str(uuid.uuid4())
        cache.remember(PERMIT, xroad_id)
        with pytest.raises(Replay) as info:
            cache.remember(PERMIT, xroad_id)
        assert info.value.problem_type == "replay"
        assert info.value.status == 409
        assert xroad_id in info.value.detail

    def test_other_client_may_use_the_same_id(self, cache: ReplayCache, installed: Engine) -> None:
        xroad_id = str(uuid.uuid4())
        cache.remember(PERMIT, xroad_id)
        cache.remember(TAX, xroad_id)
        assert rows(installed) == 2
        with pytest.raises(Replay):
            cache.remember(TAX, xroad_id)

    def test_different_ids_are_independent(self, cache: ReplayCache, installed: Engine) -> None:
        for _ in range(5):
            cache.remember(PERMIT, str(uuid.uuid4()))
        assert rows(installed) == 5

    def test_install_is_idempotent(self, installed: Engine, clock: Clock) -> None:
        cache = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        cache.remember(PERMIT, "a")
        replay.install(installed)
        with pytest.raises(Replay):
            cache.remember(PERMIT, "a")


class TestWindow:
    @pytest.mark.parametrize("later", [1, WINDOW // 2, WINDOW - 1, WINDOW])
    def test_still_refused_inside_the_window(
        self, cache: ReplayCache, clock: Clock, later: int
    ) -> None:
        cache.remember(PERMIT, "id-1")
        clock.now += later
        with pytest.raises(Replay):
            cache.remember(PERMIT, "id-1")

    def test_forgotten_after_the_window(
        self, cache: ReplayCache, clock: Clock, installed: Engine
    ) -> None:
        cache.remember(PERMIT, "id-1")
        cache.remember(PERMIT, "id-2")
        clock.now += WINDOW + PURGE_MARGIN_SECONDS + 1
        cache.remember(PERMIT, "id-3")  # purges id-1 and id-2 on the way
        assert rows(installed) == 1
        cache.remember(PERMIT, "id-1")
        assert rows(installed) == 2

    def test_an_id_is_kept_a_margin_past_the_window(
        self, cache: ReplayCache, clock: Clock, installed: Engine
    ) -> None:
        """Another node, its clock ahead of the one that recorded the id, purges by its own."""
        cache.remember(PERMIT, "id-1")
        clock.now += WINDOW + PURGE_MARGIN_SECONDS - 1
        cache.remember(PERMIT, "id-2")  # a purge runs on the way
        assert rows(installed) == 2
        with pytest.raises(Replay):
            cache.remember(PERMIT, "id-1")

    def test_purge_keeps_recent_ids(
        self, cache: ReplayCache, clock: Clock, installed: Engine
    ) -> None:
        cache.remember(PERMIT, "old")
        clock.now += WINDOW // 2
        cache.remember(PERMIT, "recent")
        clock.now += WINDOW // 2 + PURGE_MARGIN_SECONDS + 1
        cache.remember(PERMIT, "new")
        assert rows(installed) == 2
        with pytest.raises(Replay):
            cache.remember(PERMIT, "recent")

    def test_purge_by_another_instance_is_seen(self, installed: Engine, clock: Clock) -> None:
        first = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        second = ReplayCache(engine=installed, window_seconds=WINDOW, clock=clock)
        first.remember(PERMIT, "id-1")
        clock.now += WINDOW + PURGE_MARGIN_SECONDS + 1
        second.remember(PERMIT, "id-2")
        first.remember(PERMIT, "id-1")
        assert rows(installed) == 2


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one SQLite file, as two broker processes would have."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = create_db_engine(url), create_db_engine(url)
    replay.install(first)
    replay.install(second)
    yield first, second
    first.dispose()
    second.dispose()


class TestSharedDatabase:
    def test_an_id_seen_by_one_process_is_refused_by_the_other(
        self, two_processes: tuple[Engine, Engine]
    ) -> None:
        a, b = (ReplayCache(engine=e, window_seconds=WINDOW) for e in two_processes)
        a.remember(PERMIT, "shared-id")
        with pytest.raises(Replay):
            b.remember(PERMIT, "shared-id")
        b.remember(TAX, "shared-id")
        with pytest.raises(Replay):
            a.remember(TAX, "shared-id")

    def test_racing_threads_accept_an_id_at_most_once(
        self, two_processes: tuple[Engine, Engine]
    ) -> None:
        threads_per_engine = 8
        ids = [str(uuid.uuid4()) for _ in range(5)]
        caches = [
            ReplayCache(engine=e, window_seconds=WINDOW)
            for e in two_processes
            for _ in range(threads_per_engine)
        ]
        barrier = threading.Barrier(len(caches))
        accepted: list[str] = []
        replays: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def worker(cache: ReplayCache) -> None:
            barrier.wait()
            for xroad_id in ids:
                try:
                    cache.remember(PERMIT, xroad_id)
                except Replay:
                    outcome = replays
                except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                    with lock:
                        errors.append(exc)
                    continue
                else:
                    outcome = accepted
                with lock:
                    outcome.append(xroad_id)

        threads = [threading.Thread(target=worker, args=(c,)) for c in caches]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert sorted(accepted) == sorted(ids)
        assert len(replays) == len(ids) * (len(caches) - 1)
        assert rows(two_processes[0]) == len(ids)
