"""Configuration from the environment (``SIMPUL_*``), validated once at start-up."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["PLACEHOLDER_SECRETS", "Settings"]

#: Values that mean "nobody set this"; refused outside development.
PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "secret", "placeholder", "dev"})

_MIN_SECRET_BYTES = 32


class Settings(BaseSettings):
    """Everything an operator can set. Paths default to files under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="SIMPUL_", extra="ignore", frozen=True)

    environment: Literal["dev", "production"] = "production"
    data_dir: Path = Path("simpul-data")
    database_url: str | None = None
    audit_database_url: str | None = None
    registry_file: Path | None = None
    signing_key_file: Path | None = None

    subject_hash_secret: SecretStr = SecretStr("change-me")
    consent_issuer: str = "urn:simpul:broker"

    citizen_idp_issuer: str = "urn:simpul:dev-idp"
    citizen_idp_jwks_file: Path | None = None
    citizen_audience: str = "simpul-citizen"

    max_clock_skew_seconds: int = Field(default=300, ge=1, le=3600)
    replay_window_seconds: int = Field(default=900, ge=1)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    #: How often the consent worker sweeps expiries, audits transitions and sends notifications.
    consent_worker_seconds: float = Field(default=1.0, gt=0, le=3600)
    #: First retry delay of a failed notification; doubles on every failure (capped).
    notify_backoff_seconds: float = Field(default=2.0, gt=0, le=3600)
    notify_max_backoff_seconds: float = Field(default=600.0, gt=0, le=86_400)
    #: Attempts before a notification is given up as FAILED (operators see it in the outbox).
    notify_max_attempts: int = Field(default=12, ge=1, le=100)
    notify_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    #: Worker processes for ``simpul serve``; each builds its own app. The replay cache and the
    #: audit log live in the database, so every worker sees every request id and record.
    workers: int = Field(default=1, ge=1, le=64)
    #: With two workers or more (Linux): worker k runs on the k-th CPU the server may use,
    #: its threads with it, instead of wherever the kernel moves it. Worth it where the broker
    #: has the machine's CPUs to itself, one worker per CPU (docs/performance.md).
    pin_workers: bool = False
    #: Benchmarks only: write per-stage CPU totals of the exchange pipeline here.
    stage_timings_dir: Path | None = None

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        secret = self.subject_hash_secret.get_secret_value()
        if self.environment != "dev":
            if secret.strip().lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "SIMPUL_SUBJECT_HASH_SECRET is unset or a placeholder; set a random value "
                    "of at least 32 bytes (e.g. `python -c 'import secrets; "
                    "print(secrets.token_hex(32))'`), or SIMPUL_ENVIRONMENT=dev for development"
                )
            if len(secret.encode()) < _MIN_SECRET_BYTES:
                raise ValueError("SIMPUL_SUBJECT_HASH_SECRET must be at least 32 bytes")
        # The replay window must outlast every request whose `created` is still acceptable,
        # otherwise an id could be forgotten while its signature is still fresh.
        if self.replay_window_seconds < 2 * self.max_clock_skew_seconds:
            raise ValueError(
                "SIMPUL_REPLAY_WINDOW_SECONDS must be at least twice SIMPUL_MAX_CLOCK_SKEW_SECONDS"
            )
        return self

    @property
    def resolved_database_url(self) -> str:
        """Consent and replay state; a SQLite file under ``data_dir`` unless set."""
        return self.database_url or f"sqlite:///{self.data_dir / 'simpul.db'}"

    @property
    def resolved_audit_database_url(self) -> str:
        """The audit log; its own SQLite file by default, so it can be handed to an auditor."""
        return self.audit_database_url or f"sqlite:///{self.data_dir / 'audit.db'}"

    @property
    def resolved_registry_file(self) -> Path:
        """The registry file."""
        return self.registry_file or self.data_dir / "registry.toml"

    @property
    def resolved_signing_key_file(self) -> Path:
        """The broker's private signing key (JWK)."""
        return self.signing_key_file or self.data_dir / "broker-key.jwk"

    @property
    def subject_secret_bytes(self) -> bytes:
        """The keyed-hash secret for subject references in the audit log."""
        secret = self.subject_hash_secret.get_secret_value().encode()
        if len(secret) < _MIN_SECRET_BYTES:
            # Development only: stretch a short secret so the hash still has a full-size key.
            return hashlib.sha256(b"simpul-dev-subject-secret:" + secret).digest()
        return secret
