"""audit log, Merkle tree and checkpoints

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER IF NOT EXISTS audit_records_no_update\n    BEFORE UPDATE ON audit_records\n    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_records_no_delete\n    BEFORE DELETE ON audit_records\n    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_tree_no_update\n    BEFORE UPDATE ON audit_tree\n    BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_tree_no_delete\n    BEFORE DELETE ON audit_tree\n    BEGIN SELECT RAISE(ABORT, 'audit_tree is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_update\n    BEFORE UPDATE ON audit_checkpoints\n    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_checkpoints_no_delete\n    BEFORE DELETE ON audit_checkpoints\n    BEGIN SELECT RAISE(ABORT, 'audit_checkpoints is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_records_next_seq\n    BEFORE INSERT ON audit_records\n    WHEN NEW.seq IS NOT coalesce((SELECT max(seq) FROM audit_records), 0) + 1\n    BEGIN SELECT RAISE(ABORT, 'audit_records is append-only: seq must be the next one'); END",
)

_PG_TRIGGERS: tuple[str, ...] = (
    "\nCREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger\nLANGUAGE plpgsql AS $fn$\nBEGIN\n    RAISE EXCEPTION USING MESSAGE = TG_TABLE_NAME || ' is append-only';\nEND\n$fn$",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_records_no_update' AND tgrelid = 'audit_records'::regclass) THEN\n                CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_records ENABLE ALWAYS TRIGGER audit_records_no_update",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_records_no_delete' AND tgrelid = 'audit_records'::regclass) THEN\n                CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_records ENABLE ALWAYS TRIGGER audit_records_no_delete",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_records_no_truncate' AND tgrelid = 'audit_records'::regclass) THEN\n                CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_records ENABLE ALWAYS TRIGGER audit_records_no_truncate",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_tree_no_update' AND tgrelid = 'audit_tree'::regclass) THEN\n                CREATE TRIGGER audit_tree_no_update BEFORE UPDATE ON audit_tree FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_tree ENABLE ALWAYS TRIGGER audit_tree_no_update",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_tree_no_delete' AND tgrelid = 'audit_tree'::regclass) THEN\n                CREATE TRIGGER audit_tree_no_delete BEFORE DELETE ON audit_tree FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_tree ENABLE ALWAYS TRIGGER audit_tree_no_delete",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_tree_no_truncate' AND tgrelid = 'audit_tree'::regclass) THEN\n                CREATE TRIGGER audit_tree_no_truncate BEFORE TRUNCATE ON audit_tree FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_tree ENABLE ALWAYS TRIGGER audit_tree_no_truncate",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_checkpoints_no_update' AND tgrelid = 'audit_checkpoints'::regclass) THEN\n                CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_update",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_checkpoints_no_delete' AND tgrelid = 'audit_checkpoints'::regclass) THEN\n                CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_delete",
    "DO $do$ BEGIN\n            IF NOT EXISTS (SELECT 1 FROM pg_trigger\n                           WHERE tgname = 'audit_checkpoints_no_truncate' AND tgrelid = 'audit_checkpoints'::regclass) THEN\n                CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();\n            END IF;\n        END $do$",
    "ALTER TABLE audit_checkpoints ENABLE ALWAYS TRIGGER audit_checkpoints_no_truncate",
)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.Text(), nullable=False),
        sa.Column("time", sa.Text(), nullable=False),
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.Column("kid", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.create_index("ix_audit_checkpoints_tree_size", ["tree_size"], unique=False)

    op.create_table(
        "audit_records",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("time", sa.Text(), nullable=False),
        sa.Column("event", sa.Text(), nullable=False),
        sa.Column("xroad_id", sa.Text(), nullable=False),
        sa.Column("client", sa.Text(), nullable=False),
        sa.Column("service", sa.Text(), nullable=True),
        sa.Column("officer", sa.Text(), nullable=True),
        sa.Column("issue", sa.Text(), nullable=True),
        sa.Column("purpose", sa.Text(), nullable=True),
        sa.Column("consent_id", sa.Text(), nullable=True),
        sa.Column("subject_ref", sa.Text(), nullable=True),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=True),
        sa.Column("response_hash", sa.Text(), nullable=True),
        sa.Column("released_fields", sa.Text(), nullable=False),
        sa.Column("latency_us", sa.BigInteger(), nullable=False),
        sa.Column("leaf_hash", sa.Text(), nullable=False),
        sa.Column("chain_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_audit_records_consent_id_seq", ["consent_id", "seq"], unique=False
        )
        batch_op.create_index(
            "ix_audit_records_subject_ref_seq", ["subject_ref", "seq"], unique=False
        )
        batch_op.create_index("ix_audit_records_time", ["time"], unique=False)
        batch_op.create_index("ix_audit_records_xroad_id", ["xroad_id"], unique=False)

    op.create_table(
        "audit_tree",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("hash", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )

    # The append-only triggers, frozen here as they were at this revision (a later change to
    # them is a new revision). UPDATE and DELETE refused everywhere; on PostgreSQL TRUNCATE too,
    # ENABLE ALWAYS so that session_replication_role = replica cannot silence them.
    statements = _SQLITE_TRIGGERS if op.get_bind().dialect.name == "sqlite" else _PG_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("audit_tree")
    with op.batch_alter_table("audit_records", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_records_xroad_id")
        batch_op.drop_index("ix_audit_records_time")
        batch_op.drop_index("ix_audit_records_subject_ref_seq")
        batch_op.drop_index("ix_audit_records_consent_id_seq")

    op.drop_table("audit_records")
    with op.batch_alter_table("audit_checkpoints", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_checkpoints_tree_size")

    op.drop_table("audit_checkpoints")
