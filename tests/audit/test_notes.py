"""Checkpoints as C2SP signed notes: Go's sumdb/note known answer, round trips, refusals."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.errors import CheckpointInvalid, CheckpointUnsigned
from audit.notes import (
    Checkpoint,
    key_id,
    open_checkpoint,
    open_note,
    parse_verifier_key,
    raw_public_key,
    sign_checkpoint,
    sign_note,
    verifier_key,
)

# golang.org/x/mod/sumdb/note's documented example key and note, used as data.
GO_SKEY_SEED = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
    "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ORIGIN = "example.go.id/audit"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


class TestKnownAnswer:
    def test_key_id_and_verifier_key_match_go(self) -> None:
        public = Ed25519PrivateKey.from_private_bytes(GO_SKEY_SEED).public_key()
        assert verifier_key("PeterNeumann", public) == GO_VKEY
        assert key_id("PeterNeumann", public).hex() == "c74f20a3"

    def test_verifier_key_parses_as_go_reads_it(self) -> None:
        public = Ed25519PrivateKey.from_private_bytes(GO_SKEY_SEED).public_key()
        assert parse_verifier_key(GO_VKEY) == ("PeterNeumann", raw_public_key(public))
        assert parse_verifier_key(GO_VKEY.replace("c74f20a3", "C74F20A3") + "\n")[0] == (
            "PeterNeumann"
        )

    def test_signature_matches_go_byte_for_byte(self) -> None:
        private = Ed25519PrivateKey.from_private_bytes(GO_SKEY_SEED)
        assert sign_note(GO_TEXT, private, name="PeterNeumann") == GO_NOTE
        assert open_note(GO_NOTE, private.public_key(), name="PeterNeumann") == GO_TEXT


class TestCheckpoint:
    def test_round_trip(self, key: Ed25519PrivateKey) -> None:
        checkpoint = Checkpoint(origin=ORIGIN, size=20852163, root=bytes(range(32)))
        note = sign_checkpoint(checkpoint, key)
        lines = note.split("\n")
        assert lines[:3] == [ORIGIN, "20852163", base64.b64encode(bytes(range(32))).decode()]
        assert lines[3] == ""
        assert lines[4].startswith(f"— {ORIGIN} ")
        assert open_checkpoint(note, key.public_key()) == checkpoint

    def test_witness_lines_are_ignored(self, key: Ed25519PrivateKey) -> None:
        checkpoint = Checkpoint(origin=ORIGIN, size=3, root=bytes(32))
        witness = Ed25519PrivateKey.generate()
        cosigned = sign_checkpoint(checkpoint, key)
        extra = sign_note(checkpoint.text(), witness, name="witness.example")
        cosigned += extra.split("\n\n", 1)[1]
        assert open_checkpoint(cosigned, key.public_key()) == checkpoint

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda n: n.replace("\n7\n", "\n8\n"),
            lambda n: n.replace(ORIGIN, "other.example/log", 1),
            lambda n: n.replace("\n\n", "\n"),
            lambda n: n[:-6] + "AAAA=\n",
            lambda n: n.replace("— ", "- "),
            lambda n: n.rstrip("\n"),
        ],
        ids=["size", "origin", "no-blank-line", "signature", "dash", "no-final-newline"],
    )
    def test_tampered_notes_are_refused(self, key: Ed25519PrivateKey, mangle: object) -> None:
        note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=7, root=bytes(32)), key)
        assert callable(mangle)
        with pytest.raises(CheckpointInvalid):
            open_checkpoint(mangle(note), key.public_key())

    def test_another_key_is_refused(self, key: Ed25519PrivateKey) -> None:
        note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=7, root=bytes(32)), key)
        with pytest.raises(CheckpointInvalid, match="no signature"):
            open_checkpoint(note, Ed25519PrivateKey.generate().public_key())

    def test_another_key_is_told_apart_from_a_bad_signature(self, key: Ed25519PrivateKey) -> None:
        note = sign_checkpoint(Checkpoint(origin=ORIGIN, size=7, root=bytes(32)), key)
        with pytest.raises(CheckpointUnsigned):
            open_checkpoint(note, key.public_key(), name="witness.example")
        forged = (
            note[: note.rindex(" ") + 1]
            + base64.b64encode(key_id(ORIGIN, key.public_key()) + bytes(64)).decode()
            + "\n"
        )
        with pytest.raises(CheckpointInvalid, match="does not verify") as caught:
            open_checkpoint(forged, key.public_key())
        assert not isinstance(caught.value, CheckpointUnsigned)

    def test_the_origin_is_pinned_when_given(self, key: Ed25519PrivateKey) -> None:
        checkpoint = Checkpoint(origin="staging.example/log", size=7, root=bytes(32))
        note = sign_checkpoint(checkpoint, key)
        assert open_checkpoint(note, key.public_key()) == checkpoint
        assert open_checkpoint(note, key.public_key(), origin="staging.example/log") == checkpoint
        with pytest.raises(CheckpointInvalid, match=r"of the log staging\.example/log, not"):
            open_checkpoint(note, key.public_key(), origin=ORIGIN)

    @pytest.mark.parametrize(
        "vkey",
        [
            GO_VKEY.replace("c74f20a3", "c74f20a4"),  # the key ID of another name or key
            GO_VKEY.replace("PeterNeumann", "PeterNeumanm"),
            GO_VKEY.replace("+c74f20a3", "+c74f20a"),
            GO_VKEY.replace("+c74f20a3", ""),
            GO_VKEY.replace("PeterNeumann", "Peter Neumann"),
            GO_VKEY.replace("+ARpc", "+AhpC"),  # not the Ed25519 type byte
            GO_VKEY[:-4],
            GO_VKEY + "!",
            "+c74f20a3+" + GO_VKEY.rsplit("+", 1)[1],
        ],
        ids=[
            "wrong-key-id",
            "other-name",
            "short-key-id",
            "no-key-id",
            "space-in-name",
            "not-ed25519",
            "short-key",
            "not-base64",
            "no-name",
        ],
    )
    def test_malformed_verifier_keys_are_refused(self, vkey: str) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            parse_verifier_key(vkey)

    @pytest.mark.parametrize(
        ("origin", "size", "root"),
        [
            ("", 1, bytes(32)),
            ("a b", 1, bytes(32)),
            ("a+b", 1, bytes(32)),
            ("o", -1, bytes(32)),
            ("o", 1, bytes(31)),
        ],
    )
    def test_malformed_checkpoints_cannot_be_made(
        self, origin: str, size: int, root: bytes
    ) -> None:
        with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
            Checkpoint(origin=origin, size=size, root=root)

    @pytest.mark.parametrize("size", ["07", "-1", "1e3", ""])
    def test_malformed_sizes_are_refused(self, size: str) -> None:
        root = base64.b64encode(bytes(32)).decode()
        with pytest.raises(CheckpointInvalid):
            Checkpoint.parse(f"{ORIGIN}\n{size}\n{root}\n")
