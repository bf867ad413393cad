"""The collector's settings for a serving process: set while serving, undone after."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

import broker.app
from broker._gc import YOUNG_THRESHOLD, tuned_gc
from broker.app import create_app, create_served_app
from broker.settings import Settings


class TestTunedGc:
    def test_freezes_raises_the_young_threshold_and_restores_both(self) -> None:
        before = gc.get_threshold()
        with tuned_gc():
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before

    def test_restores_after_a_failure(self) -> None:
        before = gc.get_threshold()
        try:
            with tuned_gc():
                raise RuntimeError("serving stopped")
        except RuntimeError:
            pass
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0

    def test_nested_use_undoes_only_at_the_outermost_exit(self) -> None:
        before = gc.get_threshold()
        with tuned_gc():
            with tuned_gc():
                pass
            assert gc.get_freeze_count() > 0  # the outer app is still serving
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before


class _Running:
    async def close(self) -> None:
        pass


async def _started(settings: object) -> _Running:
    return _Running()


class TestServedApp:
    """Only the served app tunes the collector, while its lifespan runs."""

    async def test_the_served_factory_tunes_while_serving(
        self, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        clean_env.setattr(broker.app.Broker, "start", _started)
        clean_env.setenv("SIMPUL_SUBJECT_HASH_SECRET", "ab" * 32)
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        before = gc.get_threshold()
        app = create_served_app()
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == before

    async def test_an_app_built_otherwise_leaves_the_collector_alone(
        self, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        clean_env.setattr(broker.app.Broker, "start", _started)
        before = gc.get_threshold()
        app = create_app(Settings(data_dir=tmp_path, subject_hash_secret="ab" * 32))
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() == before
