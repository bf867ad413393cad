"""``simpul audit verify``: offline (export, checkpoint, key) and online against checkpoints."""

from __future__ import annotations

import base64
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import audit
from audit.checkpoints import sign_now
from audit.notes import verifier_key
from broker.cli import app
from broker.db import create_db_engine
from broker.keys import generate_key, public_jwk, to_private_key
from tests.audit._factories import make_entry

ORIGIN = "simpul.go.id/audit"
RECORDS = 25
KEY = generate_key("simpul-broker-1")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def files(tmp_path: Path, runner: CliRunner) -> dict[str, Path]:
    """An audit log with a signed checkpoint, its export, the note and the broker's public JWK."""
    db = tmp_path / "audit.db"
    engine = create_db_engine(f"sqlite:///{db}")
    try:
        audit.install(engine)
        audit.append_now(engine, [make_entry(i) for i in range(RECORDS)])
        sign_now(engine, origin=ORIGIN, kid=str(KEY.kid), key=to_private_key(KEY))
    finally:
        engine.dispose()
    paths = {
        "db": db,
        "export": tmp_path / "export.jsonl",
        "note": tmp_path / "checkpoint.txt",
        "jwk": tmp_path / "broker.jwk",
        "vkey": tmp_path / "broker.vkey",
    }
    result = runner.invoke(
        app,
        [
            "audit",
            "export",
            str(paths["export"]),
            "--database",
            f"sqlite:///{db}",
            "--checkpoint-out",
            str(paths["note"]),
        ],
    )
    assert result.exit_code == 0, result.output
    paths["jwk"].write_text(json.dumps(public_jwk(KEY)))
    paths["vkey"].write_text(verifier_key(ORIGIN, to_private_key(KEY).public_key()))
    return paths


def _offline(runner: CliRunner, files: dict[str, Path], key: str = "jwk") -> Result:
    return runner.invoke(
        app,
        [
            "audit",
            "verify",
            str(files["export"]),
            "--checkpoint",
            str(files["note"]),
            "--key",
            str(files[key]),
        ],
    )


def _rewrite_line(path: Path, index: int, old: str, new: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    assert old in lines[index]
    lines[index] = lines[index].replace(old, new, 1)
    path.write_text("".join(lines))


class TestOffline:
    @pytest.mark.parametrize("key", ["jwk", "vkey"])
    def test_intact_export(self, runner: CliRunner, files: dict[str, Path], key: str) -> None:
        result = _offline(runner, files, key)
        assert result.exit_code == 0, result.output
        assert f"audit log OK: {RECORDS} records" in result.stdout

    @pytest.mark.parametrize(
        ("edit", "bad_seq"),
        [
            (lambda p: _rewrite_line(p, 4, '"status":200', '"status":201'), 4),
            (
                lambda p: p.write_text(
                    "".join(x for i, x in enumerate(p.read_text().splitlines(True)) if i != 9)
                ),
                9,
            ),
            (
                lambda p: p.write_text(
                    "".join(
                        (lambda ls: [*ls[:6], ls[7], ls[6], *ls[8:]])(
                            p.read_text().splitlines(True)
                        )
                    )
                ),
                6,
            ),
        ],
        ids=["changed", "removed", "swapped"],
    )
    def test_tampered_export_names_the_record(
        self, runner: CliRunner, files: dict[str, Path], edit: object, bad_seq: int
    ) -> None:
        assert callable(edit)
        edit(files["export"])
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert f"BROKEN at seq {bad_seq}" in result.stderr

    def test_a_checkpoint_signed_by_another_key_is_refused(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        files["jwk"].write_text(json.dumps(public_jwk(generate_key("other"))))
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert "checkpoint refused" in result.stderr

    @pytest.mark.parametrize("key", ["jwk", "vkey"])
    def test_a_small_order_key_is_refused(
        self, runner: CliRunner, files: dict[str, Path], key: str
    ) -> None:
        # The identity point: OpenSSL would accept its forged signature over any checkpoint.
        identity = (1).to_bytes(32, "little")
        x = base64.urlsafe_b64encode(identity)[:43].decode()
        files["jwk"].write_text(json.dumps({"kty": "OKP", "crv": "Ed25519", "x": x}))
        encoded = base64.b64encode(b"\x01" + identity).decode()
        files["vkey"].write_text(f"{ORIGIN}+00000000+{encoded}")
        result = _offline(runner, files, key)
        assert result.exit_code == 2
        assert "not an Ed25519 public JWK, JWKS or note verifier key" in result.stderr

    def test_arguments_are_checked(self, runner: CliRunner, files: dict[str, Path]) -> None:
        result = runner.invoke(app, ["audit", "verify", str(files["export"])])
        assert result.exit_code == 2
        assert "needs EXPORT, --checkpoint and --key" in result.stderr


class TestOnline:
    def test_signatures_and_roots_checked(self, runner: CliRunner, files: dict[str, Path]) -> None:
        url = f"sqlite:///{files['db']}"
        result = runner.invoke(
            app, ["audit", "verify", "--database", url, "--key", str(files["jwk"])]
        )
        assert result.exit_code == 0, result.output
        assert "1 checkpoint root(s) match (signatures checked)" in result.stdout

    def test_cut_tail_is_caught_by_the_checkpoint(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        with closing(sqlite3.connect(files["db"], isolation_level=None)) as conn:
            conn.execute("DROP TRIGGER audit_records_no_delete")
            conn.execute(f"DELETE FROM audit_records WHERE seq > {RECORDS - 3}")  # noqa: S608
        url = f"sqlite:///{files['db']}"
        result = runner.invoke(
            app, ["audit", "verify", "--database", url, "--key", str(files["jwk"])]
        )
        assert result.exit_code == 1
        assert f"BROKEN at seq {RECORDS - 2}: record missing" in result.stderr
