"""The broker's background consent work, one pass every few seconds.

Each pass: mark consents and requests past their deadlines EXPIRED (correctness never waits
for this: every exchange checks ``exp`` itself), copy logged transitions into the audit log,
queue notifications for them in the outbox, and deliver what is due. Every step reads its
work from the database, so a pass interrupted by a crash or a restart is simply done again.
"""

from __future__ import annotations

import asyncio
import contextlib

from broker._threads import finished_even_if_cancelled
from broker.consent_api import ConsentApi
from broker.logs import get_logger
from broker.notifications import Notifier, fan_out
from broker.registry import Registry
from consent import ConsentStore

__all__ = ["ConsentWorker"]

_log = get_logger("simpul.consent_worker")


class ConsentWorker:
    """Runs :meth:`run_once` every ``interval`` seconds between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        store: ConsentStore,
        api: ConsentApi,
        registry: Registry,
        notifier: Notifier,
        interval: float,
    ) -> None:
        self._store = store
        self._api = api
        self._handler = fan_out(registry)
        self._notifier = notifier
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """One pass; returns how many notifications were delivered.

        Cancelled (the broker stopping) while a step runs on its thread, it lets that step
        finish first: the step commits all the same, and its connection goes back to a pool
        that has not been disposed of yet.
        """
        await finished_even_if_cancelled(asyncio.to_thread(self._store.expire_due))
        await self._api.flush()
        await finished_even_if_cancelled(asyncio.to_thread(self._store.dispatch, self._handler))
        return await self._notifier.run_once()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the worker must outlive a bad pass; it retries
                _log.exception("consent_worker_failed")
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        """Start the loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="simpul-consent-worker")

    async def stop(self) -> None:
        """Stop the loop (a delivery in flight is given back, and sent again on the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
