"""``simpul audit verify``: offline (export, checkpoint, key) and online against checkpoints."""

from __future__ import annotations

import base64
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import audit
from audit.checkpoints import sign_now
from audit.export import iter_export
from audit.notes import verifier_key
from audit.records import seal
from audit.store import audit_records, record_values
from broker.cli import app
from broker.db import create_db_engine
from broker.keys import generate_key, jwks, public_jwk, to_private_key
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


def _online(runner: CliRunner, files: dict[str, Path], *args: str) -> Result:
    return runner.invoke(app, ["audit", "verify", "--database", f"sqlite:///{files['db']}", *args])


def _sql(files: dict[str, Path], *statements: str) -> None:
    """Plain SQL on the log's file, as whoever can write it could (triggers first)."""
    with closing(sqlite3.connect(files["db"], isolation_level=None)) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f"DROP TRIGGER {name}")
        for statement in statements:
            conn.execute(statement)


def _signed_elsewhere(files: dict[str, Path], origin: str) -> None:
    """Replace the export and its note with ones of a log named ``origin``, signed by KEY."""
    db = files["db"].with_name("other.db")
    engine = create_db_engine(f"sqlite:///{db}")
    try:
        audit.install(engine)
        audit.append_now(engine, [make_entry(i) for i in range(5)])
        checkpoint = sign_now(engine, origin=origin, kid=str(KEY.kid), key=to_private_key(KEY))
        files["export"].write_text("".join(iter_export(engine, checkpoint)))
        files["note"].write_text(checkpoint.note)
    finally:
        engine.dispose()


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

    @pytest.mark.parametrize(
        "line",
        [
            # A field no hash covers, which a reader would take for part of the record.
            lambda line: line[:-2] + ',"subject_nik":"3171234567890001"}\n',
            # A repeated key: the last value is hashed, other readers show the first.
            lambda line: '{"decision":"refused","client":"ID/GOV/EVIL/x",' + line[1:],
            lambda line: '{"seq":7,' + line[1:],
        ],
        ids=["extra-key", "repeated-keys", "repeated-same-value"],
    )
    def test_a_line_with_more_than_the_record_is_a_changed_record(
        self, runner: CliRunner, files: dict[str, Path], line: object
    ) -> None:
        assert callable(line)
        lines = files["export"].read_text().splitlines(keepends=True)
        lines[7] = line(lines[7])
        files["export"].write_text("".join(lines))
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert "BROKEN at seq 7: record changed" in result.stderr

    def test_a_reformatted_export_still_verifies(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        # Whitespace and key order say nothing different: only the content is hashed.
        header, *records = files["export"].read_text().splitlines()
        spaced = [
            json.dumps(dict(sorted(json.loads(line).items())), indent=None) for line in records
        ]
        files["export"].write_text("\n".join([header, *spaced]) + "\n")
        result = _offline(runner, files)
        assert result.exit_code == 0, result.output

    def test_text_that_is_not_utf8_is_exported_and_found_changed(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        _sql(files, "UPDATE audit_records SET officer = CAST(X'62756469ff' AS TEXT) WHERE seq = 9")
        exported = runner.invoke(
            app,
            ["audit", "export", str(files["export"]), "--database", f"sqlite:///{files['db']}"],
        )
        assert exported.exit_code == 0, exported.output
        assert '"officer":"budi\\udcff"' in files["export"].read_text()  # the byte, kept
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert "BROKEN at seq 9: record changed" in result.stderr


class TestKeys:
    def test_a_verifier_key_whose_key_id_does_not_match_is_refused(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        name, _, key = files["vkey"].read_text().split("+", 2)
        files["vkey"].write_text(f"{name}+00000000+{key}")
        result = _offline(runner, files, "vkey")
        assert result.exit_code == 2
        assert "key ID does not match its name and key" in result.stderr

    def test_a_verifier_key_counts_only_under_its_own_name(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        files["vkey"].write_text(verifier_key("witness.example", to_private_key(KEY).public_key()))
        result = _offline(runner, files, "vkey")
        assert result.exit_code == 1
        assert "no signature by key witness.example+" in result.stderr

    @pytest.mark.parametrize("key", ["jwk", "vkey"])
    def test_a_checkpoint_of_another_log_is_refused(
        self, runner: CliRunner, files: dict[str, Path], key: str
    ) -> None:
        # The same key signs staging: its checkpoints must not pass for production's.
        _signed_elsewhere(files, "staging.simpul.go.id/audit")
        files["vkey"].write_text(
            verifier_key("staging.simpul.go.id/audit", to_private_key(KEY).public_key())
        )
        result = _offline(runner, files, key)
        assert result.exit_code == 1
        assert "of the log staging.simpul.go.id/audit, not simpul.go.id/audit" in result.stderr
        pinned = runner.invoke(
            app,
            [
                *("audit", "verify", str(files["export"]), "--checkpoint", str(files["note"])),
                *("--key", str(files[key]), "--origin", "staging.simpul.go.id/audit"),
            ],
        )
        assert pinned.exit_code == 0, pinned.output

    def test_online_checkpoints_are_of_the_origin_asked_for(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        result = _online(runner, files, "--key", str(files["jwk"]), "--origin", "other.example/log")
        assert result.exit_code == 1
        assert "checkpoint 1: the checkpoint is of the log simpul.go.id/audit" in result.stderr

    @pytest.mark.parametrize("order", [1, -1], ids=["signer-first", "signer-last"])
    def test_a_jwks_reports_what_the_signing_key_found(
        self, runner: CliRunner, files: dict[str, Path], order: int
    ) -> None:
        files["jwk"].write_text(json.dumps(jwks([KEY, generate_key("next")][::order])))
        _rewrite_line(files["export"], 0, f'"tree_size":{RECORDS}', f'"tree_size":{RECORDS + 1}')
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert f"the export covers {ORIGIN} at size {RECORDS + 1}" in result.stderr

    def test_a_jwks_without_the_signing_key_says_so(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        files["jwk"].write_text(json.dumps(jwks([generate_key("a"), generate_key("b")])))
        result = _offline(runner, files)
        assert result.exit_code == 1
        assert f"checkpoint refused: no signature by key {ORIGIN}+" in result.stderr


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

    def test_a_kept_checkpoint_catches_a_cut_that_took_everything_stored_along(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        # Records, tree nodes and checkpoints past 20 gone: the database agrees with itself.
        _sql(
            files,
            "DELETE FROM audit_records WHERE seq > 20",
            "DELETE FROM audit_tree WHERE id > 38",  # the last node of a 20-leaf tree is 2 * 19
            "DELETE FROM audit_checkpoints",
        )
        result = _online(runner, files, "--key", str(files["jwk"]))
        assert result.exit_code == 0, result.output
        result = _online(
            runner, files, "--key", str(files["jwk"]), "--checkpoint", str(files["note"])
        )
        assert result.exit_code == 1
        assert "BROKEN at seq 21: record missing (20 records read)" in result.stderr

    def test_a_kept_checkpoint_is_checked_against_the_log(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        result = _online(
            runner, files, "--key", str(files["jwk"]), "--checkpoint", str(files["note"])
        )
        assert result.exit_code == 0, result.output
        assert "2 checkpoint root(s) match (signatures checked)" in result.stdout

    @pytest.mark.parametrize(
        ("key", "message", "code"),
        [
            (None, "--checkpoint needs --key", 2),
            ("other", "checkpoint refused: no signature by key", 1),
        ],
    )
    def test_a_kept_checkpoint_must_be_signed(
        self, runner: CliRunner, files: dict[str, Path], key: str | None, message: str, code: int
    ) -> None:
        files["jwk"].write_text(json.dumps(public_jwk(generate_key("other"))))
        args = ["--checkpoint", str(files["note"])]
        result = _online(runner, files, *args, *(["--key", str(files["jwk"])] if key else []))
        assert result.exit_code == code
        assert message in result.stderr

    def test_a_record_written_around_the_writer_is_not_in_the_tree(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        # A plain INSERT of the next seq, correctly chained: the triggers let it through.
        engine = create_db_engine(f"sqlite:///{files['db']}")
        try:
            (last,) = audit.read_records(engine, start=RECORDS, limit=1)
            forged = seal(
                make_entry(99, client="ID/GOV/FORGER/x"),
                seq=RECORDS + 1,
                time="2026-12-01T00:00:00.000000Z",
                previous_chain_hash=last.chain_hash,
            )
            with engine.begin() as conn:
                conn.execute(audit_records.insert(), record_values(forged))
        finally:
            engine.dispose()
        result = _online(runner, files, "--key", str(files["jwk"]))
        assert result.exit_code == 1
        assert f"BROKEN at seq {RECORDS + 1}: record not in the stored Merkle tree" in result.stderr

    def test_text_that_is_not_utf8_is_a_changed_record(
        self, runner: CliRunner, files: dict[str, Path]
    ) -> None:
        _sql(files, "UPDATE audit_records SET officer = CAST(X'62756469ff' AS TEXT) WHERE seq = 9")
        result = _online(runner, files, "--key", str(files["jwk"]))
        assert result.exit_code == 1
        assert "BROKEN at seq 9: record changed (8 records read)" in result.stderr
