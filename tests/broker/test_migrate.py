"""Alembic migrations: they build exactly the tables the code declares, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from broker import migrate
from broker.cli import app
from broker.errors import SchemaBehind

WHICH = get_args(migrate.Which)


@pytest.mark.parametrize("which", WHICH)
class TestUpgrade:
    def test_empty_database_is_behind(self, engine: Engine, which: migrate.Which) -> None:
        with pytest.raises(SchemaBehind, match="simpul db upgrade"):
            migrate.require_current(engine, which)

    def test_upgrade_reaches_head_and_matches_the_code(
        self, engine: Engine, which: migrate.Which
    ) -> None:
        migrate.upgrade(engine, which)
        assert migrate.current_revision(engine, which) == migrate.head_revision(which)
        migrate.require_current(engine, which)
        target = migrate.target(which)
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "version_table": target.version_table,
                    "include_object": lambda _o, name, kind, *_: (
                        kind != "table" or name in target.tables
                    ),
                },
            )
            assert compare_metadata(context, target.metadata) == []

    def test_upgrade_twice_is_harmless(self, engine: Engine, which: migrate.Which) -> None:
        migrate.upgrade(engine, which)
        migrate.upgrade(engine, which)
        assert migrate.current_revision(engine, which) == migrate.head_revision(which)


class TestBothInOneDatabase:
    def test_main_and_audit_share_a_database(self, engine: Engine) -> None:
        for which in WHICH:
            migrate.upgrade(engine, which)
        for which in WHICH:
            migrate.require_current(engine, which)


class TestCommandLine:
    def test_db_upgrade_then_current(
        self, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SIMPUL_ENVIRONMENT", "dev")
        monkeypatch.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        if not database_url.startswith("sqlite"):
            monkeypatch.setenv("SIMPUL_DATABASE_URL", database_url)
            monkeypatch.setenv("SIMPUL_AUDIT_DATABASE_URL", database_url)
        runner = CliRunner()
        behind = runner.invoke(app, ["db", "current"])
        assert behind.exit_code == 1
        assert "at nothing" in behind.output
        upgraded = runner.invoke(app, ["db", "upgrade"])
        assert upgraded.exit_code == 0, upgraded.output
        current = runner.invoke(app, ["db", "current"])
        assert current.exit_code == 0, current.output
        assert "at nothing" not in current.output


class TestAuditTablesAfterMigration:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE audit_records SET status = 500",
            "DELETE FROM audit_records",
            "UPDATE audit_tree SET hash = hash",
            "DELETE FROM audit_tree",
            # Revision 0003 rebuilt audit_lookup: its triggers were made again.
            "UPDATE audit_lookup SET seq = seq",
            "DELETE FROM audit_lookup",
            "UPDATE audit_lookup_marks SET seq = seq",
            "DELETE FROM audit_lookup_marks",
        ],
    )
    def test_append_only_triggers_are_installed(self, engine: Engine, statement: str) -> None:
        from audit import append_now
        from audit.writer import index_pending
        from tests.audit._factories import make_entry

        migrate.upgrade(engine, "audit")
        append_now(engine, [make_entry(), make_entry()])
        index_pending(engine)  # rows in the lookup tables, for the row triggers to refuse
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
