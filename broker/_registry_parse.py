"""Validating registry data: every problem found, with its file and entry, before giving up."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from broker._registry_model import (
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
    ROLES,
    Member,
    Purpose,
    Registry,
    Service,
    Subsystem,
    is_client_id,
    is_id_part,
    is_purpose_code,
    is_service_id,
    shorten,
)
from broker.errors import InvalidKey, RegistryError
from broker.keys import check_public_jwk, thumbprint

__all__ = ["RegistryParser"]

#: A URL's host, port and path as the HTTP client sends them: visible ASCII.
_SENDABLE = re.compile(r"[\x21-\x7e]+")


def _label(entry: str, identifier: str) -> str:
    """``services[2] (ID/GOV/X/y/z)``: the entry and, for humans, what it names."""
    shown = identifier if len(identifier) <= 100 else identifier[:96] + "..."
    return f"{entry} ({shown.encode('unicode_escape').decode('ascii')})"


class RegistryParser:
    """Collects every problem in the registry data before giving up."""

    def __init__(
        self, source: str, *, schema_codes: Collection[str], adapter_names: Collection[str]
    ) -> None:
        self.source = source
        self.schema_codes = sorted(schema_codes)
        self.adapter_names = sorted(adapter_names)
        # Given as a mapping (adapters.ADAPTER_SERVICES), the schema codes each adapter serves:
        # a service whose adapter cannot serve its schema would fail every exchange.
        self.adapter_services = adapter_names if isinstance(adapter_names, Mapping) else None
        self.problems: list[str] = []
        self.instance = ""
        self.members_read = False
        self.member_ids: set[str] = set()
        self.subsystem_ids: set[str] = set()
        self.key_owner: dict[str, str] = {}  # x → entry that registered it

    def problem(self, entry: str, message: str) -> None:
        self.problems.append(
            f"{self.source}: {entry}: {message}" if entry else f"{self.source}: {message}"
        )

    def parse(self, data: Mapping[str, Any]) -> Registry:
        self.table(
            "top level", data, required={"instance", "members"}, optional={"services", "purposes"}
        )
        instance = data.get("instance")
        if isinstance(instance, str) and is_id_part(instance):
            self.instance = instance
        elif "instance" in data:
            self.problem("instance", f"{shorten(instance)} is not a valid instance code")
        if not self.instance:  # every identifier below starts with it
            raise RegistryError("\n".join(self.problems))
        # Without a readable members array, "not declared" would be said of every reference.
        self.members_read = isinstance(data.get("members"), list)
        members = [
            member
            for index, raw in enumerate(self.array("members", data.get("members", [])))
            if (member := self.member(index, raw)) is not None
        ]
        # Services refer to subsystems, so all members are read first.
        services: list[Service] = []
        for index, raw in enumerate(self.array("services", data.get("services", []))):
            service = self.service(index, raw)
            if service is not None:
                if any(s.id == service.id for s in services):
                    self.problem(f"services[{index}] ({service.id})", "duplicate service id")
                else:
                    services.append(service)
        purposes: list[Purpose] = []
        for index, raw in enumerate(self.array("purposes", data.get("purposes", []))):
            purpose = self.purpose(index, raw)
            if purpose is not None:
                if any(p.code == purpose.code for p in purposes):
                    self.problem(f"purposes[{index}] ({purpose.code})", "duplicate purpose code")
                else:
                    purposes.append(purpose)
        if self.problems:
            raise RegistryError("\n".join(self.problems))
        return Registry(
            instance=self.instance, members=members, services=services, purposes=purposes
        )

    # -- entries -------------------------------------------------------------------------

    def member(self, index: int, raw: Any) -> Member | None:
        entry = f"members[{index}]"
        if isinstance(raw, Mapping) and all(isinstance(raw.get(k), str) for k in ("class", "code")):
            entry = _label(entry, f"{self.instance}/{raw['class']}/{raw['code']}")
        # A member with a problem still declares its subsystems, so the services naming them
        # do not report a second, misleading problem.
        ok = self.table(entry, raw, required={"class", "code", "name"}, optional={"subsystems"})
        if not isinstance(raw, Mapping):
            return None
        member_class = self.part(entry, raw, "class")
        code = self.part(entry, raw, "code")
        name = self.text(entry, raw, "name")
        if member_class is None or code is None:
            return None
        member_id = f"{self.instance}/{member_class}/{code}"
        if member_id in self.member_ids:
            self.problem(entry, "duplicate member")
            return None
        self.member_ids.add(member_id)
        subsystems = []
        for sub_index, sub_raw in enumerate(
            self.array(f"{entry}.subsystems", raw.get("subsystems", []))
        ):
            sub = self.subsystem(f"members[{index}].subsystems[{sub_index}]", member_id, sub_raw)
            if sub is not None:
                subsystems.append(sub)
        if not ok or name is None:
            return None
        return Member(member_id, member_class, code, name, tuple(subsystems))

    def subsystem(self, entry: str, member_id: str, raw: Any) -> Subsystem | None:
        if isinstance(raw, Mapping) and isinstance(raw.get("code"), str):
            entry = _label(entry, f"{member_id}/{raw['code']}")
        ok = self.table(
            entry, raw, required={"code"}, optional={"keys", "name", "roles", "webhook"}
        )
        if not isinstance(raw, Mapping):
            return None
        code = self.part(entry, raw, "code")
        if code is None:
            return None
        if "name" in raw and self.text(entry, raw, "name") is None:
            ok = False
        sub_id = f"{member_id}/{code}"
        if sub_id in self.subsystem_ids:
            self.problem(entry, "duplicate subsystem")
            return None
        self.subsystem_ids.add(sub_id)
        keys: dict[str, Mapping[str, str]] = {}
        for key_index, jwk_raw in enumerate(self.array(f"{entry}.keys", raw.get("keys", []))):
            key_entry = f"{entry}.keys[{key_index}]"
            if not isinstance(jwk_raw, Mapping):
                self.problem(key_entry, "a key must be a table (an inline JWK)")
                continue
            try:
                jwk = check_public_jwk(jwk_raw)
            except InvalidKey as exc:
                self.problem(key_entry, f"invalid key: {exc.detail}")
                continue
            kid = jwk.setdefault("kid", thumbprint(jwk))
            key_entry = f"{key_entry} (kid {kid!r})"
            if kid in keys:
                self.problem(key_entry, "duplicate kid in this subsystem")
                continue
            # One key, one subsystem: a signature (and a consent token's cnf.jkt) then names
            # exactly one client.
            if jwk["x"] in self.key_owner:
                self.problem(key_entry, f"same key as {self.key_owner[jwk['x']]}")
                continue
            self.key_owner[jwk["x"]] = key_entry
            keys[kid] = MappingProxyType(jwk)
        roles: set[str] = set()
        for role in self.array(f"{entry}.roles", raw.get("roles", []), of="role names"):
            if not isinstance(role, str) or role not in ROLES:
                self.problem(
                    entry, f"role {shorten(role)} is not one of {', '.join(sorted(ROLES))}"
                )
                ok = False
            else:
                roles.add(role)
        webhook = None
        if "webhook" in raw:
            # Called as written: a trailing slash may be part of the receiver's route.
            webhook = self.backend(f"{entry}.webhook", raw["webhook"], kind="webhook")
            ok = ok and webhook is not None
        return Subsystem(sub_id, MappingProxyType(keys), frozenset(roles), webhook) if ok else None

    def service(self, index: int, raw: Any) -> Service | None:
        entry = f"services[{index}]"
        if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
            entry = _label(entry, raw["id"])
        ok = self.table(
            entry,
            raw,
            required={"id", "schema", "adapter", "backend"},
            optional={"timeout", "clients", "description"},
        )
        if not isinstance(raw, Mapping):
            return None
        service_id = raw.get("id")
        provider = code = ""
        if "id" not in raw:
            pass
        elif not isinstance(service_id, str) or not is_service_id(service_id):
            self.problem(
                entry,
                "id must be INSTANCE/CLASS/MEMBER/SUBSYSTEM/SERVICE "
                "(letters, digits, '.', '_', '-')",
            )
            ok = False
        else:
            provider, code = service_id.rsplit("/", 1)
            if not self.in_instance(entry, "service id", service_id):
                ok = False
            elif self.members_read and provider not in self.subsystem_ids:
                self.problem(entry, f"provider subsystem {provider!r} is not declared")
                ok = False
        schema = raw.get("schema")
        if "schema" in raw and schema not in self.schema_codes:
            self.problem(
                entry, f"schema {shorten(schema)} is not one of {', '.join(self.schema_codes)}"
            )
            ok = False
        adapter = raw.get("adapter")
        if "adapter" in raw and adapter not in self.adapter_names:
            self.problem(
                entry, f"adapter {shorten(adapter)} is not one of {', '.join(self.adapter_names)}"
            )
            ok = False
        elif (
            self.adapter_services is not None
            and adapter in self.adapter_services
            and schema in self.schema_codes
            and schema not in self.adapter_services[adapter]
        ):
            served = ", ".join(sorted(self.adapter_services[adapter]))
            self.problem(
                entry, f"adapter {adapter!r} does not serve schema {schema!r} (it serves {served})"
            )
            ok = False
        backend = self.backend(entry, raw["backend"]) if "backend" in raw else None
        timeout = self.timeout(entry, raw.get("timeout", DEFAULT_TIMEOUT))
        clients = self.clients(entry, raw.get("clients", []))
        description = self.text(entry, raw, "description") if "description" in raw else ""
        if (
            not ok
            or not isinstance(service_id, str)
            or not isinstance(schema, str)
            or not isinstance(adapter, str)
            or backend is None
            or timeout is None
            or clients is None
            or description is None
        ):
            return None
        return Service(
            id=service_id,
            code=code,
            provider=provider,
            schema=schema,
            adapter=adapter,
            backend=backend,
            timeout=timeout,
            clients=clients,
            description=description,
        )

    def purpose(self, index: int, raw: Any) -> Purpose | None:
        entry = f"purposes[{index}]"
        if isinstance(raw, Mapping) and isinstance(raw.get("code"), str):
            entry = _label(entry, raw["code"])
        ok = self.table(
            entry,
            raw,
            required={"code", "text_id", "text_en"},
            optional={"legal_basis", "clients"},
        )
        if not isinstance(raw, Mapping):
            return None
        code = raw.get("code")
        if "code" not in raw:
            pass
        elif not isinstance(code, str) or not is_purpose_code(code):
            self.problem(entry, "code must be lower-case letters, digits, '.', '_' or '-'")
            code = None
        text_id = self.text(entry, raw, "text_id")
        text_en = self.text(entry, raw, "text_en")
        legal_basis = self.text(entry, raw, "legal_basis") if "legal_basis" in raw else ""
        clients = self.clients(entry, raw.get("clients", []))
        if (
            not ok
            or code is None
            or text_id is None
            or text_en is None
            or legal_basis is None
            or clients is None
        ):
            return None
        return Purpose(code, text_id, text_en, legal_basis, clients)

    # -- values --------------------------------------------------------------------------

    def backend(self, entry: str, value: Any, *, kind: str = "backend") -> str | None:
        """A backend's base URL (a trailing slash dropped: paths are joined to it), or a
        webhook's URL (``kind``), called as written."""
        if not isinstance(value, str):
            self.problem(entry, f"{kind} must be a URL string")
            return None
        try:
            url = urlsplit(value)
            url.port  # noqa: B018 - raises ValueError for a port that is not a number in range
        except ValueError:
            url = None
        if url is None or url.scheme not in {"http", "https"} or not url.hostname:
            self.problem(entry, f"{kind} {shorten(value)} must be an http:// or https:// URL")
            return None
        if url.username is not None or url.password is not None:
            self.problem(entry, f"{kind} URL must not contain credentials")
            return None
        if url.query or url.fragment:
            self.problem(entry, f"{kind} URL must not have a query or fragment")
            return None
        if not _SENDABLE.fullmatch(url.netloc + url.path):
            # What goes on the wire as written (Host header, request target, and the signed
            # @target-uri of a notification): no spaces, nothing outside ASCII.
            self.problem(
                entry,
                f"{kind} {shorten(value)} must be written in ASCII without spaces "
                "(host names in their xn-- form, paths percent-encoded)",
            )
            return None
        return value.rstrip("/") if kind == "backend" else value

    def timeout(self, entry: str, value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(entry, f"timeout must be a number of seconds, not {shorten(value)}")
            return None
        if not 0 < value <= MAX_TIMEOUT:
            self.problem(
                entry,
                f"timeout {value} is out of range (more than 0, at most {MAX_TIMEOUT:g} seconds)",
            )
            return None
        return float(value)

    def clients(self, entry: str, value: Any) -> frozenset[str] | None:
        if not isinstance(value, list):
            self.problem(entry, "clients must be an array of subsystem ids")
            return None
        ok = True
        seen: set[str] = set()
        for client in value:
            if not isinstance(client, str) or not is_client_id(client):
                self.problem(
                    entry, f"client {shorten(client)} is not INSTANCE/CLASS/MEMBER/SUBSYSTEM"
                )
                ok = False
            elif not self.in_instance(entry, "client", client):
                ok = False
            elif self.members_read and client not in self.subsystem_ids:
                self.problem(entry, f"client {client!r} is not a declared subsystem")
                ok = False
            elif client in seen:
                self.problem(entry, f"client {client!r} is listed twice")
                ok = False
            else:
                seen.add(client)
        return frozenset(seen) if ok else None

    def in_instance(self, entry: str, what: str, identifier: str) -> bool:
        if identifier.split("/", 1)[0] != self.instance:
            self.problem(entry, f"{what} {identifier!r} is not in instance {self.instance!r}")
            return False
        return True

    def part(self, entry: str, raw: Mapping[str, Any], key: str) -> str | None:
        if key not in raw:  # table() has said so
            return None
        value = raw[key]
        if not isinstance(value, str) or not is_id_part(value):
            self.problem(
                entry,
                f"{key} {shorten(value)} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit",
            )
            return None
        return value

    def text(self, entry: str, raw: Mapping[str, Any], key: str) -> str | None:
        if key not in raw:  # table() has said so
            return None
        value = raw[key]
        if not isinstance(value, str) or not value.strip():
            self.problem(entry, f"{key} must be a non-empty string")
            return None
        return value

    def array(self, entry: str, value: Any, *, of: str = "tables") -> list[Any]:
        if not isinstance(value, list):
            self.problem(entry, f"must be an array of {of}")
            return []
        return value

    def table(self, entry: str, raw: Any, *, required: set[str], optional: set[str]) -> bool:
        """Check that ``raw`` is a table with all ``required`` and no unknown keys."""
        if not isinstance(raw, Mapping):
            self.problem(entry, "must be a table")
            return False
        ok = True
        for key in sorted(required - set(raw)):
            self.problem(entry, f"missing required key {key!r}")
            ok = False
        allowed = required | optional
        for key in sorted(set(raw) - allowed):
            self.problem(entry, f"unknown key {key!r} (allowed: {', '.join(sorted(allowed))})")
            ok = False
        return ok
