"""The background consent work stops without abandoning a step that runs on its thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest

from broker.consent_api import ConsentApi
from broker.consent_worker import ConsentWorker


class _Steps:
    """Stands in for the store, the consent API and the notifier; ``slow`` blocks on a thread."""

    def __init__(self, slow: str) -> None:
        self.slow = slow
        self.started, self.go_on, self.finished = threading.Event(), threading.Event(), set()
        self.calls: list[str] = []

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.slow:
            self.started.set()
            self.go_on.wait(5)
        self.finished.add(name)

    def expire_due(self) -> None:
        self._step("expire_due")

    def dispatch(self, _handler: object) -> None:
        self._step("dispatch")

    async def flush(self) -> int:
        self.calls.append("flush")
        return 0

    async def run_once(self) -> int:
        self.calls.append("notify")
        return 0


@pytest.mark.parametrize("slow", ["expire_due", "dispatch"])
async def test_a_stop_waits_for_the_step_on_its_thread(slow: str) -> None:
    """Cancelled while a step runs on its thread, the worker lets it finish before it stops:
    the broker disposes of its engines right after, and the step holds a pooled connection."""
    steps = _Steps(slow)
    worker = ConsentWorker(
        store=cast(Any, steps),
        api=cast(Any, steps),
        registry=cast(Any, None),
        notifier=cast(Any, steps),
        interval=3600,
    )
    worker.start()
    await asyncio.to_thread(steps.started.wait, 5)
    threading.Timer(0.2, steps.go_on.set).start()
    await worker.stop()
    assert slow in steps.finished  # stop() returned only once the step had finished
    assert "notify" not in steps.calls  # and nothing after it ran: the pass was cancelled


async def test_a_cancelled_flush_waits_for_its_claim_on_its_thread() -> None:
    """The worker's pass copies consent events into the audit log through ConsentApi.flush:
    cancelled while its claim runs on its thread, it too lets the claim finish first."""
    started, go_on, finished = threading.Event(), threading.Event(), threading.Event()

    class Store:
        def claim_unaudited(self, *, now: int, limit: int) -> list[Any]:
            started.set()
            go_on.wait(5)
            finished.set()
            return []

    api = ConsentApi(
        store=cast(Any, Store()),
        registry=cast(Any, None),
        schemas=cast(Any, None),
        audit=cast(Any, None),
        subject_secret=b"",
        receipts=cast(Any, None),
    )
    task = asyncio.create_task(api.flush())
    await asyncio.to_thread(started.wait, 5)
    threading.Timer(0.2, go_on.set).start()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert finished.is_set()
