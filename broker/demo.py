"""``simpul demo``: the whole story on real processes, checked step by step."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc.jwk import KeySet
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from adapters.sandbox import generate
from audit import verify_log
from audit.store import read_records
from broker.client import ExchangeResult, SimpulClient
from broker.db import create_db_engine, with_search_path
from broker.exchange import CO_SUBJECT_EVENT
from broker.sandbox_env import AKTA, KK, KTP, PERMIT_OFFICE, TAX_OFFICE, SandboxWorld
from consent import verify_receipt

__all__ = ["run_demo"]

PURPOSE = {
    "code": "perizinan-berusaha",
    "text": "Permohonan izin usaha (NIB) di Mal Pelayanan Publik",
}
PROCEDURE = "PB-UMKU/2026/11/000123"
KTP_FIELDS = ["nama", "tanggal_lahir", "alamat"]
KK_FIELDS = ["no_kk", "kepala_keluarga", "alamat", "anggota"]
AKTA_FIELDS = ["no_akta", "kantor_penerbit", "tanggal_terbit", "anak", "ayah", "ibu"]


@dataclass
class _Story:
    console: Console
    failures: list[str] = field(default_factory=list)
    step_no: int = 0

    def step(self, title: str, check: Callable[[], tuple[bool, str]]) -> None:
        self.step_no += 1
        try:
            ok, detail = check()
        except Exception as exc:  # noqa: BLE001 - a demo step reports, the run goes on
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        self.console.print(f"{mark} [bold]{self.step_no:>2}. {title}[/bold]")
        if detail:
            self.console.print(f"      {detail}", highlight=False)
        if not ok:
            self.failures.append(title)


def _refused(result: ExchangeResult, problem: str) -> tuple[bool, str]:
    return (
        result.status >= 400 and result.problem_type == problem,
        f"HTTP {result.status}, problem type {result.problem_type!r} (audit #{result.audit_seq})",
    )


def run_demo(
    data_dir: Path | None = None,
    console: Console | None = None,
    *,
    database_url: str | None = None,
    nodes: int = 1,
) -> int:
    """Play the story; return 0 only if every step behaved as expected.

    With ``database_url`` (PostgreSQL) the broker's state and audit log live in a schema of
    their own in that database, dropped afterwards unless ``data_dir`` keeps the run; with
    ``nodes`` > 1, that many broker processes share it and the clients go round-robin.
    """
    console = console or Console(width=max(Console().width, 132))
    if nodes < 1:
        raise ValueError("nodes must be at least 1")
    schema = _DemoSchema(database_url) if database_url else None
    try:
        url = schema.create() if schema else None
        if data_dir is None:
            with tempfile.TemporaryDirectory(prefix="simpul-demo-") as tmp:
                return _play(Path(tmp), console, url, nodes)
        return _play(data_dir, console, url, nodes)
    finally:
        if schema is not None and data_dir is None:
            schema.drop()


class _DemoSchema:
    """A fresh PostgreSQL schema per demo run, so runs never mix their logs or keys."""

    def __init__(self, database_url: str) -> None:
        self._admin = create_db_engine(database_url)
        self._url = database_url
        self.name = f"simpul_demo_{uuid.uuid4().hex[:10]}"

    def create(self) -> str:
        if self._admin.dialect.name == "sqlite":
            raise ValueError("--database is for PostgreSQL; SQLite is the default without it")
        with self._admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {self.name}")
        return with_search_path(self._url, self.name)

    def drop(self) -> None:
        with self._admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        self._admin.dispose()


def _play(data_dir: Path, console: Console, database_url: str | None, nodes: int) -> int:
    where = "the embedded default" if database_url is None else "PostgreSQL"
    if nodes > 1:
        where += f", {nodes} broker nodes"
    console.rule(f"[bold]Simpul demo[/bold]: consent-gated data exchange on {where}")
    world = SandboxWorld.create(data_dir)
    if database_url is not None:
        world.database_url = world.external_audit_database_url = database_url
    console.print(f"Data directory: {data_dir}")
    console.print("Starting the two sandbox agency backends and the broker as real processes…")
    with world:
        world.start(nodes=nodes)
        console.print(
            f"  Dukcapil :{world.dukcapil_port}   Disdukcapil Jakarta Selatan :{world.capil_port}"
            f"   broker {', '.join(world.broker_urls)}\n"
        )
        story = _Story(console)
        with (
            SimpulClient(
                base_url=world.broker_urls, client_id=PERMIT_OFFICE, key=world.permit_key
            ) as office,
            SimpulClient(
                base_url=world.broker_urls, client_id=TAX_OFFICE, key=world.tax_key
            ) as tax_office,
            httpx.Client(base_url=world.broker_url, timeout=30.0) as portal,
        ):
            _tell(story, world, office, tax_office, portal)
        audit_ok = _show_audit(story, world, console)
    console.print()
    if story.failures or not audit_ok:
        console.print(f"[red bold]Demo FAILED[/red bold]: {', '.join(story.failures)}")
        return 1
    console.print("[green bold]Demo passed[/green bold]: every step behaved as expected.")
    return 0


def _tell(
    story: _Story,
    world: SandboxWorld,
    office: SimpulClient,
    tax_office: SimpulClient,
    portal: httpx.Client,
) -> None:
    people = generate()
    citizen = people.demo_citizen()
    nik = citizen.nik
    console = story.console
    console.print(
        f"Citizen: [bold]{citizen.nama}[/bold] (synthetic), applying for a business permit at the"
        " Jakarta one-stop permit office (DPMPTSP DKI).\n"
    )
    me = {"Authorization": f"Bearer {world.citizen_token(nik, citizen.nama)}"}
    state: dict[str, Any] = {}

    def ask() -> tuple[bool, str]:
        created = office.request_consent(
            subject_nik=nik,
            grants=[
                {"service": KTP, "fields": KTP_FIELDS},
                {"service": KK, "fields": KK_FIELDS},
                {"service": AKTA, "fields": AKTA_FIELDS},
            ],
            purpose=PURPOSE,
            procedure_ref=PROCEDURE,
        )
        state["request"] = created["id"]
        return created["status"] == "PENDING", f"request {created['id']} is {created['status']}"

    story.step("The permit office asks for consent: KTP (name, birth date, address), KK, akta", ask)

    def citizen_sees_and_approves() -> tuple[bool, str]:
        pending = portal.get("/v1/me/consent-requests", params={"status": "PENDING"}, headers=me)
        pending.raise_for_status()
        mine = [r for r in pending.json() if r["id"] == state["request"]]
        if not mine:
            return False, "the request is not in the citizen's pending list"
        approved = portal.post(f"/v1/me/consent-requests/{state['request']}/approve", headers=me)
        approved.raise_for_status()
        state["consent"] = approved.json()["id"]
        return approved.json()["status"] == "ACTIVE", f"consent {state['consent']} is ACTIVE"

    story.step("The citizen signs in, sees the request and approves it", citizen_sees_and_approves)

    def receipt() -> tuple[bool, str]:
        got = portal.get(f"/v1/me/consents/{state['consent']}/receipt", headers=me)
        got.raise_for_status()
        keys = KeySet.import_key_set(portal.get("/.well-known/jwks.json").json())
        claims = verify_receipt(got.json()["receipt"], keys)
        services = len(claims["services"])
        return (
            claims["consentReceiptID"] == state["consent"],
            f"signed by {got.json()['kid']}, verified with the published JWKS; "
            f"{services} services, revoke at {claims['revocation']['url']}",
        )

    story.step("The citizen keeps a signed consent receipt (Kantara fields)", receipt)

    def collect_token() -> tuple[bool, str]:
        polled = office.consent_request(state["request"])
        state["token"] = polled.get("consent_token")
        return (
            polled["status"] == "APPROVED" and bool(state["token"]),
            "the office receives the signed consent token",
        )

    story.step("The office polls the request and collects the consent token", collect_token)

    def fetch(service: str, query: dict[str, Any], expected: list[str]) -> tuple[bool, str]:
        result = office.fetch(
            service, query, consent_token=state["token"], officer="petugas-0042", issue=PROCEDURE
        )
        released = sorted(result.body)
        return (
            result.ok and released == sorted(expected),
            f"HTTP {result.status}, released {', '.join(released) or 'nothing'}"
            f" (audit #{result.audit_seq}, response signature verified)",
        )

    story.step(
        "Fetch the KTP: only name, birth date and address",
        lambda: fetch(KTP, {"nik": nik}, KTP_FIELDS),
    )
    story.step("Fetch the KK by the citizen's NIK", lambda: fetch(KK, {"nik": nik}, KK_FIELDS))
    story.step("Fetch the birth certificate", lambda: fetch(AKTA, {"nik": nik}, AKTA_FIELDS))

    story.step(
        "Ask for the religion on the KTP (not granted): refused, nothing released",
        lambda: _refused(
            office.fetch(
                KTP, {"nik": nik, "fields": ["nama", "agama"]}, consent_token=state["token"]
            ),
            "field-not-granted",
        ),
    )
    story.step(
        "The tax office (no access right to KTP) tries with the same token: refused",
        lambda: _refused(
            tax_office.fetch(KTP, {"nik": nik}, consent_token=state["token"]), "access-denied"
        ),
    )

    def move(what: str, expected: str) -> Callable[[], tuple[bool, str]]:
        def check() -> tuple[bool, str]:
            moved = portal.post(f"/v1/me/consents/{state['consent']}/{what}", headers=me)
            moved.raise_for_status()
            return moved.json()["status"] == expected, f"consent {moved.json()['status']}"

        return check

    story.step("The citizen pauses the consent", move("pause", "PAUSED"))
    story.step(
        "The very next KTP fetch is refused while it is paused",
        lambda: _refused(
            office.fetch(KTP, {"nik": nik}, consent_token=state["token"]), "consent-not-active"
        ),
    )
    story.step("The citizen resumes it", move("resume", "ACTIVE"))
    story.step(
        "The same token works again",
        lambda: fetch(KTP, {"nik": nik}, KTP_FIELDS),
    )

    def revoke() -> tuple[bool, str]:
        revoked = portal.post(f"/v1/me/consents/{state['consent']}/revoke", headers=me)
        revoked.raise_for_status()
        return revoked.json()["status"] == "REVOKED", "consent REVOKED"

    story.step("The citizen revokes the consent", revoke)
    story.step(
        "The very next KTP fetch is refused",
        lambda: _refused(
            office.fetch(KTP, {"nik": nik}, consent_token=state["token"]), "consent-revoked"
        ),
    )
    state["nik"] = nik

    def access_log() -> tuple[bool, str]:
        page = portal.get("/v1/me/access-log", params={"limit": 50}, headers=me)
        page.raise_for_status()
        entries = page.json()["entries"]
        table = Table(title="The citizen's access log (GET /v1/me/access-log, newest first)")
        for column in ("time", "event", "agency", "officer", "service", "fields", "decision"):
            table.add_column(column, overflow="fold")
        for e in entries:
            table.add_row(
                e["time"][11:19],
                e["event"],
                (e["agency"] or e["client"])[:28],
                e["officer"] or "",
                (e["service"] or "").rsplit("/", 1)[-1],
                ",".join(e["fields"]),
                e["decision"] + (f" ({e['reason']})" if e["reason"] else ""),
            )
        console.print(table)
        exchanges = [e for e in entries if e["event"] == "exchange"]
        allowed = [e for e in exchanges if e["decision"] == "allowed"]
        return (
            bool(allowed) and all(e["procedure_ref"] == PROCEDURE for e in allowed[-3:]),
            f"{len(exchanges)} exchanges ({len(allowed)} allowed) and "
            f"{len(entries) - len(exchanges)} consent events, found by the keyed subject hash",
        )

    story.step("The citizen sees who read their data, when and why", access_log)
    household = people.household_of(nik)
    family = next(p for p in household.members if p.nik != nik) if household else None

    def family_log() -> tuple[bool, str]:
        if family is None:
            return False, "the citizen's family card names no one else"
        theirs = {"Authorization": f"Bearer {world.citizen_token(family.nik)}"}
        response = portal.get("/v1/me/access-log", headers=theirs)
        response.raise_for_status()
        entries = response.json()["entries"]
        services = sorted({(e["service"] or "").rsplit("/", 1)[-1] for e in entries})
        return (
            bool(entries) and all(e["event"] == CO_SUBJECT_EVENT for e in entries),
            f"the {family.hubungan_keluarga.lower()}'s log: {len(entries)} read(s) of records"
            f" that name them too ({', '.join(services)}), none of the citizen's own",
        )

    story.step(
        "A family member sees the reads of the family's records in their own log", family_log
    )
    outsider = next(p for p in people.people if household is None or p.no_kk != household.no_kk)
    outsider_me = {"Authorization": f"Bearer {world.citizen_token(outsider.nik)}"}
    story.step(
        "A citizen outside the family sees none of it",
        lambda: (
            portal.get("/v1/me/access-log", headers=outsider_me).json()["entries"] == [],
            "their access log is empty",
        ),
    )


def _show_audit(story: _Story, world: SandboxWorld, console: Console) -> bool:
    engine = create_db_engine(world.audit_database_url)
    try:
        table = Table(title="Audit log (subject as keyed hash; no bodies)", show_lines=False)
        for column in (
            "seq",
            "time",
            "event",
            "client",
            "service",
            "decision",
            "reason",
            "released",
            "subject",
        ):
            table.add_column(column, overflow="fold", no_wrap=column in ("event", "seq"))
        for record in read_records(engine):
            table.add_row(
                str(record.seq),
                record.time[11:19],
                record.event,
                record.client.rsplit("/", 2)[-2] if record.client else "",
                (record.service or "").rsplit("/", 1)[-1],
                record.decision,
                record.reason or "",
                ",".join(record.released_fields),
                (record.subject_ref or "")[:10],
            )
        console.print()
        console.print(table)
        report = verify_log(engine)
    finally:
        engine.dispose()
    story.step(
        "The audit log verifies (hash chain intact, no gaps)",
        lambda: (report.ok, f"{report.records} records checked"),
    )
    story.step(
        "An auditor's signed checkpoint covers the log (RFC 9162 root, C2SP note)",
        lambda: _checkpoint_covers(world, report.records),
    )
    citizen_nik = generate().demo_citizen().nik
    if world.external_audit_database_url is None:
        raw = b"".join(p.read_bytes() for p in world.data_dir.glob("audit.db*") if p.is_file())
        searched = "searched audit.db and its WAL byte by byte"
    else:
        engine = create_db_engine(world.audit_database_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT * FROM audit_records")).all()
        finally:
            engine.dispose()
        raw = "\n".join(repr(tuple(row)) for row in rows).encode()
        searched = f"searched the text of all {len(rows)} audit rows"
    story.step(
        "No raw NIK anywhere in the audit database",
        lambda: (citizen_nik.encode() not in raw, searched),
    )
    return report.ok


def _checkpoint_covers(world: SandboxWorld, records: int) -> tuple[bool, str]:
    """The audit board asks for a checkpoint; its signature and root check against the log."""
    from audit import merkle
    from audit.errors import CheckpointInvalid
    from audit.notes import open_checkpoint
    from broker.keys import jwk_to_public_key
    from broker.sandbox_env import AUDITOR
    from broker.signatures import CONSENT_REQUEST_COMPONENTS

    if world.auditor_key is None:
        return False, "the sandbox has no auditor"
    with SimpulClient(
        base_url=world.broker_url, client_id=AUDITOR, key=world.auditor_key
    ) as auditor:
        signed = auditor.send(
            "POST", "/v1/audit/checkpoints", components=CONSENT_REQUEST_COMPONENTS
        ).json()
    opened = None
    for jwk in httpx.get(f"{world.broker_url}/.well-known/jwks.json").json()["keys"]:
        try:
            opened = open_checkpoint(signed["note"], jwk_to_public_key(jwk))
            break
        except CheckpointInvalid:
            continue
    if opened is None:
        return False, "no key in the broker's JWKS verifies the checkpoint"
    engine = create_db_engine(world.audit_database_url)
    try:
        leaves = [record.canonical() for record in read_records(engine, limit=opened.size)]
    finally:
        engine.dispose()
    return (
        opened.size >= records and merkle.root_hash(leaves) == opened.root,
        f"tree size {opened.size}, root {opened.root.hex()[:16]}…, signed by {signed['kid']}",
    )
