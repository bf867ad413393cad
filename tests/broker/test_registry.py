"""The registry file: a valid one loads and answers look-ups; every invalid one says why."""

from __future__ import annotations

import copy
import stat
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import ADAPTER_SERVICES
from broker.errors import AccessDenied, RegistryError, UnknownClient, UnknownService
from broker.keys import generate_key, jwk_to_public_key, public_jwk, thumbprint
from broker.registry import (
    DEFAULT_TIMEOUT,
    Registry,
    dump_registry,
    is_client_id,
    is_service_id,
    load_registry,
    parse_registry,
    write_registry,
)

SCHEMAS = ("ktp", "kk", "akta-lahir")
ADAPTERS = ADAPTER_SERVICES  # each adapter with the schemas it serves, as the broker checks

PERIZINAN = "ID/GOV/DPMPTSP-DKI/perizinan"
BANK = "ID/COM/BANK-X/kyc"
KTP = "ID/GOV/DUKCAPIL/adminduk/ktp"
KK = "ID/GOV/DUKCAPIL/adminduk/kk"
AKTA = "ID/GOV/DISDUKCAPIL-DKI/capil/akta-lahir"

KEY_A = public_jwk(generate_key("perizinan-1"))
KEY_B = public_jwk(generate_key("perizinan-2"))
KEY_C = {k: v for k, v in public_jwk(generate_key()).items() if k != "kid"}


def valid_data() -> dict[str, Any]:
    """A small but complete registry, as TOML would parse it."""
    return {
        "instance": "ID",
        "members": [
            {
                "class": "GOV",
                "code": "DUKCAPIL",
                "name": "Direktorat Jenderal Kependudukan dan Pencatatan Sipil",
                "subsystems": [{"code": "adminduk"}],
            },
            {
                "class": "GOV",
                "code": "DPMPTSP-DKI",
                "name": "DPMPTSP Provinsi DKI Jakarta",
                "subsystems": [{"code": "perizinan", "keys": [dict(KEY_A), dict(KEY_B)]}],
            },
            {
                "class": "COM",
                "code": "BANK-X",
                "name": "PT Bank X",
                "subsystems": [
                    {"code": "kyc", "name": "Know your customer", "keys": [dict(KEY_C)]}
                ],
            },
            {
                "class": "GOV",
                "code": "DISDUKCAPIL-DKI",
                "name": "Disdukcapil DKI",
                "subsystems": [{"code": "capil"}],
            },
        ],
        "services": [
            {
                "id": KTP,
                "schema": "ktp",
                "adapter": "dukcapil",
                "backend": "http://127.0.0.1:8101",
                "timeout": 2.5,
                "clients": [PERIZINAN, BANK],
            },
            {
                "id": KK,
                "schema": "kk",
                "adapter": "dukcapil",
                "backend": "https://dukcapil.example/api/",
                "clients": [PERIZINAN],
                "description": "Kartu Keluarga",
            },
            {
                "id": AKTA,
                "schema": "akta-lahir",
                "adapter": "capil",
                "backend": "http://127.0.0.1:8102",
                "timeout": 10,
            },
        ],
        "purposes": [
            {
                "code": "perizinan-berusaha",
                "text_id": "Verifikasi identitas pemohon izin usaha",
                "text_en": "Verifying the identity of a business permit applicant",
            }
        ],
    }


def load(tmp_path: Path, data: dict[str, Any]) -> Registry:
    path = tmp_path / "registry.toml"
    write_registry(path, data)
    return load_registry(path, schema_codes=SCHEMAS, adapter_names=ADAPTERS)


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return load(tmp_path, valid_data())


class TestValidRegistry:
    def test_members_and_subsystems(self, registry: Registry) -> None:
        assert registry.instance == "ID"
        assert [m.id for m in registry.members] == [
            "ID/GOV/DUKCAPIL",
            "ID/GOV/DPMPTSP-DKI",
            "ID/COM/BANK-X",
            "ID/GOV/DISDUKCAPIL-DKI",
        ]
        member = registry.members[1]
        assert (member.member_class, member.code) == ("GOV", "DPMPTSP-DKI")
        assert member.name == "DPMPTSP Provinsi DKI Jakarta"
        assert [s.id for s in member.subsystems] == [PERIZINAN]
        assert registry.subsystem(PERIZINAN).member_id == "ID/GOV/DPMPTSP-DKI"
        assert registry.subsystem("ID/GOV/DUKCAPIL/adminduk").keys == {}

    @pytest.mark.parametrize("url", ["https://h.example/simpul/notify/", "https://h.example/n"])
    def test_a_webhook_is_called_as_written(self, tmp_path: Path, url: str) -> None:
        """A trailing slash may be part of the receiver's route (a backend's base URL, to
        which paths are joined, loses it)."""
        data = valid_data()
        data["members"][1]["subsystems"][0]["webhook"] = url
        assert load(tmp_path, data).subsystem(PERIZINAN).webhook == url

    def test_services(self, registry: Registry) -> None:
        ktp = registry.service(KTP)
        assert (ktp.code, ktp.provider, ktp.schema, ktp.adapter) == (
            "ktp",
            "ID/GOV/DUKCAPIL/adminduk",
            "ktp",
            "dukcapil",
        )
        assert ktp.backend == "http://127.0.0.1:8101"
        assert ktp.timeout == 2.5
        assert ktp.clients == frozenset({PERIZINAN, BANK})
        assert registry.service(KK).backend == "https://dukcapil.example/api"
        assert registry.service(KK).description == "Kartu Keluarga"
        akta = registry.service(AKTA)
        assert akta.timeout == 10.0
        assert akta.clients == frozenset()

    def test_timeout_default(self, tmp_path: Path) -> None:
        data = valid_data()
        del data["services"][0]["timeout"]
        assert load(tmp_path, data).service(KTP).timeout == DEFAULT_TIMEOUT

    def test_purposes(self, registry: Registry) -> None:
        assert [p.code for p in registry.purposes] == ["perizinan-berusaha"]
        purpose = registry.purpose("perizinan-berusaha")
        assert purpose is not None
        assert purpose.text_en.startswith("Verifying")
        assert registry.purpose("marketing") is None

    def test_keys(self, registry: Registry) -> None:
        keys = registry.subsystem(PERIZINAN).keys
        assert set(keys) == {"perizinan-1", "perizinan-2"}
        assert keys["perizinan-1"] == KEY_A
        assert all("d" not in jwk for jwk in keys.values())
        key = registry.client_key(PERIZINAN, "perizinan-2")
        assert key is not None
        assert key.public_bytes_raw() == jwk_to_public_key(KEY_B).public_bytes_raw()

    def test_kid_defaults_to_thumbprint(self, registry: Registry) -> None:
        assert set(registry.subsystem(BANK).keys) == {thumbprint(KEY_C)}

    def test_key_belongs_to_its_client_only(self, registry: Registry) -> None:
        assert registry.client_key(BANK, "perizinan-1") is None
        assert registry.client_key(PERIZINAN, "nope") is None
        assert registry.client_key("ID/GOV/NOPE/x", "perizinan-1") is None

    def test_unknown_client_and_service(self, registry: Registry) -> None:
        with pytest.raises(UnknownClient):
            registry.subsystem("ID/GOV/NOPE/x")
        with pytest.raises(UnknownService):
            registry.service("ID/GOV/DUKCAPIL/adminduk/paspor")

    @pytest.mark.parametrize(
        ("client", "service", "allowed"),
        [
            (PERIZINAN, KTP, True),
            (BANK, KTP, True),
            (PERIZINAN, KK, True),
            (BANK, KK, False),
            (PERIZINAN, AKTA, False),
            ("ID/GOV/DUKCAPIL/adminduk", KTP, False),
            (PERIZINAN, "ID/GOV/DUKCAPIL/adminduk/paspor", False),
        ],
    )
    def test_access_is_denied_by_default(
        self, registry: Registry, client: str, service: str, allowed: bool
    ) -> None:
        assert registry.is_allowed(client, service) is allowed
        if allowed:
            assert registry.require_access(client, service).id == service
        elif service in registry.services:
            with pytest.raises(AccessDenied):
                registry.require_access(client, service)
        else:
            with pytest.raises(UnknownService):
                registry.require_access(client, service)

    def test_registry_is_read_only(self, registry: Registry) -> None:
        with pytest.raises(TypeError):
            registry.services["x"] = registry.service(KTP)  # type: ignore[index]
        with pytest.raises(TypeError):
            registry.subsystem(PERIZINAN).keys["x"] = KEY_A  # type: ignore[index]

    def test_parse_without_file(self) -> None:
        reg = parse_registry(valid_data(), schema_codes=SCHEMAS, adapter_names=ADAPTERS)
        assert reg.is_allowed(PERIZINAN, KTP)


class TestWrite:
    def test_round_trip_and_mode(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.toml"
        write_registry(path, valid_data(), header="Demo registry.\nGenerated, edit freely.")
        text = path.read_text()
        assert text.startswith("# Demo registry.\n# Generated, edit freely.\n")
        assert "[[members.subsystems]]" in text
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        reg = load_registry(path, schema_codes=SCHEMAS, adapter_names=ADAPTERS)
        assert set(reg.services) == {KTP, KK, AKTA}

    def test_dump_is_plain_toml(self) -> None:
        assert dump_registry({"instance": "ID"}) == 'instance = "ID"\n'


class TestIdentifiers:
    @pytest.mark.parametrize(
        "value", [PERIZINAN, "ID/GOV/a.b_c-d/x", "EE/COM/1/2", "ID/GOV/" + "A" * 64 + "/x"]
    )
    def test_valid_client_ids(self, value: str) -> None:
        assert is_client_id(value)
        assert not is_service_id(value)

    @pytest.mark.parametrize(
        "value",
        [
            "ID/GOV/DUKCAPIL",
            "ID/GOV/DUKCAPIL/adminduk/ktp",
            "ID/GOV/DUKCAPIL/",
            "ID//DUKCAPIL/x",
            "ID/GOV/DUK CAPIL/x",
            "ID/GOV/DUKCAPIL/..",
            "ID/GOV/DUKCAPIL/.hidden",
            "ID/GOV/DUKCAPIL/-x",
            "ID/GOV/DUKÇAPIL/x",
            "ID/GOV/DUKCAPIL/x%20y",
            "ID/GOV/DUKCAPIL/x\n",
            "ID/GOV/" + "A" * 65 + "/x",
        ],
    )
    def test_invalid_client_ids(self, value: str) -> None:
        assert not is_client_id(value)

    def test_service_id(self) -> None:
        assert is_service_id(KTP)
        assert not is_service_id(KTP + "/extra")


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    """A mutation that sets ``a.0.b`` style path ``path`` to ``value``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        del node[last]

    return mutate


def _append(path: str, value: Any) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node.append(copy.deepcopy(value))

    return mutate


def _non_canonical_x(path: str) -> Mutation:
    """The key at ``path`` with its ``x`` written with other (ignored) padding bits: the same
    32 bytes, which another subsystem could otherwise register as a second key."""

    def mutate(data: dict[str, Any]) -> None:
        node: Any = data
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        # The last of 43 characters carries 4 of the key's bits and 2 padding bits (zero in
        # the canonical form): the next character of the alphabet sets one of them.
        alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
        node["x"] = node["x"][:-1] + alphabet[alphabet.index(node["x"][-1]) + 1]

    return mutate


SUBSYSTEM_KEYS = "members.1.subsystems.0.keys"
PRIVATE = {**public_jwk(generate_key("leak")), "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}

INVALID: list[Any] = [
    # top level
    pytest.param(
        _delete("instance"), "top level", "missing required key 'instance'", id="no-instance"
    ),
    pytest.param(
        _delete("members"), "top level", "missing required key 'members'", id="no-members"
    ),
    pytest.param(_set("extra", 1), "top level", "unknown key 'extra'", id="unknown-top-key"),
    pytest.param(
        _set("instance", "I D"), "instance", "not a valid instance code", id="bad-instance"
    ),
    pytest.param(
        _set("members", "x"), "members", "must be an array of tables", id="members-not-array"
    ),
    # members and subsystems
    pytest.param(
        _delete("members.0.name"), "members[0]", "missing required key 'name'", id="member-no-name"
    ),
    pytest.param(
        _set("members.0.nmae", "x"), "members[0]", "unknown key 'nmae'", id="member-unknown-key"
    ),
    pytest.param(
        _set("members.0.name", " "),
        "members[0]",
        "name must be a non-empty string",
        id="member-blank-name",
    ),
    pytest.param(
        _set("members.0.code", "DUK CAPIL"),
        "members[0]",
        "code 'DUK CAPIL' must be",
        id="member-bad-code",
    ),
    pytest.param(
        _set("members.0.class", ".."), "members[0]", "class '..' must be", id="member-bad-class"
    ),
    pytest.param(
        _append("members", {"class": "GOV", "code": "DUKCAPIL", "name": "again"}),
        "members[4] (ID/GOV/DUKCAPIL)",
        "duplicate member",
        id="duplicate-member",
    ),
    pytest.param(
        _append("members.0.subsystems", {"code": "adminduk"}),
        "members[0].subsystems[1] (ID/GOV/DUKCAPIL/adminduk)",
        "duplicate subsystem",
        id="duplicate-subsystem",
    ),
    pytest.param(
        _set("members.0.subsystems.0", "x"),
        "members[0].subsystems[0]",
        "must be a table",
        id="subsystem-not-table",
    ),
    pytest.param(
        _set("members.0.subsystems.0.keyz", []),
        "members[0].subsystems[0]",
        "unknown key 'keyz'",
        id="subsystem-unknown-key",
    ),
    # keys
    pytest.param(
        _append(SUBSYSTEM_KEYS, {**KEY_C, "kid": "perizinan-1"}),
        "members[1].subsystems[0] (ID/GOV/DPMPTSP-DKI/perizinan).keys[2] (kid 'perizinan-1')",
        "duplicate kid",
        id="duplicate-kid",
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, {**KEY_A, "kid": "other"}),
        "keys[2] (kid 'other')",
        "same key as members[1].subsystems[0] (ID/GOV/DPMPTSP-DKI/perizinan).keys[0]",
        id="same-key-twice",
    ),
    pytest.param(
        _append("members.2.subsystems.0.keys", KEY_A),
        "members[2].subsystems[0] (ID/COM/BANK-X/kyc).keys[1]",
        "same key as members[1]",
        id="key-shared-by-two-clients",
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, PRIVATE),
        "keys[2]",
        "contains a private key ('d')",
        id="private-key",
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, {"kty": "RSA", "n": "x", "e": "AQAB"}),
        "keys[2]",
        "unknown JWK member",
        id="rsa-key",
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, {**KEY_C, "kty": "EC"}), "keys[2]", "kty must be 'OKP'", id="ec-key"
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, {**KEY_C, "crv": "X25519"}),
        "keys[2]",
        "crv must be 'Ed25519'",
        id="x25519-key",
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, {**KEY_C, "x": "abc"}), "keys[2]", "x must be", id="bad-x"
    ),
    pytest.param(
        _append(SUBSYSTEM_KEYS, "not a table"), "keys[2]", "must be a table", id="key-not-table"
    ),
    # services
    pytest.param(
        _delete("services.0.adapter"),
        f"services[0] ({KTP})",
        "missing required key 'adapter'",
        id="service-no-adapter",
    ),
    pytest.param(
        _set("services.0.adaptor", "x"),
        f"services[0] ({KTP})",
        "unknown key 'adaptor'",
        id="service-unknown-key",
    ),
    pytest.param(
        _set("services.0.id", "ID/GOV/DUKCAPIL/adminduk"),
        "services[0] (ID/GOV/DUKCAPIL/adminduk)",
        "id must be INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE",
        id="service-id-too-short",
    ),
    pytest.param(
        _set("services.0.id", "ID/GOV/DUKCAPIL/adminduk/k tp"),
        "services[0] (ID/GOV/DUKCAPIL/adminduk/k tp)",
        "id must be",
        id="service-id-space",
    ),
    pytest.param(_set("services.0.id", 7), "services[0]", "id must be", id="service-id-not-string"),
    pytest.param(
        _set("services.0.id", "EE/GOV/DUKCAPIL/adminduk/ktp"),
        "services[0] (EE/GOV/DUKCAPIL/adminduk/ktp)",
        "service id 'EE/GOV/DUKCAPIL/adminduk/ktp' is not in instance 'ID'",
        id="service-other-instance",
    ),
    pytest.param(
        _set("services.0.id", "ID/GOV/DUKCAPIL/nope/ktp"),
        "services[0] (ID/GOV/DUKCAPIL/nope/ktp)",
        "provider subsystem 'ID/GOV/DUKCAPIL/nope' is not declared",
        id="provider-not-declared",
    ),
    pytest.param(
        _set("services.1.id", KTP),
        f"services[1] ({KTP})",
        "duplicate service id",
        id="duplicate-service",
    ),
    pytest.param(
        _set("services.0.schema", "sim"),
        f"services[0] ({KTP})",
        "schema 'sim' is not one of akta-lahir, kk, ktp",
        id="unknown-schema",
    ),
    pytest.param(
        _set("services.0.adapter", "foo"),
        f"services[0] ({KTP})",
        "adapter 'foo' is not one of capil, dukcapil",
        id="unknown-adapter",
    ),
    pytest.param(
        _set("services.0.backend", "ftp://h/x"),
        f"services[0] ({KTP})",
        "must be an http:// or https:// URL",
        id="backend-ftp",
    ),
    pytest.param(
        _set("services.0.backend", "http://"),
        f"services[0] ({KTP})",
        "must be an http:// or https:// URL",
        id="backend-no-host",
    ),
    pytest.param(
        _set("services.0.backend", "127.0.0.1:8101"),
        f"services[0] ({KTP})",
        "http:// or https://",
        id="backend-no-scheme",
    ),
    pytest.param(
        _set("services.0.backend", "http://h:99999"),
        f"services[0] ({KTP})",
        "http:// or https://",
        id="backend-bad-port",
    ),
    pytest.param(
        _set("services.0.backend", "http://u:p@h"),
        f"services[0] ({KTP})",
        "must not contain credentials",
        id="backend-credentials",
    ),
    pytest.param(
        _set("services.0.backend", "http://h/?a=1"),
        f"services[0] ({KTP})",
        "query or fragment",
        id="backend-query",
    ),
    pytest.param(
        _set("services.0.backend", "http://bücher.example/api"),
        f"services[0] ({KTP})",
        "must be written in ASCII without spaces",
        id="backend-non-ascii-host",
    ),
    pytest.param(
        _set("services.0.backend", "http://h/a b"),
        f"services[0] ({KTP})",
        "must be written in ASCII without spaces",
        id="backend-space-in-path",
    ),
    pytest.param(
        _set("members.0.subsystems.0.webhook", "https://h/hooks/ü"),
        "members[0].subsystems[0]",
        "webhook 'https://h/hooks/ü' must be written in ASCII without spaces",
        id="webhook-non-ascii-path",
    ),
    pytest.param(
        _set("members.0.subsystems.0.webhook", "ftp://h/hooks"),
        "members[0].subsystems[0]",
        "webhook 'ftp://h/hooks' must be an http:// or https:// URL",
        id="webhook-not-http",
    ),
    pytest.param(
        _set("services.0.backend", 8101),
        f"services[0] ({KTP})",
        "backend must be a URL string",
        id="backend-not-string",
    ),
    pytest.param(
        _set("services.0.timeout", 0),
        f"services[0] ({KTP})",
        "timeout 0 is out of range",
        id="timeout-zero",
    ),
    pytest.param(
        _set("services.0.timeout", -1.5),
        f"services[0] ({KTP})",
        "timeout -1.5 is out of range",
        id="timeout-negative",
    ),
    pytest.param(
        _set("services.0.timeout", 61),
        f"services[0] ({KTP})",
        "timeout 61 is out of range",
        id="timeout-too-long",
    ),
    pytest.param(
        _set("services.0.timeout", "5"),
        f"services[0] ({KTP})",
        "timeout must be a number",
        id="timeout-string",
    ),
    pytest.param(
        _set("services.0.timeout", True),
        f"services[0] ({KTP})",
        "timeout must be a number",
        id="timeout-bool",
    ),
    pytest.param(
        _set("services.0.clients", PERIZINAN),
        f"services[0] ({KTP})",
        "clients must be an array",
        id="clients-not-array",
    ),
    pytest.param(
        _append("services.0.clients", "ID/GOV/NOPE/x"),
        f"services[0] ({KTP})",
        "client 'ID/GOV/NOPE/x' is not a declared subsystem",
        id="client-not-declared",
    ),
    pytest.param(
        _append("services.0.clients", "EE/GOV/DPMPTSP-DKI/perizinan"),
        f"services[0] ({KTP})",
        "client 'EE/GOV/DPMPTSP-DKI/perizinan' is not in instance 'ID'",
        id="client-other-instance",
    ),
    pytest.param(
        _append("services.0.clients", "ID/GOV/DPMPTSP-DKI"),
        f"services[0] ({KTP})",
        "client 'ID/GOV/DPMPTSP-DKI' is not INSTANCE/CLASS/MEMBER/SUBSYSTEM",
        id="client-bad-id",
    ),
    pytest.param(
        _append("services.0.clients", PERIZINAN),
        f"services[0] ({KTP})",
        f"client '{PERIZINAN}' is listed twice",
        id="client-twice",
    ),
    # purposes
    pytest.param(
        _delete("purposes.0.text_en"),
        "purposes[0] (perizinan-berusaha)",
        "missing required key 'text_en'",
        id="purpose-no-text",
    ),
    pytest.param(
        _set("purposes.0.code", "Izin Usaha"),
        "purposes[0] (Izin Usaha)",
        "code must be lower-case",
        id="purpose-bad-code",
    ),
    pytest.param(
        _set("services.2.adapter", "dukcapil"),
        "services[2]",
        "adapter 'dukcapil' does not serve schema 'akta-lahir'",
        id="adapter-not-for-schema",
    ),
    pytest.param(
        _set("members.1.subsystems.0.roles", [["auditor"]]),
        "members[1].subsystems[0]",
        "is not one of",
        id="role-not-a-string",
    ),
    pytest.param(
        _set("members.1.subsystems.0.roles", "auditor"),
        "members[1].subsystems[0]",
        "must be an array of role names",
        id="roles-not-an-array",
    ),
    pytest.param(
        _set(f"{SUBSYSTEM_KEYS}.0.alg", ["Ed25519"]), "keys[0]", "alg must be", id="alg-a-list"
    ),
    pytest.param(
        _set(f"{SUBSYSTEM_KEYS}.0.key_ops", [["sign"]]),
        "keys[0]",
        "key_ops may only list",
        id="key-ops-nested",
    ),
    pytest.param(
        _non_canonical_x(f"{SUBSYSTEM_KEYS}.0"),
        "keys[0]",
        "canonical base64url",
        id="key-x-not-canonical",
    ),
    pytest.param(
        _append("purposes", {"code": "perizinan-berusaha", "text_id": "a", "text_en": "b"}),
        "purposes[1] (perizinan-berusaha)",
        "duplicate purpose code",
        id="duplicate-purpose",
    ),
]


class TestInvalidRegistry:
    @pytest.mark.parametrize(("mutate", "entry", "problem"), INVALID)
    def test_names_file_entry_and_problem(
        self, tmp_path: Path, mutate: Mutation, entry: str, problem: str
    ) -> None:
        data = valid_data()
        mutate(data)
        with pytest.raises(RegistryError) as info:
            load(tmp_path, data)
        message = info.value.detail
        prefix = f"{tmp_path / 'registry.toml'}: "
        lines = message.splitlines()
        assert all(line.startswith(prefix) for line in lines), message
        assert any(entry in line and problem in line for line in lines), (
            f"no line names {entry!r} and {problem!r} in:\n{message}"
        )
        assert PRIVATE["d"] not in message

    def test_reports_every_problem_at_once(self, tmp_path: Path) -> None:
        data = valid_data()
        data["services"][0]["adapter"] = "foo"
        data["services"][2]["timeout"] = 100
        with pytest.raises(RegistryError) as info:
            load(tmp_path, data)
        lines = info.value.detail.splitlines()
        assert len(lines) == 2
        assert "services[0]" in lines[0]
        assert "services[2]" in lines[1]

    def test_toml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.toml"
        path.write_text('instance = "ID"\n\n[[members]]\nclass = GOV\n')
        with pytest.raises(RegistryError) as info:
            load_registry(path, schema_codes=SCHEMAS, adapter_names=ADAPTERS)
        assert info.value.detail.startswith(f"{path}: invalid TOML:")
        assert "line 4" in info.value.detail

    def test_missing_file(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.toml"
        with pytest.raises(RegistryError, match=r"registry\.toml: cannot read"):
            load_registry(path, schema_codes=SCHEMAS, adapter_names=ADAPTERS)

    def test_not_utf8(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.toml"
        path.write_bytes(b'instance = "\xff"\n')
        with pytest.raises(
            RegistryError, match=r"registry\.toml: (the registry is not UTF-8|invalid TOML)"
        ):
            load_registry(path, schema_codes=SCHEMAS, adapter_names=ADAPTERS)

    def test_problem_type(self) -> None:
        assert RegistryError.problem_type == "registry-invalid"
