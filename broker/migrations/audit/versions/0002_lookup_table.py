"""lookups by subject, consent and X-Road id move to audit_lookup

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Three random-key indexes on audit_records made every durable append write pages all over the
file. They are replaced by audit_lookup, (kind, 64-bit key, seq), which the writer fills in
bulk, and audit_lookup_marks, the seq up to which it is complete (see audit/lookup.py). Existing
records are indexed here. Key derivation and trigger DDL are frozen as they were at this
revision.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("audit_lookup", "audit_lookup_marks")
_KINDS = (("subject_ref", 1), ("consent_id", 2), ("xroad_id", 3))
_PAGE = 20_000


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb}\n    BEFORE {verb.upper()} ON {table}\n"
        f"    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
        for verb in ("update", "delete")
    ]


def _pg_triggers(table: str) -> list[str]:
    statements = []
    for verb, level in (("update", "ROW"), ("delete", "ROW"), ("truncate", "STATEMENT")):
        name = f"{table}_no_{verb}"
        statements.append(
            f"CREATE TRIGGER {name} BEFORE {verb.upper()} ON {table} "
            f"FOR EACH {level} EXECUTE FUNCTION audit_records_append_only()"
        )
        statements.append(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
    return statements


def _key(value: str) -> int:
    return int.from_bytes(hashlib.sha256(value.encode()).digest()[:8], "big", signed=True)


def _index_existing() -> None:
    conn = op.get_bind()
    done = 0
    while True:
        page = conn.execute(
            sa.text(
                "SELECT seq, subject_ref, consent_id, xroad_id FROM audit_records "
                "WHERE seq > :done ORDER BY seq LIMIT :page"
            ),
            {"done": done, "page": _PAGE},
        ).all()
        if not page:
            break
        rows = [
            {"kind": kind, "key": _key(value), "seq": row[0]}
            for row in page
            for (_, kind), value in zip(_KINDS, row[1:], strict=True)
            if value is not None
        ]
        conn.execute(sa.text("INSERT INTO audit_lookup VALUES (:kind, :key, :seq)"), rows)
        done = int(page[-1][0])
    if done:
        conn.execute(sa.text("INSERT INTO audit_lookup_marks VALUES (:seq)"), {"seq": done})


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_xroad_id")
        batch_op.drop_index("ix_audit_records_subject_ref_seq")
        batch_op.drop_index("ix_audit_records_consent_id_seq")
    op.create_table(
        "audit_lookup",
        sa.Column("kind", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", "seq"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "audit_lookup_marks",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("seq"),
    )
    _index_existing()
    make = _sqlite_triggers if op.get_bind().dialect.name == "sqlite" else _pg_triggers
    for table in _TABLES:
        for statement in make(table):
            op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("audit_lookup_marks")
    op.drop_table("audit_lookup")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_records_consent_id_seq", ["consent_id", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_audit_records_subject_ref_seq", ["subject_ref", "seq"], unique=False
        )
        batch_op.create_index("ix_audit_records_xroad_id", ["xroad_id"], unique=False)
