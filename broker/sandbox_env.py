"""A whole sandbox world on loopback: keys, registry, two agency backends and a broker,
each a real process. The demo plays its story on it; the end-to-end tests use it too."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
from joserfc.jwk import OKPKey

from adapters.sandbox.idp import DevIdentityProvider
from broker.keys import generate_key, load_private_jwk, public_jwk, save_private_jwk
from broker.registry import write_registry

__all__ = [
    "AUDITOR",
    "PERMIT_OFFICE",
    "TAX_OFFICE",
    "SandboxWorld",
    "auditor_member",
    "free_port",
    "free_ports",
]

PERMIT_OFFICE = "ID/GOV/DPMPTSP-DKI/perizinan"
TAX_OFFICE = "ID/GOV/BAPENDA-DKI/pajak"
#: The state audit board's audit subsystem: holds the auditor role, calls /v1/audit.
AUDITOR = "ID/GOV/BPK/audit"
KTP = "ID/GOV/DUKCAPIL/adminduk/ktp"
KK = "ID/GOV/DUKCAPIL/adminduk/kk"
AKTA = "ID/GOV/DISDUKCAPIL-JKS/capil/akta-lahir"
CITIZEN_AUDIENCE = "simpul-citizen"


def free_port() -> int:
    """A loopback port nobody is listening on right now."""
    return free_ports(1)[0]


def free_ports(count: int, *, taken: Sequence[int] = ()) -> list[int]:
    """``count`` distinct loopback ports nobody is listening on right now, none in ``taken``.

    The sockets stay bound until all are chosen: one at a time, the kernel may hand out the
    same port twice, and two servers of one world would then race for it (the loser's health
    check answered by the winner).
    """
    sockets: list[socket.socket] = []
    try:
        ports: list[int] = []
        while len(ports) < count:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
            if port not in taken:
                ports.append(port)
        return ports
    finally:
        for sock in sockets:
            sock.close()


def _names_databases(answer: httpx.Response) -> bool:
    """Whether a health answer is a broker's, which names its databases."""
    try:
        body = answer.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "database" in body


def _key(path: Path, kid: str) -> OKPKey:
    if path.exists():
        return load_private_jwk(path)
    key = generate_key(kid)
    save_private_jwk(key, path)
    return key


def registry_data(
    *, permit_key: OKPKey, tax_key: OKPKey, dukcapil_url: str, capil_url: str
) -> dict[str, Any]:
    """The demo registry: two providers, two consumers, three services, a purpose catalogue."""
    return {
        "instance": "ID",
        "members": [
            {
                "class": "GOV",
                "code": "DUKCAPIL",
                "name": "Direktorat Jenderal Kependudukan dan Pencatatan Sipil",
                "subsystems": [{"code": "adminduk", "keys": []}],
            },
            {
                "class": "GOV",
                "code": "DISDUKCAPIL-JKS",
                "name": "Suku Dinas Kependudukan dan Pencatatan Sipil Kota Jakarta Selatan",
                "subsystems": [{"code": "capil", "keys": []}],
            },
            {
                "class": "GOV",
                "code": "DPMPTSP-DKI",
                "name": "Dinas Penanaman Modal dan PTSP Provinsi DKI Jakarta",
                "subsystems": [{"code": "perizinan", "keys": [public_jwk(permit_key)]}],
            },
            {
                "class": "GOV",
                "code": "BAPENDA-DKI",
                "name": "Badan Pendapatan Daerah Provinsi DKI Jakarta",
                "subsystems": [{"code": "pajak", "keys": [public_jwk(tax_key)]}],
            },
        ],
        "services": [
            {
                "id": KTP,
                "schema": "ktp",
                "adapter": "dukcapil",
                "backend": dukcapil_url,
                "timeout": 2.0,
                "clients": [PERMIT_OFFICE],
            },
            {
                "id": KK,
                "schema": "kk",
                "adapter": "dukcapil",
                "backend": dukcapil_url,
                "timeout": 2.0,
                "clients": [PERMIT_OFFICE],
            },
            {
                "id": AKTA,
                "schema": "akta-lahir",
                "adapter": "capil",
                "backend": capil_url,
                "timeout": 2.0,
                "clients": [PERMIT_OFFICE],
            },
        ],
        "purposes": [
            {
                "code": "perizinan-berusaha",
                "text_id": "Verifikasi identitas pemohon perizinan berusaha",
                "text_en": "Verifying the identity of a business-permit applicant",
                "legal_basis": (
                    "PP 5/2021 tentang Penyelenggaraan Perizinan Berusaha Berbasis Risiko"
                ),
                "clients": [PERMIT_OFFICE],
            },
            {
                "code": "pajak-daerah",
                "text_id": "Pendataan wajib pajak daerah",
                "text_en": "Registering regional taxpayers",
                "legal_basis": "UU 1/2022 tentang Hubungan Keuangan Pusat dan Daerah",
                "clients": [TAX_OFFICE],
            },
        ],
    }


def auditor_member(key: OKPKey) -> dict[str, Any]:
    """The audit board as a registry member: one subsystem holding the auditor role."""
    return {
        "class": "GOV",
        "code": "BPK",
        "name": "Badan Pemeriksa Keuangan Republik Indonesia",
        "subsystems": [{"code": "audit", "keys": [public_jwk(key)], "roles": ["auditor"]}],
    }


@dataclass
class SandboxWorld:
    """Keys, registry and processes under one data directory."""

    data_dir: Path
    permit_key: OKPKey
    tax_key: OKPKey
    idp: DevIdentityProvider
    dukcapil_port: int
    capil_port: int
    broker_port: int
    subject_secret: str
    #: Where the broker keeps its state; None means SQLite files under ``data_dir``.
    database_url: str | None = None
    #: Where the broker keeps its audit log; None means ``data_dir/audit.db``.
    external_audit_database_url: str | None = None
    extra_broker_ports: list[int] = field(default_factory=list)
    #: More ``SIMPUL_*`` settings for the broker (tests shorten the notification timings).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The auditor subsystem's key (``AUDITOR``, role "auditor").
    auditor_key: OKPKey | None = None
    _procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        data_dir: Path,
        *,
        extra_services: Sequence[Mapping[str, Any]] = (),
        webhooks: Mapping[str, str] | None = None,
    ) -> SandboxWorld:
        """Write keys and the registry into ``data_dir`` (keys are reused if present).

        ``extra_services`` are appended to the registry (tests add one whose backend is down);
        ``webhooks`` maps subsystem ids to the URL their consent notifications go to.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = data_dir / "keys"
        keys.mkdir(exist_ok=True)
        _key(data_dir / "broker-key.jwk", "simpul-broker-1")
        permit = _key(keys / "dpmptsp-dki.jwk", "dpmptsp-dki-1")
        tax = _key(keys / "bapenda-dki.jwk", "bapenda-dki-1")
        auditor = _key(keys / "bpk-audit.jwk", "bpk-audit-1")
        idp_key = _key(keys / "dev-idp.jwk", "dev-idp-1")
        idp = DevIdentityProvider(key=idp_key)
        (data_dir / "idp-jwks.json").write_text(json.dumps(idp.jwks(), indent=2))
        dukcapil_port, capil_port, broker_port = free_ports(3)
        world = cls(
            data_dir=data_dir,
            permit_key=permit,
            tax_key=tax,
            auditor_key=auditor,
            idp=idp,
            dukcapil_port=dukcapil_port,
            capil_port=capil_port,
            broker_port=broker_port,
            subject_secret=secrets.token_hex(32),
        )
        data = registry_data(
            permit_key=permit,
            tax_key=tax,
            dukcapil_url=f"http://127.0.0.1:{world.dukcapil_port}",
            capil_url=f"http://127.0.0.1:{world.capil_port}",
        )
        data["services"].extend(dict(service) for service in extra_services)
        data["members"].append(auditor_member(auditor))
        for member in data["members"]:
            for subsystem in member["subsystems"]:
                sub_id = f"ID/{member['class']}/{member['code']}/{subsystem['code']}"
                if webhooks and sub_id in webhooks:
                    subsystem["webhook"] = webhooks[sub_id]
        write_registry(data_dir / "registry.toml", data)
        return world

    @property
    def broker_url(self) -> str:
        """Where the (first) broker node listens."""
        return f"http://127.0.0.1:{self.broker_port}"

    @property
    def broker_urls(self) -> list[str]:
        """Every running broker node, first one first."""
        return [self.broker_url, *(f"http://127.0.0.1:{p}" for p in self.extra_broker_ports)]

    def process(self, name: str) -> subprocess.Popen[bytes]:
        """A started process by name: ``dukcapil``, ``capil``, ``broker``, ``broker-2``, ..."""
        return next(proc for n, proc, _ in self._procs if n == name)

    @property
    def state_database_url(self) -> str:
        """The broker's consent state, replay cache and outbox."""
        return self.database_url or f"sqlite:///{self.data_dir / 'simpul.db'}"

    @property
    def audit_database_url(self) -> str:
        """The broker's audit log."""
        return self.external_audit_database_url or f"sqlite:///{self.data_dir / 'audit.db'}"

    def broker_env(self) -> dict[str, str]:
        """The ``SIMPUL_*`` environment the broker process runs with."""
        return {
            "SIMPUL_ENVIRONMENT": "dev",
            "SIMPUL_DATA_DIR": str(self.data_dir),
            "SIMPUL_SUBJECT_HASH_SECRET": self.subject_secret,
            "SIMPUL_CITIZEN_IDP_ISSUER": self.idp.issuer,
            "SIMPUL_CITIZEN_IDP_JWKS_FILE": str(self.data_dir / "idp-jwks.json"),
            "SIMPUL_CITIZEN_AUDIENCE": CITIZEN_AUDIENCE,
            "SIMPUL_HOST": "127.0.0.1",
            "SIMPUL_PORT": str(self.broker_port),
            "SIMPUL_LOG_LEVEL": "warning",
            **({"SIMPUL_DATABASE_URL": self.database_url} if self.database_url else {}),
            "SIMPUL_AUDIT_DATABASE_URL": self.audit_database_url,
            **self.extra_env,
        }

    def citizen_token(self, nik: str, name: str | None = None) -> str:
        """A dev-IdP ID token for the citizen with ``nik``."""
        return self.idp.id_token(nik=nik, name=name, audience=CITIZEN_AUDIENCE)

    def start(self, *, nodes: int = 1, timeout: float = 30.0) -> None:
        """Start both backends and ``nodes`` broker processes; return once all answer.

        Several nodes share the broker's databases, as nodes behind a load balancer do.
        """
        logs = self.data_dir / "logs"
        logs.mkdir(exist_ok=True)
        cli = [sys.executable, "-m", "broker.cli"]
        self._spawn(
            "dukcapil",
            [*cli, "sandbox", "--backend", "dukcapil", "--port", str(self.dukcapil_port)],
            logs,
        )
        self._spawn(
            "capil", [*cli, "sandbox", "--backend", "capil", "--port", str(self.capil_port)], logs
        )
        # Migrate once, before any node starts: nodes never race to create the schema.
        upgrade = subprocess.run(  # noqa: S603 - our own CLI
            [*cli, "db", "upgrade"],
            env={**os.environ, **self.broker_env()},
            capture_output=True,
            check=False,
        )
        if upgrade.returncode != 0:
            self.stop()
            raise RuntimeError(f"simpul db upgrade failed: {upgrade.stderr.decode()[-2000:]}")
        self.extra_broker_ports = free_ports(
            nodes - 1, taken=(self.dukcapil_port, self.capil_port, self.broker_port)
        )
        brokers = [("broker", self.broker_port)] + [
            (f"broker-{i}", port) for i, port in enumerate(self.extra_broker_ports, start=2)
        ]
        for name, port in brokers:
            env = {**self.broker_env(), "SIMPUL_PORT": str(port)}
            self._spawn(name, [*cli, "serve"], logs, env=env)
        deadline = time.monotonic() + timeout
        for name, url in (
            ("dukcapil", f"http://127.0.0.1:{self.dukcapil_port}/healthz"),
            ("capil", f"http://127.0.0.1:{self.capil_port}/healthz"),
            *((name, f"http://127.0.0.1:{port}/healthz") for name, port in brokers),
        ):
            self._wait(name, url, deadline)

    def restart_broker(self, *, timeout: float = 30.0) -> None:
        """Stop the (first) broker process (SIGTERM, as an operator would) and start it again."""
        for entry in [e for e in self._procs if e[0] == "broker"]:
            _, proc, log = entry
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
            self._procs.remove(entry)
        cli = [sys.executable, "-m", "broker.cli"]
        self._spawn("broker", [*cli, "serve"], self.data_dir / "logs", env=self.broker_env())
        self._wait("broker", f"{self.broker_url}/healthz", time.monotonic() + timeout)

    def _spawn(
        self, name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None
    ) -> None:
        log = (logs / f"{name}.log").open("ab")
        proc_env = {**os.environ, **(env or {})}
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=proc_env)  # noqa: S603 - our own CLI
        self._procs.append((name, proc, log))

    def _wait(self, name: str, url: str, deadline: float) -> None:
        proc = self.process(name)
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; see "
                    f"{self.data_dir / 'logs' / name}.log{last}"
                )
            try:
                answer = httpx.get(url, timeout=1.0)
                if answer.status_code == 200:
                    if not name.startswith("broker") or _names_databases(answer):
                        return
                    # A backend on the broker's port (the broker will exit, unable to bind).
                    last = f"; {url} answered {answer.text[:200]!r}, which is not a broker"
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{name} did not become ready at {url}{last}")

    def kill(self, name: str) -> None:
        """SIGKILL one process (``"broker"``, ...) and wait for it: a crash, not a shutdown."""
        for proc_name, proc, _ in self._procs:
            if proc_name == name and proc.poll() is None:
                proc.kill()
                proc.wait()

    def stop(self) -> None:
        """Stop every process: SIGTERM, then SIGKILL for any that linger."""
        for _, proc, _ in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for _, proc, log in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
        self._procs.clear()

    def __enter__(self) -> SandboxWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
