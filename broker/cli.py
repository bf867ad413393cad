"""The ``simpul`` command: serve, sandbox, demo, audit, keys, registry."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from broker.cli_audit import audit_app

#: Whether ``serve`` may replace its process by the workers' supervisor (POSIX ``exec``).
_CAN_EXEC = os.name == "posix"

__all__ = ["app", "main"]

app = typer.Typer(
    name="simpul",
    help="Simpul: a consent-gated data-exchange broker for government agencies.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Ed25519 keys as JWK.", no_args_is_help=True)
registry_app = typer.Typer(
    help="The registry of members, services and access rights.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.add_typer(registry_app, name="registry")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default SIMPUL_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default SIMPUL_PORT)")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, max=64, help="Worker processes (default SIMPUL_WORKERS)")
    ] = None,
    pin_workers: Annotated[
        bool | None,
        typer.Option(
            "--pin-workers/--no-pin-workers",
            help="Run worker k on the k-th CPU, Linux (default SIMPUL_PIN_WORKERS)",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the broker (configured by SIMPUL_* environment variables)."""
    import uvicorn
    from pydantic import ValidationError

    from broker.app import SERVER_OPTIONS, create_app
    from broker.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"simpul: configuration refused: {messages}", err=True)
        raise typer.Exit(2) from exc
    count = workers or settings.workers
    pin = settings.pin_workers if pin_workers is None else pin_workers
    from broker import _supervise

    if pin and count > 1 and not (_CAN_EXEC and _supervise.can_pin()):
        typer.echo("simpul: configuration refused: pinning workers to CPUs needs Linux", err=True)
        raise typer.Exit(2)
    from broker.errors import Error as BrokerError
    from broker.runtime import preflight

    try:
        preflight(settings)
    except (BrokerError, OSError, ValueError) as exc:
        # A bad registry, a missing key, a database schema behind: say which, and stop.
        typer.echo(f"simpul: cannot start: {exc}", err=True)
        raise typer.Exit(2) from exc
    if count > 1:
        bind = (host or settings.host, port or settings.port, settings.log_level)
        if _CAN_EXEC:
            # Become the workers' supervisor, same pid: what the checks above imported and
            # built is not kept for the server's life (see broker/_supervise.py).
            sys.stdout.flush()
            sys.stderr.flush()
            os.execv(sys.executable, _supervise.argv(count, *bind, pin=pin))  # noqa: S606 - ours
        _supervise.run_workers(count, *bind)
        return
    if pin:
        typer.echo("simpul: --pin-workers pins two workers or more; one runs unpinned", err=True)
    _note_sighup()
    uvicorn.run(
        create_app(settings, tune_gc=True),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        **SERVER_OPTIONS,
    )


def _note_sighup() -> None:
    """One worker has no supervisor to replace it: SIGHUP, which would have ended the process
    and every exchange it served, is logged instead, with what to do."""
    import signal
    import time

    if not hasattr(signal, "SIGHUP"):  # pragma: no cover - not POSIX
        return
    line = {
        "event": "sighup_ignored",
        "reason": "one worker serves: restart the broker to reload, or run --workers 2 or more",
        "level": "warning",
    }

    def noted(_signum: int, _frame: object) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        # os.write, not a logger: a handler may run while the main thread holds its lock.
        os.write(2, (json.dumps({**line, "timestamp": stamp}) + "\n").encode())

    signal.signal(signal.SIGHUP, noted)


class Backend(StrEnum):
    """Which sandbox backend to run."""

    dukcapil = "dukcapil"
    capil = "capil"


@app.command()
def sandbox(
    backend: Annotated[Backend | None, typer.Option(help="Run one backend (default: both)")] = None,
    port: Annotated[int, typer.Option(help="Port for a single backend")] = 8101,
    dukcapil_port: Annotated[int, typer.Option(help="Dukcapil port when running both")] = 8101,
    capil_port: Annotated[int, typer.Option(help="Civil registry port when running both")] = 8102,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
) -> None:
    """Run the synthetic agency backends (Dukcapil-style KTP/KK; a regional birth registry)."""
    import uvicorn

    from adapters.sandbox import create_capil_app, create_dukcapil_app, generate

    population = generate()
    factories = {"dukcapil": create_dukcapil_app, "capil": create_capil_app}
    if backend is not None:
        uvicorn.run(factories[backend.value](population), host=host, port=port, log_level="warning")
        return

    async def both() -> None:
        servers = [
            uvicorn.Server(
                uvicorn.Config(factories[name](population), host=host, port=p, log_level="warning")
            )
            for name, p in (("dukcapil", dukcapil_port), ("capil", capil_port))
        ]
        await asyncio.gather(*(s.serve() for s in servers))

    typer.echo(f"Dukcapil sandbox on {host}:{dukcapil_port}, birth registry on {host}:{capil_port}")
    asyncio.run(both())


@app.command()
def demo(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep keys, registry, logs and databases here for inspection"),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="PostgreSQL URL; the run uses a fresh schema in it (default: SQLite files)",
        ),
    ] = None,
    nodes: Annotated[
        int, typer.Option(min=1, max=8, help="Broker processes sharing the database")
    ] = 1,
) -> None:
    """Play the whole story on real processes; exit 0 only if every step behaved."""
    from broker.demo import run_demo

    raise typer.Exit(run_demo(data_dir, database_url=database, nodes=nodes))


@keys_app.command("generate")
def keys_generate(
    path: Annotated[Path, typer.Argument(help="Where to write the private JWK (mode 0600)")],
    kid: Annotated[str | None, typer.Option(help="Key id (default: RFC 7638 thumbprint)")] = None,
) -> None:
    """Create an Ed25519 key; prints its public JWK for the registry."""
    from broker.errors import InvalidKey
    from broker.keys import generate_key, public_jwk, save_private_jwk

    if path.exists():
        typer.echo(f"simpul: {path} exists; refusing to overwrite a key", err=True)
        raise typer.Exit(2)
    try:
        key = generate_key(kid)
    except InvalidKey as exc:
        typer.echo(f"simpul: {exc.detail}", err=True)
        raise typer.Exit(2) from exc
    save_private_jwk(key, path)
    typer.echo(json.dumps(public_jwk(key)))


@keys_app.command("public")
def keys_public(path: Annotated[Path, typer.Argument(help="A private JWK file")]) -> None:
    """Print the public JWK of a private key file."""
    from broker.errors import InvalidKey
    from broker.keys import load_private_jwk, public_jwk

    try:
        key = load_private_jwk(path)
    except InvalidKey as exc:
        typer.echo(f"simpul: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(public_jwk(key)))


@keys_app.command("rotate")
def keys_rotate(
    path: Annotated[
        Path | None,
        typer.Argument(help="The broker's signing key file (default: SIMPUL_SIGNING_KEY_FILE)"),
    ] = None,
    kid: Annotated[str | None, typer.Option(help="Key id of the new key")] = None,
) -> None:
    """Make a new broker signing key; the old one keeps verifying until retired.

    Takes effect when the broker next starts. Prints the new public JWK.
    """
    from broker.errors import InvalidKey
    from broker.keyring import rotate
    from broker.keys import public_jwk
    from broker.settings import Settings

    target = path or _settings_or_exit(Settings).resolved_signing_key_file
    try:
        old_kid, new = rotate(target, kid=kid)
    except InvalidKey as exc:
        typer.echo(f"simpul: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"rotated: {old_kid} -> {new.kid} (restart the broker to sign with it)", err=True)
    typer.echo(json.dumps(public_jwk(new)))


@keys_app.command("retire")
def keys_retire(
    kid: Annotated[str, typer.Argument(help="The kid of a previous broker key")],
    path: Annotated[
        Path | None,
        typer.Option(help="The broker's signing key file (default: SIMPUL_SIGNING_KEY_FILE)"),
    ] = None,
) -> None:
    """Stop accepting a previous broker key: tokens and receipts it signed no longer verify."""
    from broker.errors import InvalidKey
    from broker.keyring import retire
    from broker.settings import Settings

    target = path or _settings_or_exit(Settings).resolved_signing_key_file
    try:
        moved = retire(target, kid)
    except InvalidKey as exc:
        typer.echo(f"simpul: {exc.detail}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"retired {kid} (now {moved}); restart the broker to stop publishing it")


notifications_app = typer.Typer(help="The consent notification outbox.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")


class DeliveryState(StrEnum):
    """Outbox states an operator can filter on."""

    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


@notifications_app.command("list")
def notifications_list(
    state: Annotated[DeliveryState | None, typer.Option(help="Only rows in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many rows")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """Show the outbox, newest first: recipient, event, state, attempts, last error."""
    from dataclasses import asdict

    from sqlalchemy import inspect

    from broker import notifications
    from broker.db import create_db_engine
    from broker.settings import Settings

    settings = _settings_or_exit(Settings)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        if not inspect(engine).has_table(notifications.notification_outbox.name):
            # Not created here: a table made outside the migrations would fail the next
            # `simpul db upgrade` (it would exist already).
            typer.echo("simpul: no notification outbox yet: run `simpul db upgrade`", err=True)
            raise typer.Exit(2)
        rows = notifications.list_deliveries(
            engine, state=state.value if state else None, limit=limit
        )
    finally:
        engine.dispose()
    for row in rows:
        if as_json:
            typer.echo(json.dumps(asdict(row), sort_keys=True))
        else:
            typer.echo(
                f"{row.id}  {row.state:<9} {row.event:<15} attempts={row.attempts:<2} "
                f"{row.recipient}  {row.last_error or ''}".rstrip()
            )
    if not rows:
        typer.echo("no notifications", err=True)


@registry_app.command("check")
def registry_check(path: Annotated[Path, typer.Argument(help="Registry TOML file")]) -> None:
    """Validate a registry file the way the broker does at start-up."""
    from adapters import ADAPTER_SERVICES
    from broker.errors import RegistryError
    from broker.registry import load_registry
    from schemas import SCHEMA_CODES

    try:
        registry = load_registry(path, schema_codes=SCHEMA_CODES, adapter_names=ADAPTER_SERVICES)
    except RegistryError as exc:
        typer.echo(f"simpul: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"{path}: OK ({len(registry.subsystems)} subsystems, {len(registry.services)} services)"
    )


db_app = typer.Typer(help="Database schema migrations (Alembic).", no_args_is_help=True)
app.add_typer(db_app, name="db")


def _settings_or_exit(factory: Any) -> Any:
    from pydantic import ValidationError

    try:
        return factory()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        typer.echo(f"simpul: configuration refused: {messages}", err=True)
        raise typer.Exit(2) from exc


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade both databases (SIMPUL_DATABASE_URL, SIMPUL_AUDIT_DATABASE_URL)."""
    from broker import migrate
    from broker.db import create_db_engine
    from broker.errors import SchemaBehind
    from broker.settings import Settings

    settings = _settings_or_exit(Settings)
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    for which, url in migrate.databases(settings):
        engine = create_db_engine(url)
        try:
            migrate.upgrade(engine, which)
            typer.echo(f"{which} database at {migrate.current_revision(engine, which)}")
        except SchemaBehind as exc:  # at a revision this code does not know
            typer.echo(f"simpul: {exc.detail}", err=True)
            raise typer.Exit(2) from exc
        finally:
            engine.dispose()


@db_app.command("current")
def db_current() -> None:
    """Show each database's schema revision beside the one this code needs."""
    from broker import migrate
    from broker.db import create_db_engine
    from broker.errors import SchemaBehind
    from broker.settings import Settings

    settings = _settings_or_exit(Settings)
    behind = False
    for which, url in migrate.databases(settings):
        try:
            want = migrate.head_revision(which)
        except ValueError as exc:  # this code's own migrations are broken
            typer.echo(f"simpul: {which} migrations: {exc}", err=True)
            raise typer.Exit(2) from exc
        engine = create_db_engine(url)
        try:
            have = migrate.current_revision(engine, which)
        except SchemaBehind as exc:  # a version table this code's migrations did not write
            typer.echo(f"{which}: {exc}, needs {want}")
            behind = True
            continue
        finally:
            engine.dispose()
        behind = behind or have != want
        typer.echo(f"{which}: at {have or 'nothing'}, needs {want}")
    if behind:
        raise typer.Exit(1)


def main() -> None:
    """Console-script entry point.

    A database that cannot be reached (refused, unknown host, bad credentials) is an
    operator's mistake to fix, said in one line, not a traceback of the driver's hundreds.
    """
    try:
        app()
    except Exception as exc:
        if not _database_unreachable(exc):
            raise
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        typer.echo(f"simpul: cannot reach the database: {reason}", err=True)
        sys.exit(2)


def _database_unreachable(exc: BaseException) -> bool:
    """SQLAlchemy's OperationalError from connecting (no statement ran), without importing
    SQLAlchemy for every command. A statement's failure (a lock timeout, a migration's
    error) keeps its traceback: it is not the operator's address or password."""
    return getattr(exc, "statement", "") is None and any(
        cls.__name__ == "OperationalError" and cls.__module__.startswith("sqlalchemy")
        for cls in type(exc).__mro__
    )


if __name__ == "__main__":
    main()
