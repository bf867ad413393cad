"""The background consent work stops without abandoning a step that runs on its thread."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import func, select

from audit import AuditLog
from audit import install as audit_install
from audit.store import audit_records
from broker.consent_api import ConsentApi
from broker.consent_worker import ConsentWorker
from broker.db import create_db_engine
from consent.store import ConsentStore
from consent.store import install as consent_install
from consent.tokens import Grant, Purpose
from tests._waiting import until


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


async def test_a_flush_cancelled_while_auditing_marks_what_it_wrote(tmp_path: Path) -> None:
    """Stopped (as the broker stops) while an event's record waits for the audit log's lock,
    the flush still marks the event once the writer has written it: otherwise the claim
    would run out and the event be written a second time."""
    main = create_db_engine(f"sqlite:///{tmp_path / 'main.db'}")
    audit_db = create_db_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    consent_install(main)
    audit_install(audit_db)
    store = ConsentStore(engine=main, issuer=None)
    store.create_request(
        client_id="ID/GOV/DPMPTSP-DKI/perizinan",
        client_jkt="NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        subject_nik="3171014506900001",
        grants=(Grant(service="ID/GOV/DUKCAPIL/adminduk/ktp", fields=("nik",)),),
        purpose=Purpose(code="izin-usaha", text="Izin usaha"),
        procedure_ref="P-1",
        valid_for_seconds=86400,
    )
    log = AuditLog(audit_db, max_delay=0.0)
    await log.start()
    api = ConsentApi(
        store=store,
        registry=cast(Any, None),
        schemas=cast(Any, None),
        audit=log,
        subject_secret=b"s" * 32,
        receipts=cast(Any, None),
    )
    # Another node appends a batch: the flush's record waits for the lock.
    other = sqlite3.connect(tmp_path / "audit.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    try:
        task = asyncio.create_task(api.flush())

        def claimed() -> bool:  # a claim is a negative audit_seq
            return any(event.audit_seq for event in store.events())

        await asyncio.to_thread(until, claimed, "the flush has claimed the event")
        await asyncio.sleep(0.1)  # its record handed to the writer, which waits for the lock
        task.cancel()
        threading.Timer(0.2, other.rollback).start()
        with pytest.raises(asyncio.CancelledError):
            await task
        await log.stop()
    finally:
        other.close()
    try:
        [event] = store.events()
        assert event.audit_seq is not None
        assert event.audit_seq > 0  # marked with its record's seq, not left claimed
        with audit_db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(audit_records)).scalar() == 1
    finally:
        main.dispose()
        audit_db.dispose()
