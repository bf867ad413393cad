"""Builders shared by the audit tests."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event

from audit.records import AuditEntry

TRIGGERS = (
    "audit_records_no_update",
    "audit_records_no_delete",
    "audit_records_next_seq",
    "audit_tree_no_update",
    "audit_tree_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
    "audit_lookup_no_update",
    "audit_lookup_no_delete",
    "audit_lookup_marks_no_update",
    "audit_lookup_marks_no_delete",
)


def make_entry(i: int = 0, **overrides: Any) -> AuditEntry:
    """A plausible exchange entry; ``i`` varies the ids, subject and hashes."""
    fields: dict[str, Any] = {
        "event": "exchange",
        "xroad_id": f"6f1c2d3e-0000-4000-8000-{i:012d}",
        "client": "ID/GOV/DPMPTSP-DKI/perizinan",
        "service": "ID/GOV/DUKCAPIL/adminduk/ktp",
        "officer": "budi.santoso",
        "issue": f"PB-UMKU/2026/{i:04d}",
        "purpose": "PERIZINAN-USAHA",
        "consent_id": f"consent-{i % 5}",
        "subject_ref": hashlib.sha256(f"subject-{i % 3}".encode()).hexdigest(),
        "decision": "allowed",
        "reason": None,
        "status": 200,
        "request_hash": hashlib.sha256(f"request-{i}".encode()).hexdigest(),
        "response_hash": hashlib.sha256(f"response-{i}".encode()).hexdigest(),
        "released_fields": ("nik", "nama", "alamat"),
        "latency_us": 1500 + i,
    }
    fields.update(overrides)
    return AuditEntry(**fields)


def sqlite_engine(path: str) -> Engine:
    """Another engine on a SQLite file, set up like the broker's (WAL, FULL, busy timeout).

    The audit tests do not import the broker; this mirrors what ``tests/conftest.py`` gives.
    """
    engine = create_engine(f"sqlite:///{path}", connect_args={"check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    return engine


def database_path(engine: Engine) -> str:
    """The SQLite file behind ``engine``."""
    path = engine.url.database
    assert path is not None
    return path


@contextmanager
def raw_sqlite(engine: Engine) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the engine's file, autocommitting: what an intruder uses."""
    with closing(sqlite3.connect(database_path(engine), isolation_level=None)) as conn:
        yield conn


def drop_triggers(engine: Engine) -> None:
    """Remove the append-only guard, as someone with write access to the file could."""
    with raw_sqlite(engine) as conn:
        for name in TRIGGERS:
            conn.execute(f"DROP TRIGGER {name}")
