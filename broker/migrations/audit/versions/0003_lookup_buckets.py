"""audit_lookup rows carry a bucket (seq >> 16) ahead of the key

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Keyed by (kind, key, seq), every indexing pass wrote pages all over an index that grows with
the log; on a log of 1,000,000 records appends ran at half the rate of a new log. Keyed by
(kind, bucket, key, seq), the rows of new records all land in the newest bucket's pages (see
audit/lookup.py). The rows already there are copied over with their bucket, so the watermark
in audit_lookup_marks stays true. The bucket width and the trigger DDL are frozen as they were
at this revision.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BUCKET_BITS = 16


def _triggers(table: str) -> list[str]:
    if op.get_bind().dialect.name == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {table}_no_{verb}\n"
            f"    BEFORE {verb.upper()} ON {table}\n"
            f"    BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            for verb in ("update", "delete")
        ]
    statements = []
    for verb, level in (("update", "ROW"), ("delete", "ROW"), ("truncate", "STATEMENT")):
        name = f"{table}_no_{verb}"
        statements.append(
            f"CREATE TRIGGER {name} BEFORE {verb.upper()} ON {table} "
            f"FOR EACH {level} EXECUTE FUNCTION audit_records_append_only()"
        )
        statements.append(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")
    return statements


def _replace_lookup(columns: list[sa.Column[int]], select: str) -> None:
    """Build the lookup table anew from the old one's rows, then put it in the old one's place.

    Dropping the old table drops its append-only triggers too; the new one gets its own. On
    SQLite the CREATE commits on its own (the driver opens a transaction at the first DML), so
    a run that failed later (a full disk while copying) leaves the new table behind: a rerun
    drops it first.
    """
    op.execute("DROP TABLE IF EXISTS audit_lookup_next")
    op.create_table(
        "audit_lookup_next",
        *columns,
        sa.PrimaryKeyConstraint(*(c.name for c in columns), name="audit_lookup_next_pkey"),
        sqlite_with_rowid=False,
    )
    names = ", ".join(c.name for c in columns)
    op.execute(f"INSERT INTO audit_lookup_next ({names}) {select} ORDER BY {names}")
    op.drop_table("audit_lookup")
    op.rename_table("audit_lookup_next", "audit_lookup")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE audit_lookup RENAME CONSTRAINT audit_lookup_next_pkey TO audit_lookup_pkey"
        )
    for statement in _triggers("audit_lookup"):
        op.execute(statement)


def _column(name: str, kind: type[sa.types.TypeEngine[int]]) -> sa.Column[int]:
    return sa.Column(name, kind(), autoincrement=False, nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    _replace_lookup(
        [
            _column("kind", sa.Integer),
            _column("bucket", sa.BigInteger),
            _column("key", sa.BigInteger),
            _column("seq", sa.BigInteger),
        ],
        f"SELECT kind, seq >> {_BUCKET_BITS} AS bucket, key, seq FROM audit_lookup",  # noqa: S608 - constant
    )


def downgrade() -> None:
    """Revert this revision."""
    _replace_lookup(
        [_column("kind", sa.Integer), _column("key", sa.BigInteger), _column("seq", sa.BigInteger)],
        "SELECT kind, key, seq FROM audit_lookup",
    )
