"""The audit database holds no raw NIK, and its log verifies, after real traffic.

On SQLite the database file (and its WAL) is searched byte by byte; on PostgreSQL, the text of
every row of the audit table.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, text

from audit import verify_log
from broker.client import SimpulClient
from broker.sandbox_env import SandboxWorld
from tests.conftest import DATABASE
from tests.e2e.conftest import KTP, TAX_OFFICE, grant

pytestmark = pytest.mark.e2e


def test_no_raw_nik_in_the_audit_file(
    world: SandboxWorld, office: SimpulClient, people: Any, audit_engine: Engine
) -> None:
    nik = people.demo_citizen().nik
    mine = grant(world, office, nik)
    assert office.fetch(KTP, {"nik": nik}, consent_token=mine.token).ok
    assert not office.fetch(KTP, {"nik": nik, "fields": ["agama"]}, consent_token=mine.token).ok
    with SimpulClient(base_url=world.broker_url, client_id=TAX_OFFICE, key=world.tax_key) as tax:
        assert not tax.fetch(KTP, {"nik": nik}, consent_token=mine.token).ok

    if DATABASE == "sqlite":
        raw = b"".join(p.read_bytes() for p in sorted(world.data_dir.glob("audit.db*")))
    else:
        with audit_engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM audit_records")).all()
        raw = "\n".join(repr(tuple(row)) for row in rows).encode()
    assert b"exchange" in raw  # the grep reads the records themselves, not an empty file
    leaked = [p.nik for p in people.people if p.nik.encode() in raw]
    assert leaked == []
    assert verify_log(audit_engine).ok
