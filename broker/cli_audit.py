"""``simpul audit``: verify the log online or an export offline, export, sign a checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer

if TYPE_CHECKING:
    from audit.notes import Checkpoint

__all__ = ["audit_app"]

audit_app = typer.Typer(help="Inspect and verify the audit log.", no_args_is_help=True)

_DATABASE_HELP = "Audit database URL, e.g. sqlite:///simpul-data/audit.db"


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"simpul: {message}", err=True)
    return typer.Exit(code)


class _Verifier(NamedTuple):
    """A public key and the signed-note key name it signs under ("": the checkpoint's origin)."""

    key: Any
    name: str


def _verifiers(path: Path) -> list[_Verifier]:
    """The Ed25519 public keys in a JWK, a JWKS or a signed-note verifier key file.

    A JWK names no signed-note key, so its key signs under the log's origin (the C2SP
    convention the broker follows); a verifier key names its key, and only that name counts.
    """
    from broker.errors import InvalidKey
    from broker.keys import jwk_to_public_key

    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise _fail(f"cannot read the key: {exc.strerror or exc}") from exc
    try:
        if text.startswith("{"):
            data = json.loads(text)
            jwks = data["keys"] if isinstance(data, dict) and "keys" in data else [data]
            # jwk_to_public_key checks each JWK (check_public_jwk) as it converts it.
            return [_Verifier(jwk_to_public_key(_public_half(k)), "") for k in jwks]
        return [_from_vkey(text)]
    except (InvalidKey, ValueError, KeyError, TypeError, AttributeError) as exc:
        why = f" ({exc})" if type(exc) is ValueError else ""  # e.g. a key ID that does not match
        raise _fail(f"{path}: not an Ed25519 public JWK, JWKS or note verifier key{why}") from exc


def _public_half(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "d"}


def _from_vkey(text: str) -> _Verifier:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from audit.notes import parse_verifier_key
    from broker.keys import check_public_point

    name, raw = parse_verifier_key(text)
    return _Verifier(Ed25519PublicKey.from_public_bytes(check_public_point(raw)), name)


def _open_note(note: str, verifiers: list[_Verifier], origin: str) -> tuple[Checkpoint, _Verifier]:
    """The checkpoint in ``note`` and the verifier whose signature on it verifies.

    Raises the first telling :class:`CheckpointInvalid`: with a JWKS, "no signature by this
    key" from the keys that did not sign says less than what the key that did sign found
    (a signature that does not verify), or than a malformed note or another log's checkpoint.
    """
    from audit.errors import CheckpointInvalid, CheckpointUnsigned
    from audit.notes import open_checkpoint

    first: CheckpointInvalid | None = None
    for verifier in verifiers:
        try:
            opened = open_checkpoint(note, verifier.key, name=verifier.name, origin=origin)
        except CheckpointUnsigned as exc:
            first = first or exc
        except CheckpointInvalid as exc:
            if first is None or isinstance(first, CheckpointUnsigned):
                first = exc
        else:
            return opened, verifier
    raise first if first is not None else CheckpointInvalid("no key given")


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


def _verify_online(
    database: str, key_file: Path | None, checkpoint_file: Path | None, origin: str
) -> None:
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    from audit.checkpoints import list_checkpoints
    from audit.errors import CheckpointInvalid
    from audit.notes import Checkpoint
    from audit.tree import tree_size_in
    from audit.verify import verify_log

    verifiers = _verifiers(key_file) if key_file is not None else None
    checkpoints: list[Checkpoint] = []
    if checkpoint_file is not None:
        if verifiers is None:  # an unsigned note is what anyone with the database could write
            raise _fail("--checkpoint needs --key: a checkpoint counts once its signature does")
        try:
            # The auditor's own copy: it holds even if the log and its checkpoints were cut.
            trusted, _ = _open_note(_read_note(checkpoint_file), verifiers, origin)
        except CheckpointInvalid as exc:
            raise _fail(f"checkpoint refused: {exc.detail}", 1) from exc
        checkpoints.append(trusted)
    try:
        engine = _engine(database)
        try:
            for stored in list_checkpoints(engine):
                if verifiers is None:  # unsigned trust: the roots still catch a recomputed chain
                    checkpoints.append(
                        Checkpoint(
                            origin=stored.key_name, size=stored.tree_size, root=stored.root_hash
                        )
                    )
                    continue
                try:
                    checkpoints.append(_open_note(stored.note, verifiers, origin)[0])
                except CheckpointInvalid as exc:
                    raise CheckpointInvalid(f"checkpoint {stored.id}: {exc.detail}") from exc
            with engine.connect() as conn:
                total = tree_size_in(conn)
            with _progress("verifying", total) as progress:
                report = verify_log(engine, checkpoints=checkpoints, progress=progress)
        finally:
            engine.dispose()
    except CheckpointInvalid as exc:
        raise _fail(f"checkpoint refused: {exc.detail}", 1) from exc
    except (SQLAlchemyError, ArgumentError) as exc:
        # Not a verdict on the log: the database could not be read at all (wrong URL or file).
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise _fail(f"cannot read the audit log: {reason}") from exc
    _report(report, "" if verifiers is None else " (signatures checked)")


def _read_note(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise _fail(f"cannot read the checkpoint: {exc.strerror or exc}") from exc


def _verify_offline(export: Path, checkpoint_file: Path, key_file: Path, origin: str) -> None:
    from audit.errors import CheckpointInvalid
    from audit.export import verify_export

    verifiers = _verifiers(key_file)
    note = _read_note(checkpoint_file)
    try:
        # Find the key first (a JWKS holds several): whatever the export's check then finds
        # wrong is reported as found, not as some other key's "no signature".
        _, verifier = _open_note(note, verifiers, origin)
        opened = export.open(encoding="utf-8")
    except CheckpointInvalid as exc:
        raise _fail(f"checkpoint refused: {exc.detail}", 1) from exc
    except OSError as exc:
        raise _fail(f"cannot read the export: {exc.strerror or exc}") from exc
    try:
        with opened as lines, _progress("verifying", None) as progress:
            report = verify_export(
                lines,
                checkpoint_note=note,
                public_key=verifier.key,
                key_name=verifier.name,
                origin=origin,
                progress=progress,
            )
    except CheckpointInvalid as exc:
        raise _fail(f"checkpoint refused: {exc.detail}", 1) from exc
    _report(report, " (checkpoint signature verified)")


@audit_app.command("verify")
def audit_verify(
    export: Annotated[
        Path | None, typer.Argument(help="An export (JSON Lines) to check offline")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A signed checkpoint note: the export's (offline) or one kept earlier (online)",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Broker public key: JWK, JWKS or signed-note verifier key"),
    ] = None,
    database: Annotated[str | None, typer.Option("--database", help=_DATABASE_HELP)] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            "--origin",
            help="The log checkpoints must be of (default: simpul.go.id/audit, the broker's)",
        ),
    ] = None,
) -> None:
    """Recompute every leaf, the chain and the Merkle roots; exit 1 naming the first bad seq.

    Offline: ``simpul audit verify EXPORT --checkpoint FILE --key PUBKEY`` (no database, no
    network). Online: ``simpul audit verify --database URL [--key PUBKEY] [--checkpoint FILE]``
    also checks the stored Merkle tree and every stored checkpoint's root (and, given the key,
    its signature); a checkpoint FILE kept earlier counts too, so a log cut below its size is
    caught even if the stored checkpoints went with the records. Checkpoints must be of the
    log ``--origin`` names.
    """
    from audit.checkpoints import DEFAULT_ORIGIN

    if (export is None) == (database is None):
        raise _fail("give either an EXPORT file or --database URL")
    origin = origin or DEFAULT_ORIGIN
    if database is not None:
        _verify_online(database, key, checkpoint, origin)
        return
    if export is None or checkpoint is None or key is None:
        raise _fail("offline verification needs EXPORT, --checkpoint and --key")
    _verify_offline(export, checkpoint, key, origin)


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
