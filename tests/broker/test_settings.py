"""Settings from ``SIMPUL_*``: placeholder secrets refused outside development, sane defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.settings import PLACEHOLDER_SECRETS, Settings

pytestmark = pytest.mark.usefixtures("clean_env")

GOOD_SECRET = "4f" * 32  # 64 hex characters, 64 bytes
SHORT_SECRET = "x" * 31


class TestSubjectHashSecret:
    @pytest.mark.parametrize(
        "secret",
        [*sorted(PLACEHOLDER_SECRETS), " Change-Me ", "SECRET", SHORT_SECRET],
        ids=lambda s: repr(s),
    )
    def test_refused_in_production(self, secret: str) -> None:
        with pytest.raises(ValidationError, match="SIMPUL_SUBJECT_HASH_SECRET"):
            Settings(environment="production", subject_hash_secret=secret)

    @pytest.mark.parametrize("secret", [*sorted(PLACEHOLDER_SECRETS), SHORT_SECRET])
    def test_refused_from_the_environment(self, clean_env: pytest.MonkeyPatch, secret: str) -> None:
        clean_env.setenv("SIMPUL_SUBJECT_HASH_SECRET", secret)
        with pytest.raises(ValidationError, match="SIMPUL_SUBJECT_HASH_SECRET"):
            Settings()

    def test_unset_is_refused_by_default(self) -> None:
        # The default environment is production: forgetting everything must not start a broker.
        with pytest.raises(ValidationError, match="unset or a placeholder"):
            Settings()

    def test_length_counts_bytes_not_characters(self) -> None:
        assert Settings(subject_hash_secret="é" * 16).environment == "production"  # 32 bytes
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            Settings(subject_hash_secret="é" * 15 + "x")  # 31 bytes

    def test_32_bytes_accepted_in_production(self) -> None:
        settings = Settings(environment="production", subject_hash_secret="y" * 32)
        assert settings.subject_secret_bytes == b"y" * 32

    @pytest.mark.parametrize("secret", [*sorted(PLACEHOLDER_SECRETS), SHORT_SECRET])
    def test_accepted_in_dev(self, secret: str) -> None:
        settings = Settings(environment="dev", subject_hash_secret=secret)
        assert settings.subject_hash_secret.get_secret_value() == secret

    def test_short_dev_secret_is_stretched_to_a_full_key(self) -> None:
        short = Settings(environment="dev", subject_hash_secret="dev").subject_secret_bytes
        other = Settings(environment="dev", subject_hash_secret="dev2").subject_secret_bytes
        assert len(short) == 32
        assert short != other

    def test_secret_is_not_in_repr(self) -> None:
        settings = Settings(subject_hash_secret=GOOD_SECRET)
        assert GOOD_SECRET not in repr(settings)
        assert GOOD_SECRET not in str(settings.model_dump())


class TestReplayWindow:
    @pytest.mark.parametrize(("skew", "window"), [(300, 599), (300, 1), (10, 19), (3600, 7199)])
    def test_shorter_than_twice_the_skew_refused(self, skew: int, window: int) -> None:
        with pytest.raises(ValidationError, match="SIMPUL_REPLAY_WINDOW_SECONDS"):
            Settings(
                subject_hash_secret=GOOD_SECRET,
                max_clock_skew_seconds=skew,
                replay_window_seconds=window,
            )

    def test_refused_in_dev_too(self) -> None:
        with pytest.raises(ValidationError, match="SIMPUL_REPLAY_WINDOW_SECONDS"):
            Settings(environment="dev", max_clock_skew_seconds=300, replay_window_seconds=599)

    def test_exactly_twice_the_skew_accepted(self) -> None:
        settings = Settings(
            subject_hash_secret=GOOD_SECRET, max_clock_skew_seconds=300, replay_window_seconds=600
        )
        assert settings.replay_window_seconds == 600

    def test_defaults_are_consistent(self) -> None:
        settings = Settings(subject_hash_secret=GOOD_SECRET)
        assert settings.replay_window_seconds >= 2 * settings.max_clock_skew_seconds

    @pytest.mark.parametrize(
        "overrides",
        [{"max_clock_skew_seconds": 0}, {"max_clock_skew_seconds": 3601}, {"port": 0}],
    )
    def test_out_of_range_refused(self, overrides: dict[str, int]) -> None:
        with pytest.raises(ValidationError):
            Settings(subject_hash_secret=GOOD_SECRET, **overrides)  # type: ignore[arg-type]


class TestResolvedPaths:
    def test_defaults_live_under_data_dir(self, tmp_path: Path) -> None:
        settings = Settings(environment="dev", data_dir=tmp_path)
        assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'simpul.db'}"
        assert settings.resolved_audit_database_url == f"sqlite:///{tmp_path / 'audit.db'}"
        assert settings.resolved_registry_file == tmp_path / "registry.toml"
        assert settings.resolved_signing_key_file == tmp_path / "broker-key.jwk"

    def test_audit_log_is_a_separate_database_by_default(self, tmp_path: Path) -> None:
        settings = Settings(environment="dev", data_dir=tmp_path)
        assert settings.resolved_audit_database_url != settings.resolved_database_url

    def test_explicit_values_win(self, tmp_path: Path) -> None:
        settings = Settings(
            environment="dev",
            data_dir=tmp_path,
            database_url="postgresql://db/simpul",
            audit_database_url="sqlite:////var/lib/audit.db",
            registry_file=Path("/etc/simpul/registry.toml"),
            signing_key_file=Path("/etc/simpul/key.jwk"),
        )
        assert settings.resolved_database_url == "postgresql://db/simpul"
        assert settings.resolved_audit_database_url == "sqlite:////var/lib/audit.db"
        assert settings.resolved_registry_file == Path("/etc/simpul/registry.toml")
        assert settings.resolved_signing_key_file == Path("/etc/simpul/key.jwk")


class TestEnvironment:
    def test_prefix_is_read(self, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "production")
        clean_env.setenv("SIMPUL_SUBJECT_HASH_SECRET", GOOD_SECRET)
        clean_env.setenv("SIMPUL_DATA_DIR", str(tmp_path))
        clean_env.setenv("SIMPUL_PORT", "9443")
        clean_env.setenv("SIMPUL_MAX_CLOCK_SKEW_SECONDS", "60")
        clean_env.setenv("SIMPUL_REPLAY_WINDOW_SECONDS", "120")
        clean_env.setenv("SIMPUL_CITIZEN_IDP_JWKS_FILE", str(tmp_path / "jwks.json"))
        settings = Settings()
        assert settings.environment == "production"
        assert settings.subject_secret_bytes == GOOD_SECRET.encode()
        assert settings.data_dir == tmp_path
        assert settings.port == 9443
        assert settings.max_clock_skew_seconds == 60
        assert settings.replay_window_seconds == 120
        assert settings.citizen_idp_jwks_file == tmp_path / "jwks.json"
        assert settings.resolved_registry_file == tmp_path / "registry.toml"

    def test_unprefixed_names_are_ignored(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("ENVIRONMENT", "dev")
        clean_env.setenv("PORT", "1234")
        settings = Settings(subject_hash_secret=GOOD_SECRET)
        assert settings.environment == "production"
        assert settings.port == 8080

    def test_unknown_environment_refused(self, clean_env: pytest.MonkeyPatch) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "staging")
        with pytest.raises(ValidationError, match="environment"):
            Settings(subject_hash_secret=GOOD_SECRET)

    def test_dev_from_the_environment_accepts_the_default_secret(
        self, clean_env: pytest.MonkeyPatch
    ) -> None:
        clean_env.setenv("SIMPUL_ENVIRONMENT", "dev")
        assert Settings().subject_hash_secret.get_secret_value() == "change-me"

    def test_frozen(self) -> None:
        settings = Settings(subject_hash_secret=GOOD_SECRET)
        with pytest.raises(ValidationError):
            settings.port = 1  # type: ignore[misc]
