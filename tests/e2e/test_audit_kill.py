"""A broker killed with SIGKILL mid-flight never leaves an acknowledged exchange unaudited."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from audit.store import audit_records
from audit.verify import verify_log
from broker.client import SimpulClient
from broker.db import create_db_engine
from broker.sandbox_env import PERMIT_OFFICE, SandboxWorld
from tests.e2e.conftest import KTP, grant

pytestmark = pytest.mark.e2e

THREADS = 6


@pytest.fixture
def crash_world(tmp_path: Path) -> Iterator[SandboxWorld]:
    """A world of its own: this test kills its broker."""
    world = SandboxWorld.create(tmp_path / "world")
    world.start()
    try:
        yield world
    finally:
        world.stop()


@pytest.mark.sqlite_only  # its own world on SQLite files: once is enough
def test_every_acknowledged_exchange_has_its_record(crash_world: SandboxWorld, people: Any) -> None:
    world = crash_world
    with SimpulClient(
        base_url=world.broker_url, client_id=PERMIT_OFFICE, key=world.permit_key
    ) as office:
        granted = grant(world, office, people.demo_citizen().nik)
    answered: list[tuple[str, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def hammer() -> None:
        with SimpulClient(
            base_url=world.broker_url,
            client_id=PERMIT_OFFICE,
            key=world.permit_key,
            http=httpx.Client(timeout=5.0),
            verify_responses=False,
        ) as client:
            while not stop.is_set():
                xroad_id = str(uuid.uuid4())
                extra = {"Consent-Token": granted.token}
                body = f'{{"nik": "{granted.nik}"}}'.encode()
                try:
                    response = client.send(
                        "POST", f"/r1/{KTP}", body, extra_headers=extra, xroad_id=xroad_id
                    )
                except httpx.HTTPError:
                    return  # the broker is gone: this request was never acknowledged
                with lock:
                    answered.append((xroad_id, response.status_code))

    threads = [threading.Thread(target=hammer) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if sum(status == 200 for _, status in answered) >= 40:
                break
        time.sleep(0.02)
    world.kill("broker")  # mid-flight: the threads are still sending
    stop.set()
    for thread in threads:
        thread.join(timeout=10)

    acknowledged = [xroad_id for xroad_id, status in answered if status != 503]
    assert sum(status == 200 for _, status in answered) >= 40
    engine = create_db_engine(world.audit_database_url)
    try:
        with engine.connect() as conn:
            logged = set(conn.scalars(select(audit_records.c.xroad_id)))
        missing = [xroad_id for xroad_id in acknowledged if xroad_id not in logged]
        assert missing == []
        report = verify_log(engine)
        assert report.ok, report
        assert report.records >= len(acknowledged)
    finally:
        engine.dispose()
