"""Broker key rotation: sign with the newest key, verify with any not retired, publish them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from joserfc import jws
from typer.testing import CliRunner

from broker.cli import app as cli
from broker.errors import InvalidKey
from broker.keyring import Keyring, previous_dir, retire, retired_dir, rotate
from broker.keys import generate_key, load_private_jwk, save_private_jwk
from broker.runtime import Broker
from broker.sandbox_env import KTP, PERMIT_OFFICE, SandboxWorld
from broker.settings import Settings
from consent import Grant, Purpose
from consent.errors import ConsentInvalid

pytestmark = pytest.mark.usefixtures("clean_env")

NIK = "3174015501900001"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "broker-key.jwk"
    save_private_jwk(generate_key("simpul-broker-1"), path)
    return path


def _kid(compact: str) -> str:
    header = jws.extract_compact(compact.encode()).headers()
    return str(header["kid"])


class TestFiles:
    def test_rotate_keeps_the_old_key_and_counts_the_kid_up(self, key_file: Path) -> None:
        before = load_private_jwk(key_file)
        old_kid, new = rotate(key_file)
        assert (old_kid, new.kid) == ("simpul-broker-1", "simpul-broker-2")
        assert load_private_jwk(key_file).kid == "simpul-broker-2"
        kept = load_private_jwk(previous_dir(key_file) / "simpul-broker-1.jwk")
        assert kept.as_dict(private=True) == before.as_dict(private=True)
        assert (previous_dir(key_file).stat().st_mode & 0o777) == 0o700

    def test_an_explicit_kid(self, key_file: Path) -> None:
        assert rotate(key_file, kid="broker-2027")[1].kid == "broker-2027"

    def test_a_kid_in_use_is_refused(self, key_file: Path) -> None:
        rotate(key_file)
        with pytest.raises(InvalidKey, match="already in use"):
            rotate(key_file, kid="simpul-broker-1")

    def test_a_retired_kid_is_not_given_again(self, key_file: Path) -> None:
        rotate(key_file)
        retire(key_file, "simpul-broker-1")
        with pytest.raises(InvalidKey, match="already in use"):
            rotate(key_file, kid="simpul-broker-1")

    @pytest.mark.parametrize("kid", ["bad\nkid", "../escape", "k" * 201, "a b"])
    def test_a_kid_that_is_no_key_id_is_refused_before_anything_is_written(
        self, key_file: Path, kid: str
    ) -> None:
        before = key_file.read_bytes()
        with pytest.raises(InvalidKey, match="not a key id"):
            rotate(key_file, kid=kid)
        assert key_file.read_bytes() == before  # still the current key, loadable
        assert not previous_dir(key_file).exists()

    def test_retire_moves_a_previous_key_out_of_service(self, key_file: Path) -> None:
        rotate(key_file)
        moved = retire(key_file, "simpul-broker-1")
        assert moved == retired_dir(key_file) / "simpul-broker-1.jwk"
        assert not list(previous_dir(key_file).glob("*.jwk"))

    @pytest.mark.parametrize("kid", ["simpul-broker-2", "nope"])
    def test_only_a_previous_key_can_be_retired(self, key_file: Path, kid: str) -> None:
        rotate(key_file)
        with pytest.raises(InvalidKey, match="no previous broker key"):
            retire(key_file, kid)

    @pytest.mark.parametrize("kid", ["../broker-key", "..", "a/b", ""])
    def test_a_kid_is_never_a_path(self, key_file: Path, kid: str) -> None:
        rotate(key_file)
        with pytest.raises(InvalidKey, match="is not a key id"):
            retire(key_file, kid)
        assert key_file.is_file()

    def test_keyring_publishes_current_first(self, key_file: Path) -> None:
        rotate(key_file)
        rotate(key_file)
        ring = Keyring.load(load_private_jwk(key_file), key_file)
        kids = [k["kid"] for k in ring.jwks()["keys"]]
        assert kids[0] == ring.kid == "simpul-broker-3"
        assert sorted(kids[1:]) == ["simpul-broker-1", "simpul-broker-2"]
        assert all("d" not in k for k in ring.jwks()["keys"])


class TestCli:
    def test_rotate_and_retire(self, key_file: Path) -> None:
        runner = CliRunner()
        rotated = runner.invoke(cli, ["keys", "rotate", str(key_file)])
        assert rotated.exit_code == 0, rotated.output
        assert json.loads(rotated.stdout.strip().splitlines()[-1])["kid"] == "simpul-broker-2"
        retired = runner.invoke(cli, ["keys", "retire", "simpul-broker-1", "--path", str(key_file)])
        assert retired.exit_code == 0, retired.output
        again = runner.invoke(cli, ["keys", "retire", "simpul-broker-1", "--path", str(key_file)])
        assert again.exit_code == 1
        assert "no previous broker key" in again.output

    def test_generate_refuses_a_kid_no_key_file_could_hold(self, tmp_path: Path) -> None:
        target = tmp_path / "new.jwk"
        result = CliRunner().invoke(cli, ["keys", "generate", str(target), "--kid", "k" * 201])
        assert result.exit_code == 2
        assert "kid must be" in result.output
        assert not target.exists()


@asynccontextmanager
async def _running(settings: Settings) -> AsyncIterator[Broker]:
    running = await Broker.start(settings)
    try:
        yield running
    finally:
        await running.close()


class TestBrokerAcrossRotation:
    @pytest.fixture
    def settings(self, tmp_path: Path) -> Settings:
        world = SandboxWorld.create(tmp_path)
        return Settings(
            environment="dev",
            data_dir=tmp_path,
            subject_hash_secret="5e" * 32,
            citizen_idp_jwks_file=tmp_path / "idp-jwks.json",
            citizen_idp_issuer=world.idp.issuer,
            log_level="warning",
        )

    @staticmethod
    def _approve(running: Broker) -> tuple[str, str]:
        store = running.consents
        request = store.create_request(
            client_id=PERMIT_OFFICE,
            client_jkt="A" * 43,
            subject_nik=NIK,
            grants=(Grant(service=KTP, fields=("nama",)),),
            purpose=Purpose(code="perizinan-berusaha", text="izin"),
            procedure_ref="PB/1",
            valid_for_seconds=3600,
        )
        consent = store.approve(request.id, subject_nik=NIK)
        return store.token_for(consent), consent.id

    async def test_old_tokens_verify_until_their_key_is_retired(self, settings: Settings) -> None:
        async with _running(settings) as first:
            old_token, _ = self._approve(first)
            assert _kid(old_token) == "simpul-broker-1"
        rotate(settings.resolved_signing_key_file)

        async with _running(settings) as second:
            assert [k["kid"] for k in second.keyring.jwks()["keys"]] == [
                "simpul-broker-2",
                "simpul-broker-1",
            ]
            assert second.tokens.verify(old_token).sub == NIK
            new_token, consent_id = self._approve(second)
            assert _kid(new_token) == "simpul-broker-2"
            receipt = second.consent_api._receipt(
                second.consents.citizen_consent(consent_id, subject_nik=NIK)
            )
            assert _kid(receipt) == "simpul-broker-2"
        retire(settings.resolved_signing_key_file, "simpul-broker-1")

        async with _running(settings) as third:
            assert [k["kid"] for k in third.keyring.jwks()["keys"]] == ["simpul-broker-2"]
            with pytest.raises(ConsentInvalid, match="unknown key"):
                third.tokens.verify(old_token)
            assert third.tokens.verify(new_token).sub == NIK
