"""Alembic migrations: they build exactly the tables the code declares, on both databases."""

from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, get_args

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from broker import migrate
from broker.cli import app
from broker.db import create_db_engine
from broker.errors import SchemaBehind
from broker.settings import Settings

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

    def test_two_upgrades_at_once_run_one_after_the_other(
        self, engine: Engine, database_url: str, which: migrate.Which
    ) -> None:
        """Two nodes' `simpul db upgrade` at once: each would create the same tables (and
        PostgreSQL's types for them) and one failed; the migrations' lock queues them."""
        if engine.dialect.name == "sqlite":
            pytest.skip("one node's file: the lock is PostgreSQL's advisory lock")
        engines = [engine, create_db_engine(database_url)]
        start = threading.Barrier(2)

        def run(one: Engine) -> None:
            start.wait()
            migrate.upgrade(one, which)

        try:
            with ThreadPoolExecutor(2) as pool:
                for done in [pool.submit(run, one) for one in engines]:
                    done.result(timeout=120)
        finally:
            engines[1].dispose()
        assert migrate.current_revision(engine, which) == migrate.head_revision(which)

    def test_a_migration_has_no_statement_timeout(
        self, database_url: str, which: migrate.Which
    ) -> None:
        """A migration copies whole tables: the nodes' 60-s limit on a statement would
        cancel it on a large log (migration 0003's copy took 40 s at 4.7 million records).
        Here the limit is a millisecond, which the migrations' statements outlast."""
        if not database_url.startswith("postgresql"):
            pytest.skip("PostgreSQL's statement_timeout")
        impatient = create_db_engine(database_url)

        def one_millisecond(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET statement_timeout = '1ms'")
            dbapi_connection.commit()

        event.listen(impatient, "connect", one_millisecond)
        try:
            migrate.upgrade(impatient, which)
            assert migrate.current_revision(impatient, which) == migrate.head_revision(which)
        finally:
            impatient.dispose()

    def test_a_database_a_newer_release_migrated(
        self, engine: Engine, which: migrate.Which
    ) -> None:
        """Not "run simpul db upgrade", which would fail on the unknown revision: which
        release to run."""
        migrate.upgrade(engine, which)
        version_table = migrate.target(which).version_table
        with engine.begin() as conn:
            conn.execute(text(f"UPDATE {version_table} SET version_num = '9999'"))  # noqa: S608
        for refused in (migrate.require_current, migrate.upgrade):
            with pytest.raises(SchemaBehind, match="a newer release migrated it"):
                refused(engine, which)


class TestRevisionsReadWithoutAlembic:
    """Checking a database is current reads files and a table; Alembic reads them the same."""

    @pytest.mark.parametrize("which", WHICH)
    def test_head_is_alembics(self, which: migrate.Which) -> None:
        scripts = ScriptDirectory.from_config(migrate._config(which))
        assert migrate.head_revision(which) == scripts.get_current_head() is not None

    @staticmethod
    def _alembics(engine: Engine, which: migrate.Which) -> str | None:
        with engine.connect() as conn:
            version_table = migrate.target(which).version_table
            context = MigrationContext.configure(conn, opts={"version_table": version_table})
            return context.get_current_revision()

    def test_current_is_alembics_at_every_revision(self, engine: Engine) -> None:
        scripts = ScriptDirectory.from_config(migrate._config("audit"))
        assert migrate.current_revision(engine, "audit") is None is self._alembics(engine, "audit")
        assert not migrate.is_current(engine, "audit")
        revisions = [r.revision for r in reversed(list(scripts.walk_revisions()))]
        assert len(revisions) >= 2
        for revision in revisions:
            migrate.upgrade(engine, "audit", revision)
            assert migrate.current_revision(engine, "audit") == revision
            assert self._alembics(engine, "audit") == revision
            assert migrate.is_current(engine, "audit") == (revision == revisions[-1])

    def test_several_rows_in_the_version_table_are_refused(self, engine: Engine) -> None:
        migrate.upgrade(engine, "main")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO simpul_version_main (version_num) VALUES ('9999')"))
        with pytest.raises(SchemaBehind, match="several revisions"):
            migrate.require_current(engine, "main")

    def test_db_current_on_broken_migrations(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def broken(which: migrate.Which) -> str:
            raise ValueError("the migrations have several heads: a, b")

        monkeypatch.setenv("SIMPUL_ENVIRONMENT", "dev")
        monkeypatch.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        monkeypatch.setattr(migrate, "head_revision", broken)
        current = CliRunner().invoke(app, ["db", "current"])
        assert current.exit_code == 2
        assert "main migrations: the migrations have several heads: a, b" in current.output

    def test_db_current_names_several_revisions(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SIMPUL_ENVIRONMENT", "dev")
        monkeypatch.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
        main = create_db_engine(f"sqlite:///{tmp_path / 'simpul.db'}")
        with main.begin() as conn:
            conn.execute(text("INSERT INTO simpul_version_main (version_num) VALUES ('9999')"))
        main.dispose()
        current = CliRunner().invoke(app, ["db", "current"])
        assert current.exit_code == 1
        assert "main: the main database schema is at several revisions (0001, 9999)" in (
            current.output
        )
        assert f"audit: at {migrate.head_revision('audit')}" in current.output

    def test_head_of_a_line_a_merge_and_branches(self) -> None:
        def rev(revision: str, down: str) -> str:
            return f"revision: str = {revision!r}\ndown_revision = {down}\nbranch_labels = None\n"

        line = {"a.py": rev("a", "None"), "b.py": rev("b", "'a'"), "c.py": rev("c", "'b'")}
        assert migrate._head_of(line) == "c"
        assert migrate._head_of({}) is None
        branched = {**line, "d.py": rev("d", "'b'")}
        with pytest.raises(ValueError, match="several heads: c, d"):
            migrate._head_of(branched)
        merged = {**branched, "e.py": rev("e", "('c', 'd')")}
        assert migrate._head_of(merged) == "e"
        # Only down_revision links revisions, as in Alembic; depends_on and labels do not.
        annotated = (
            "from typing import Union\nrevision: str = 'f'\n"
            "down_revision: Union[str, None] = 'e'\nbranch_labels = ('x',)\ndepends_on = 'a'\n"
        )
        assert migrate._head_of({**merged, "f.py": annotated}) == "f"
        with pytest.raises(ValueError, match="unknown revisions: z"):
            migrate._head_of({**line, "d.py": rev("d", "'z'")})
        with pytest.raises(ValueError, match="in a circle"):
            migrate._head_of({"a.py": rev("a", "'b'"), "b.py": rev("b", "'a'")})
        with pytest.raises(ValueError, match=r"migration x.py cannot be read"):
            migrate._head_of({"x.py": "revision = 'x'\ndown_revision = f(1)\n"})
        with pytest.raises(ValueError, match=r"migration y.py cannot be read"):
            migrate._head_of({"y.py": "revision = ("})
        with pytest.raises(ValueError, match="names no revision"):
            migrate._head_of({"x.py": "down_revision = None\n"})
        with pytest.raises(ValueError, match="unreadable down_revision"):
            migrate._head_of({"x.py": "revision = 'x'\ndown_revision = 3\n"})

    def test_a_worker_on_current_databases_never_imports_alembic(self, tmp_path: Path) -> None:
        """What a ``simpul serve`` worker imports and runs at start-up, in a fresh interpreter:
        neither Alembic nor aiohttp (no longer a dependency, but maybe still installed)."""
        settings = Settings(environment="dev", data_dir=tmp_path)
        for which, url in migrate.databases(settings):
            engine = create_db_engine(url)
            migrate.upgrade(engine, which)
            engine.dispose()
        script = f"""
import sys
import broker.app
from broker import migrate
from broker.db import create_db_engine
from broker.runtime import prepare_databases
from broker.settings import Settings

for environment in ("dev", "production"):
    settings = Settings(
        environment=environment, data_dir={str(tmp_path)!r}, subject_hash_secret="s" * 32
    )
    engines = [create_db_engine(url) for _, url in migrate.databases(settings)]
    prepare_databases(settings, *engines)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "aiohttp")))
"""
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "[]"


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
