"""The running broker: every long-lived part, built once from settings and closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet, OKPKey
from sqlalchemy import Engine

import audit
import consent.store
from adapters import ADAPTER_NAMES
from audit import AuditLog
from broker import replay
from broker.auth import RequestAuthenticator
from broker.citizen import CitizenVerifier
from broker.consent_api import ConsentApi
from broker.context import Adapters
from broker.db import create_db_engine
from broker.exchange import ExchangeService
from broker.keys import generate_key, load_private_jwk, public_jwk, save_private_jwk, to_private_key
from broker.logs import get_logger
from broker.registry import Registry, load_registry
from broker.replay import ReplayCache
from broker.settings import Settings
from consent import ConsentStore, TokenIssuer, TokenVerifier
from schemas import SCHEMA_CODES, SchemaSet

__all__ = ["Broker", "load_signing_key"]

_log = get_logger("simpul.broker")


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

    @classmethod
    async def start(cls, settings: Settings) -> Broker:
        """Load and check everything; any bad input stops start-up with a clear message."""
        if settings.resolved_database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        schemas = SchemaSet.load()
        registry = load_registry(
            settings.resolved_registry_file,
            schema_codes=SCHEMA_CODES,
            adapter_names=ADAPTER_NAMES,
        )
        key = load_signing_key(settings)
        engine = create_db_engine(settings.resolved_database_url)
        audit_engine = create_db_engine(settings.resolved_audit_database_url)
        consent.store.install(engine)
        replay.install(engine)
        audit.install(audit_engine)

        issuer = TokenIssuer(key=key, issuer=settings.consent_issuer)
        verifier_keys = KeySet([OKPKey.import_key(key.as_dict(private=False))])
        tokens = TokenVerifier(keys=verifier_keys, issuer=settings.consent_issuer)
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
        audit_log = AuditLog(audit_engine)
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
        )
        _log.info(
            "broker_started",
            services=len(registry.services),
            environment=settings.environment,
        )
        return cls(
            settings=settings,
            registry=registry,
            schemas=schemas,
            engine=engine,
            audit_engine=audit_engine,
            audit_log=audit_log,
            consents=consents,
            consent_api=ConsentApi(
                store=consents,
                registry=registry,
                schemas=schemas,
                audit=audit_log,
                subject_secret=settings.subject_secret_bytes,
            ),
            tokens=tokens,
            authenticator=authenticator,
            citizens=citizens,
            adapters=adapters,
            exchange=exchange,
            signing_key=key,
            public_jwk=public_jwk(key),
        )

    async def close(self) -> None:
        """Drain the audit writer, close connection pools and engines."""
        await self.audit_log.stop()
        await self.adapters.aclose()
        self.engine.dispose()
        self.audit_engine.dispose()
