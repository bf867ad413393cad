"""The running broker: every long-lived part, built once from settings and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.jwk import OKPKey
from sqlalchemy import Engine

from adapters import ADAPTER_SERVICES
from audit import AuditLog
from audit.checkpoints import CheckpointScheduler
from broker import migrate, notifications
from broker._webhooks import WebhookClient
from broker.auditor_api import AuditorApi
from broker.auth import RequestAuthenticator
from broker.citizen import CitizenVerifier
from broker.consent_api import ConsentApi
from broker.consent_worker import ConsentWorker
from broker.context import Adapters
from broker.db import create_db_engine
from broker.exchange import ExchangeService
from broker.keyring import Keyring
from broker.keys import generate_key, load_private_jwk, public_jwk, save_private_jwk, to_private_key
from broker.logs import get_logger
from broker.registry import Registry, load_registry
from broker.replay import ReplayCache
from broker.settings import Settings
from broker.stages import StageClock
from consent import ConsentStore, ReceiptIssuer, TokenIssuer, TokenVerifier
from schemas import SCHEMA_CODES, SchemaSet

__all__ = ["Broker", "load_signing_key"]

_log = get_logger("simpul.broker")

#: How often a checkpoint is signed while records arrive (C2SP logs: every few seconds).
CHECKPOINT_INTERVAL_SECONDS = 2.0


def prepare_databases(settings: Settings, engine: Engine, audit_engine: Engine) -> None:
    """Refuse a database whose schema is not this code's; in development, migrate it first.

    Production schemas change only by an operator's ``simpul db upgrade``, never as a side
    effect of a node starting (nodes starting together would race to migrate).
    """
    databases: tuple[tuple[migrate.Which, Engine], ...] = (
        ("main", engine),
        ("audit", audit_engine),
    )
    for which, eng in databases:
        # Alembic is imported only to migrate, so a current database costs a worker none of it.
        if settings.environment == "dev" and not migrate.is_current(eng, which):
            migrate.upgrade(eng, which)
        migrate.require_current(eng, which)


def preflight(settings: Settings) -> None:
    """Everything start-up checks, once, before any server process starts.

    Raises the error that names what is wrong (registry, key, identity provider keys,
    database schema); in development it also creates the signing key and migrates, so that
    several workers do not race to do it.
    """
    if settings.resolved_database_url.startswith("sqlite"):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    SchemaSet.load()
    load_registry(
        settings.resolved_registry_file, schema_codes=SCHEMA_CODES, adapter_names=ADAPTER_SERVICES
    )
    load_signing_key(settings)
    if settings.citizen_idp_jwks_file is not None:
        CitizenVerifier.from_jwks_file(
            settings.citizen_idp_jwks_file,
            issuer=settings.citizen_idp_issuer,
            audience=settings.citizen_audience,
        )
    engine = create_db_engine(settings.resolved_database_url)
    audit_engine = create_db_engine(settings.resolved_audit_database_url)
    try:
        prepare_databases(settings, engine, audit_engine)
    finally:
        engine.dispose()
        audit_engine.dispose()


def load_signing_key(settings: Settings) -> OKPKey:
    """The broker's Ed25519 key; generated on first start in development only."""
    path = settings.resolved_signing_key_file
    if not path.exists():
        if settings.environment != "dev":
            raise FileNotFoundError(
                f"{path}: broker signing key not found; create one with "
                f"`simpul keys generate {path}` (or set SIMPUL_SIGNING_KEY_FILE)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_private_jwk(generate_key(), path)
        _log.warning("signing_key_generated", path=str(path))
    return load_private_jwk(path)


@dataclass(slots=True)
class Broker:
    """What the routes use. Built by :meth:`start`, released by :meth:`close`."""

    settings: Settings
    registry: Registry
    schemas: SchemaSet
    engine: Engine
    audit_engine: Engine
    audit_log: AuditLog
    consents: ConsentStore
    consent_api: ConsentApi
    tokens: TokenVerifier
    authenticator: RequestAuthenticator
    citizens: CitizenVerifier | None
    adapters: Adapters
    exchange: ExchangeService
    signing_key: OKPKey
    public_jwk: dict[str, Any]
    keyring: Keyring
    consent_worker: ConsentWorker
    webhooks: WebhookClient
    checkpoints: CheckpointScheduler
    auditor_api: AuditorApi

    @classmethod
    async def start(cls, settings: Settings) -> Broker:
        """Load and check everything; any bad input stops start-up with a clear message."""
        if settings.resolved_database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        schemas = SchemaSet.load()
        registry = load_registry(
            settings.resolved_registry_file,
            schema_codes=SCHEMA_CODES,
            adapter_names=ADAPTER_SERVICES,
        )
        key = load_signing_key(settings)
        keyring = Keyring.load(key, settings.resolved_signing_key_file)
        engine = create_db_engine(settings.resolved_database_url)
        audit_engine = create_db_engine(settings.resolved_audit_database_url)
        prepare_databases(settings, engine, audit_engine)

        issuer = TokenIssuer(key=key, issuer=settings.consent_issuer)
        # Signs with the newest key; verifies tokens signed with any key not yet retired.
        tokens = TokenVerifier(keys=keyring.key_set(), issuer=settings.consent_issuer)
        consents = ConsentStore(engine=engine, issuer=issuer)
        authenticator = RequestAuthenticator(
            registry=registry,
            replay=ReplayCache(engine=engine, window_seconds=settings.replay_window_seconds),
            max_skew_seconds=settings.max_clock_skew_seconds,
        )
        citizens = None
        if settings.citizen_idp_jwks_file is not None:
            citizens = CitizenVerifier.from_jwks_file(
                settings.citizen_idp_jwks_file,
                issuer=settings.citizen_idp_issuer,
                audience=settings.citizen_audience,
            )
        # No added wait before a batch: under load the next batch gathers while one commits
        # (group commit all the same), and a lone exchange is not held back 2 ms for company.
        audit_log = AuditLog(audit_engine, max_delay=0.0)
        await audit_log.start()
        adapters = Adapters.for_registry(registry)
        exchange = ExchangeService(
            registry=registry,
            authenticator=authenticator,
            schemas=schemas,
            adapters=adapters,
            tokens=tokens,
            consents=consents,
            audit=audit_log,
            subject_secret=settings.subject_secret_bytes,
            signing_key=to_private_key(key),
            signing_kid=str(key.kid),
            stages=StageClock(settings.stage_timings_dir),
        )
        consent_api = ConsentApi(
            store=consents,
            registry=registry,
            schemas=schemas,
            audit=audit_log,
            subject_secret=settings.subject_secret_bytes,
            receipts=ReceiptIssuer(key=key, issuer=settings.consent_issuer),
        )
        webhooks = WebhookClient(timeout=settings.notify_timeout_seconds)
        worker = ConsentWorker(
            store=consents,
            api=consent_api,
            registry=registry,
            notifier=notifications.Notifier(
                engine=engine,
                registry=registry,  # this worker's: a SIGHUP's new workers send by the new one
                key=to_private_key(key),
                kid=keyring.kid,
                post=webhooks.post,
                backoff_seconds=settings.notify_backoff_seconds,
                max_backoff_seconds=settings.notify_max_backoff_seconds,
                max_attempts=settings.notify_max_attempts,
            ),
            interval=settings.consent_worker_seconds,
        )
        worker.start()
        _log.info(
            "broker_started",
            services=len(registry.services),
            environment=settings.environment,
        )
        # Each checkpoint is signed with the key that is current when it is signed.
        checkpoints = CheckpointScheduler(
            audit_engine,
            key=lambda: (keyring.kid, to_private_key(keyring.signing)),
            interval=CHECKPOINT_INTERVAL_SECONDS,
        )
        broker = cls(
            settings=settings,
            registry=registry,
            schemas=schemas,
            engine=engine,
            audit_engine=audit_engine,
            audit_log=audit_log,
            consents=consents,
            consent_api=consent_api,
            tokens=tokens,
            authenticator=authenticator,
            citizens=citizens,
            adapters=adapters,
            exchange=exchange,
            signing_key=key,
            public_jwk=public_jwk(key),
            keyring=keyring,
            consent_worker=worker,
            webhooks=webhooks,
            checkpoints=checkpoints,
            auditor_api=AuditorApi(
                engine=audit_engine,
                registry=registry,
                authenticator=authenticator,
                checkpoints=checkpoints,
                subject_secret=settings.subject_secret_bytes,
            ),
        )
        await checkpoints.start()
        return broker

    async def close(self) -> None:
        """Stop the consent worker, drain the audit writer, close pools and engines."""
        await self.consent_worker.stop()  # first: it cancels deliveries and gives back rows
        await self.webhooks.aclose()
        await self.audit_log.stop()
        await self.checkpoints.stop()  # a last checkpoint covers every record written
        await self.adapters.aclose()
        self.consents.close()
        self.authenticator.close()
        self.engine.dispose()
        self.audit_engine.dispose()
