"""The ``simpul`` command: keys, registry check, audit verify and serve's refusal to start."""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
import tomllib
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import audit
from broker.cli import app, main
from broker.db import create_db_engine
from broker.keys import generate_key, load_private_jwk, public_jwk, save_private_jwk
from broker.registry import write_registry
from broker.sandbox_env import SandboxWorld, free_port
from tests.audit._factories import make_entry

pytestmark = pytest.mark.usefixtures("clean_env")

RECORDS = 6


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


class TestKeysGenerate:
    def test_writes_a_private_key_and_prints_the_public_one(
        self, runner: CliRunner, tmp_path: Path
    ) -> None:
        path = tmp_path / "keys" / "perizinan.jwk"
        result = runner.invoke(app, ["keys", "generate", str(path), "--kid", "perizinan-1"])
        assert result.exit_code == 0, result.output
        printed = json.loads(result.stdout)
        assert "d" not in printed
        assert printed["kid"] == "perizinan-1"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        stored = json.loads(path.read_text())
        assert "d" in stored
        assert printed == public_jwk(load_private_jwk(path))

    def test_kid_defaults_to_the_thumbprint(self, runner: CliRunner, tmp_path: Path) -> None:
        path = tmp_path / "k.jwk"
        result = runner.invoke(app, ["keys", "generate", str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["kid"] == load_private_jwk(path).thumbprint()

    def test_refuses_to_overwrite(self, runner: CliRunner, tmp_path: Path) -> None:
        path = tmp_path / "k.jwk"
        assert runner.invoke(app, ["keys", "generate", str(path)]).exit_code == 0
        before = path.read_bytes()
        result = runner.invoke(app, ["keys", "generate", str(path)])
        assert result.exit_code == 2
        assert "refusing to overwrite" in result.stderr
        assert str(path) in result.stderr
        assert result.stdout == ""
        assert path.read_bytes() == before


class TestKeysPublic:
    def test_prints_the_public_jwk(self, runner: CliRunner, tmp_path: Path) -> None:
        key = generate_key("k1")
        path = tmp_path / "k.jwk"
        save_private_jwk(key, path)
        result = runner.invoke(app, ["keys", "public", str(path)])
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == public_jwk(key)
        assert '"d"' not in result.stdout

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            (None, "cannot read key file"),
            ("not json", "not a JSON Web Key"),
            (json.dumps(public_jwk(generate_key("pub"))), "no 'd' member"),
        ],
        ids=["missing", "not json", "public only"],
    )
    def test_bad_key_file_is_refused_with_a_message(
        self, runner: CliRunner, tmp_path: Path, content: str | None, message: str
    ) -> None:
        path = tmp_path / "k.jwk"
        if content is not None:
            path.write_text(content)
        result = runner.invoke(app, ["keys", "public", str(path)])
        assert result.exit_code == 1
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert message in result.stderr
        assert str(path) in result.stderr
        assert "Traceback" not in result.output


def _registry(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    SandboxWorld.create(tmp_path)
    path = tmp_path / "registry.toml"
    return path, tomllib.loads(path.read_text())


def _unknown_schema(data: dict[str, Any]) -> str:
    data["services"][0]["schema"] = "paspor"
    return "schema 'paspor' is not one of"


def _unknown_client(data: dict[str, Any]) -> str:
    data["services"][0]["clients"].append("ID/GOV/NOBODY/nothing")
    return "'ID/GOV/NOBODY/nothing' is not a declared subsystem"


LEAKED = generate_key("leak").as_dict(private=True)


def _private_key(data: dict[str, Any]) -> str:
    data["members"][2]["subsystems"][0]["keys"] = [LEAKED]
    return "contains a private key"


class TestRegistryCheck:
    def test_generated_registry_is_ok(self, runner: CliRunner, tmp_path: Path) -> None:
        path, data = _registry(tmp_path)
        result = runner.invoke(app, ["registry", "check", str(path)])
        assert result.exit_code == 0, result.output
        assert str(path) in result.stdout
        assert f"{len(data['services'])} services" in result.stdout
        assert ": OK (" in result.stdout

    @pytest.mark.parametrize(
        "breakage",
        [_unknown_schema, _unknown_client, _private_key],
        ids=["unknown schema", "unknown client", "private key"],
    )
    def test_broken_registry_names_the_file(
        self, runner: CliRunner, tmp_path: Path, breakage: Callable[[dict[str, Any]], str]
    ) -> None:
        path, data = _registry(tmp_path)
        expected = breakage(data)
        write_registry(path, data)
        result = runner.invoke(app, ["registry", "check", str(path)])
        assert result.exit_code == 1
        assert str(path) in result.stderr
        assert expected in result.stderr
        assert str(LEAKED["d"]) not in result.output
        assert ": OK (" not in result.output

    @pytest.mark.parametrize(
        "content", ["this is [not toml", "\xff\xfe"], ids=["invalid toml", "not utf-8"]
    )
    def test_unreadable_registry(self, runner: CliRunner, tmp_path: Path, content: str) -> None:
        path = tmp_path / "registry.toml"
        path.write_bytes(content.encode("latin-1"))
        result = runner.invoke(app, ["registry", "check", str(path)])
        assert result.exit_code == 1
        assert str(path) in result.stderr

    def test_missing_registry(self, runner: CliRunner, tmp_path: Path) -> None:
        path = tmp_path / "absent.toml"
        result = runner.invoke(app, ["registry", "check", str(path)])
        assert result.exit_code == 1
        assert "cannot read" in result.stderr
        assert str(path) in result.stderr


@pytest.fixture
def audit_db(tmp_path: Path) -> Path:
    """An audit log of ``RECORDS`` records, written the way the broker writes it."""
    path = tmp_path / "audit.db"
    engine = create_db_engine(f"sqlite:///{path}")
    try:
        audit.install(engine)
        audit.append_now(engine, [make_entry(i) for i in range(RECORDS)])
    finally:
        engine.dispose()
    return path


def tamper(path: Path, statement: str) -> None:
    """Drop the append-only triggers, as the file's owner could, and run ``statement``."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        triggers = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")
        ]
        assert triggers, "the audit table should be guarded by triggers"
        for name in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(statement)


class TestAuditVerify:
    def test_intact_log(self, runner: CliRunner, audit_db: Path) -> None:
        result = runner.invoke(app, ["audit", "verify", "--database", f"sqlite:///{audit_db}"])
        assert result.exit_code == 0, result.output
        assert f"audit log OK: {RECORDS} records" in result.stdout

    def test_empty_log_is_ok(self, runner: CliRunner, tmp_path: Path) -> None:
        engine = create_db_engine(f"sqlite:///{tmp_path / 'empty.db'}")
        audit.install(engine)
        engine.dispose()
        result = runner.invoke(
            app, ["audit", "verify", "--database", f"sqlite:///{tmp_path / 'empty.db'}"]
        )
        assert result.exit_code == 0, result.output
        assert "0 records" in result.stdout

    @pytest.mark.parametrize(
        ("statement", "bad_seq"),
        [
            ("UPDATE audit_records SET officer = 'mallory' WHERE seq = 3", 3),
            ("UPDATE audit_records SET status = 500 WHERE seq = 2", 2),
            ("UPDATE audit_records SET decision = 'denied' WHERE seq = 5", 5),
            ("UPDATE audit_records SET released_fields = '[\"nik\"]' WHERE seq = 1", 1),
            ("UPDATE audit_records SET subject_ref = NULL WHERE seq = 4", 4),
            ("DELETE FROM audit_records WHERE seq = 3", 3),
        ],
        ids=["officer", "status", "decision", "released fields", "subject", "deleted"],
    )
    def test_tampering_names_the_first_bad_seq(
        self, runner: CliRunner, audit_db: Path, statement: str, bad_seq: int
    ) -> None:
        tamper(audit_db, statement)
        result = runner.invoke(app, ["audit", "verify", "--database", f"sqlite:///{audit_db}"])
        assert result.exit_code == 1
        assert f"BROKEN at seq {bad_seq}:" in result.stderr
        assert f"({bad_seq - 1} records read)" in result.stderr
        assert "audit log OK" not in result.output

    def test_the_first_of_two_changes_is_named(self, runner: CliRunner, audit_db: Path) -> None:
        tamper(audit_db, "UPDATE audit_records SET officer = 'x' WHERE seq IN (2, 5)")
        result = runner.invoke(app, ["audit", "verify", "--database", f"sqlite:///{audit_db}"])
        assert result.exit_code == 1
        assert "BROKEN at seq 2:" in result.stderr

    @pytest.mark.parametrize("url", ["sqlite:///{tmp}/no-audit-here.db", "not a url"])
    def test_unreadable_database(self, runner: CliRunner, tmp_path: Path, url: str) -> None:
        result = runner.invoke(app, ["audit", "verify", "--database", url.format(tmp=tmp_path)])
        assert result.exit_code == 2
        assert "cannot read the audit log" in result.stderr
        assert "Traceback" not in result.output


class TestServe:
    def test_refuses_production_without_a_secret(
        self, runner: CliRunner, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "production")
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        result = runner.invoke(app, ["serve"])
        assert result.exit_code == 2
        assert "simpul: configuration refused:" in result.stderr
        assert "SIMPUL_SUBJECT_HASH_SECRET" in result.stderr
        assert "Value error" not in result.stderr
        assert "Traceback" not in result.output
        assert list(tmp_path.iterdir()) == []

    def test_refuses_a_short_replay_window(
        self, runner: CliRunner, clean_env: pytest.MonkeyPatch
    ) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
        clean_env.setenv("SIMPUL_REPLAY_WINDOW_SECONDS", "10")
        result = runner.invoke(app, ["serve"])
        assert result.exit_code == 2
        assert "SIMPUL_REPLAY_WINDOW_SECONDS" in result.stderr

    def test_valid_configuration_reaches_the_server(
        self, runner: CliRunner, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        # Stand-ins for the app factory and uvicorn: nothing is built or bound.
        import uvicorn

        import broker.app
        import broker.runtime
        from broker._http1 import ExchangeProtocol

        built: list[Any] = []
        served: list[dict[str, Any]] = []
        sentinel = object()

        def fake_create_app(settings: Any, *, tune_gc: bool = False) -> object:
            assert tune_gc  # a served process gets the collector set up for serving
            built.append(settings)
            return sentinel

        def fake_run(asgi: object, **options: Any) -> None:
            served.append({"app": asgi, **options})

        clean_env.setattr(broker.app, "create_app", fake_create_app)
        clean_env.setattr(uvicorn, "run", fake_run)
        clean_env.setattr(broker.runtime, "preflight", lambda settings: None)
        clean_env.setenv("SIMPUL_SUBJECT_HASH_SECRET", "ab" * 32)
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        clean_env.setenv("SIMPUL_HOST", "192.0.2.10")
        result = runner.invoke(app, ["serve", "--port", "9123"])
        assert result.exit_code == 0, result.output
        assert built[0].environment == "production"
        assert built[0].data_dir == tmp_path
        assert served == [
            {
                "app": sentinel,
                "host": "192.0.2.10",
                "port": 9123,
                "log_level": "info",
                "access_log": False,
                "ws": "none",
                "http": ExchangeProtocol,
            }
        ]


class TestServePreflight:
    """``simpul serve`` stops before any server starts, saying what is wrong."""

    def test_missing_registry(
        self, runner: CliRunner, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        result = runner.invoke(app, ["serve"])
        assert result.exit_code == 2
        assert "cannot start" in result.stderr
        assert "registry.toml" in result.stderr
        assert "Traceback" not in result.output

    def test_schema_behind_in_production(
        self, runner: CliRunner, clean_env: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        from broker.sandbox_env import SandboxWorld

        SandboxWorld.create(tmp_path)  # registry, keys; no database yet
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        clean_env.setenv("SIMPUL_SUBJECT_HASH_SECRET", "ab" * 32)
        result = runner.invoke(app, ["serve"])
        assert result.exit_code == 2
        assert "simpul db upgrade" in result.stderr


class TestDatabaseUnreachable:
    @pytest.mark.parametrize("command", [["db", "current"], ["db", "upgrade"], ["serve"]])
    def test_one_line_and_status_2(
        self,
        command: list[str],
        clean_env: pytest.MonkeyPatch,
        tmp_path: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Not the driver's traceback: what is wrong, in a line an operator can act on."""
        SandboxWorld.create(tmp_path)  # keys and a registry, so serve gets to the database
        clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        clean_env.setenv(
            "SIMPUL_DATABASE_URL", f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none"
        )
        clean_env.setattr(sys, "argv", ["simpul", *command])
        with pytest.raises(SystemExit) as stopped:
            main()
        assert stopped.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("simpul: cannot reach the database: ")
        assert len(err.strip().splitlines()) == 1
        assert "Traceback" not in err


def test_notifications_list_creates_nothing_in_a_database_not_migrated(
    runner: CliRunner, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A table made outside the migrations would fail the next `simpul db upgrade`."""
    db = tmp_path / "simpul.db"
    clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
    clean_env.setenv("SIMPUL_DATABASE_URL", f"sqlite:///{db}")
    result = runner.invoke(app, ["notifications", "list"])
    assert result.exit_code == 2
    assert "simpul db upgrade" in result.output
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
