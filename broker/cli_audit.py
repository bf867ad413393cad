"""``simpul audit``: verify the log online or an export offline, export, sign a checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Inspect and verify the audit log.", no_args_is_help=True)

_DATABASE_HELP = "Audit database URL, e.g. sqlite:///simpul-data/audit.db"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"simpul: {message}", err=True)
    return typer.Exit(code)


def _public_key(path: Path) -> list[Any]:
    """The Ed25519 public keys in a JWK, a JWKS or a signed-note verifier key file."""
    from broker.errors import InvalidKey
    from broker.keys import check_public_jwk, jwk_to_public_key

    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise _fail(f"cannot read the key: {exc.strerror or exc}") from exc
    try:
        if text.startswith("{"):
            data = json.loads(text)
            jwks = data["keys"] if isinstance(data, dict) and "keys" in data else [data]
            return [jwk_to_public_key(check_public_jwk(_public_half(k))) for k in jwks]
        return [_from_vkey(text)]
    except (InvalidKey, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _fail(f"{path}: not an Ed25519 public JWK, JWKS or note verifier key") from exc


def _public_half(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "d"}


def _from_vkey(text: str) -> Any:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from broker.keys import check_public_point

    _name, _hash, encoded = text.split("+", 2)
    raw = base64.b64decode(encoded, validate=True)
    if len(raw) != 33 or raw[0] != 1:
        raise ValueError("not an Ed25519 verifier key")
    return Ed25519PublicKey.from_public_bytes(check_public_point(raw[1:]))


@contextmanager
def _progress(label: str, total: int | None) -> Iterator[Callable[[int], object]]:
    """A progress bar on stderr (drawn only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _report(report: Any, where: str) -> None:
    if report.ok:
        typer.echo(
            f"audit log OK: {report.records} records, hash chain intact, "
            f"{report.checkpoints} checkpoint root(s) match{where}"
        )
        return
    typer.echo(
        f"audit log BROKEN at seq {report.first_bad_seq}: {report.problem} "
        f"({report.records} records read)",
        err=True,
    )
    raise typer.Exit(1)


def _engine(database: str) -> Any:
    from sqlalchemy.engine import make_url

    from broker.db import create_db_engine

    url = make_url(database)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # Opening a missing SQLite file would create an empty one and "verify" that.
        raise _fail(f"cannot read the audit log: no file at {url.database}")
    return create_db_engine(database)


def _verify_online(database: str, key_file: Path | None) -> None:
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from audit.checkpoints import list_checkpoints
    from audit.errors import CheckpointInvalid
    from audit.notes import open_checkpoint
    from audit.tree import tree_size_in
    from audit.verify import verify_log

    keys = _public_key(key_file) if key_file is not None else None
    try:
        engine = _engine(database)
        try:
            stored = list_checkpoints(engine)
            checkpoints = []
            for checkpoint in stored:
                if keys is None:  # unsigned trust: the roots still catch a recomputed chain
                    from audit.notes import Checkpoint

                    checkpoints.append(
                        Checkpoint(
                            origin=checkpoint.key_name,
                            size=checkpoint.tree_size,
                            root=checkpoint.root_hash,
                        )
                    )
                    continue
                checkpoints.append(_open_any(open_checkpoint, checkpoint.note, keys, checkpoint.id))
            with engine.connect() as conn:
                total = tree_size_in(conn)
            with _progress("verifying", total) as progress:
                report = verify_log(engine, checkpoints=checkpoints, progress=progress)
        finally:
            engine.dispose()
    except CheckpointInvalid as exc:
        raise _fail(f"checkpoint signature check failed: {exc.detail}", 1) from exc
    except (SQLAlchemyError, ArgumentError) as exc:
        # Not a verdict on the log: the database could not be read at all (wrong URL or file).
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _fail(f"cannot read the audit log: {reason}") from exc
    _report(report, "" if keys is None else " (signatures checked)")


def _open_any(open_fn: Any, note: str, keys: list[Any], label: object) -> Any:
    from audit.errors import CheckpointInvalid

    for key in keys:
        try:
            return open_fn(note, key)
        except CheckpointInvalid:
            continue
    raise CheckpointInvalid(f"checkpoint {label}: no signature verifies with the key given")


def _verify_offline(export: Path, checkpoint_file: Path, key_file: Path) -> None:
    from audit.errors import CheckpointInvalid
    from audit.export import verify_export

    keys = _public_key(key_file)
    try:
        note = checkpoint_file.read_text()
    except OSError as exc:
        raise _fail(f"cannot read the checkpoint: {exc.strerror or exc}") from exc
    try:
        opened = export.open(encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot read the export: {exc.strerror or exc}") from exc
    with opened as lines:
        report = None
        last_error: CheckpointInvalid | None = None
        for key in keys:  # a JWKS: the key whose signature is on the note
            lines.seek(0)
            try:
                with _progress("verifying", None) as progress:
                    report = verify_export(
                        lines, checkpoint_note=note, public_key=key, progress=progress
                    )
                break
            except CheckpointInvalid as exc:
                last_error = exc
    if report is None:
        detail = last_error.detail if last_error is not None else "no key"
        raise _fail(f"checkpoint refused: {detail}", 1)
    _report(report, " (checkpoint signature verified)")


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None, typer.Argument(help="An export (JSON Lines) to check offline")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="The signed checkpoint note (offline)")
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Broker public key: JWK, JWKS or signed-note verifier key"),
    ] = None,
    database: Annotated[str | None, typer.Option("--database", help=_DATABASE_HELP)] = None,
) -> None:
    """Recompute every leaf, the chain and the Merkle roots; exit 1 naming the first bad seq.

    Offline: ``simpul audit verify EXPORT --checkpoint FILE --key PUBKEY`` (no database, no
    network). Online: ``simpul audit verify --database URL [--key PUBKEY]`` also checks every
    stored checkpoint's root (and, given the key, its signature).
    """
    if (export is None) == (database is None):
        raise _fail("give either an EXPORT file or --database URL")
    if database is not None:
        _verify_online(database, key)
        return
    if export is None or checkpoint is None or key is None:
        raise _fail("offline verification needs EXPORT, --checkpoint and --key")
    _verify_offline(export, checkpoint, key)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Argument(help="Where to write the export (JSON Lines)")],
    database: Annotated[str, typer.Option("--database", help=_DATABASE_HELP)],
    checkpoint_out: Annotated[
        Path | None, typer.Option("--checkpoint-out", help="Also write the checkpoint note here")
    ] = None,
    first_seq: Annotated[int, typer.Option(min=1)] = 1,
    last_seq: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Export records under the latest stored checkpoint (the broker signs them)."""
    from audit.checkpoints import latest_checkpoint
    from audit.errors import AuditQueryInvalid
    from audit.export import iter_export

    engine = _engine(database)
    try:
        latest = latest_checkpoint(engine)
        if latest is None:
            raise _fail("no checkpoint has been signed yet")
        try:
            with out.open("w", encoding="utf-8") as handle:
                handle.writelines(
                    iter_export(engine, latest, first_seq=first_seq, last_seq=last_seq)
                )
        except AuditQueryInvalid as exc:
            raise _fail(exc.detail) from exc
    finally:
        engine.dispose()
    if checkpoint_out is not None:
        checkpoint_out.write_text(latest.note)
    typer.echo(f"exported under checkpoint {latest.id} (tree size {latest.tree_size})")
