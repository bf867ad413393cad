"""The registry: members, their subsystems and keys, services and access rights, purposes.

It is one declarative TOML file, read and fully validated at start-up::

    instance = "ID"

    [[members]]
    class = "GOV"
    code = "DUKCAPIL"
    name = "Direktorat Jenderal Kependudukan dan Pencatatan Sipil"

      [[members.subsystems]]
      code = "adminduk"                       # a pure provider needs no keys

    [[members]]
    class = "GOV"
    code = "DPMPTSP-DKI"
    name = "DPMPTSP Provinsi DKI Jakarta"

      [[members.subsystems]]
      code = "perizinan"
      keys = [{ kty = "OKP", crv = "Ed25519", x = "11qYAYKx...", kid = "perizinan-2025" }]

    [[services]]
    id = "ID/GOV/DUKCAPIL/adminduk/ktp"       # provider subsystem + service code
    schema = "ktp"
    adapter = "dukcapil"
    backend = "http://127.0.0.1:8101"
    timeout = 5.0                             # seconds; optional, default 5
    clients = ["ID/GOV/DPMPTSP-DKI/perizinan"]  # access rights: deny by default

    [[purposes]]
    code = "perizinan-berusaha"
    text_id = "Verifikasi identitas pemohon izin usaha"
    text_en = "Verifying the identity of a business permit applicant"
    legal_basis = "PP 5/2021"                 # optional
    clients = ["ID/GOV/DPMPTSP-DKI/perizinan"]  # who may name it: deny by default

Every problem is reported with the file, the entry (``services[2] (ID/GOV/X/y/z)``, indexes
count from 0) and what is wrong, all problems at once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import tomli_w

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
    is_service_id,
)
from broker._registry_parse import RegistryParser
from broker.errors import RegistryError
from broker.keys import write_atomic

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "ROLES",
    "Member",
    "Purpose",
    "Registry",
    "Service",
    "Subsystem",
    "dump_registry",
    "is_client_id",
    "is_service_id",
    "load_registry",
    "parse_registry",
    "write_registry",
]


def load_registry(
    path: str | Path, *, schema_codes: Collection[str], adapter_names: Collection[str]
) -> Registry:
    """Read and validate the registry file; :class:`RegistryError` lists every problem."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the registry: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: the registry is not UTF-8 text: {exc.reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"{path}: invalid TOML: {exc}") from exc
    return parse_registry(
        data, source=str(path), schema_codes=schema_codes, adapter_names=adapter_names
    )


def parse_registry(
    data: Mapping[str, Any],
    *,
    source: str = "<registry>",
    schema_codes: Collection[str],
    adapter_names: Collection[str],
) -> Registry:
    """Validate already-parsed registry data (as TOML would give it) into a :class:`Registry`.

    ``source`` names the data in error messages (the file name).
    """
    return RegistryParser(source, schema_codes=schema_codes, adapter_names=adapter_names).parse(
        data
    )


def dump_registry(data: Mapping[str, Any], *, header: str | None = None) -> str:
    """Registry data as TOML text, optionally under a ``#`` comment ``header``."""
    text = tomli_w.dumps(data)
    if header:
        comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        text = comment + "\n" + text
    return text


def write_registry(path: str | Path, data: Mapping[str, Any], *, header: str | None = None) -> None:
    """Write registry data to ``path`` atomically (mode 0644: it holds public keys only)."""
    write_atomic(Path(path), dump_registry(data, header=header).encode(), mode=0o644)
