"""Consent requests and decisions as the broker offers them: checked against the registry,
stored by the consent package, every transition written to the audit log.

The store logs each transition in the same transaction as the change; :meth:`ConsentApi.flush`
copies logged transitions into the audit log (awaited before an action answers, and again by
the background worker, so a crash between the two loses nothing).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit import AuditEntry, AuditLog, subject_ref
from audit.errors import AuditUnavailable
from broker._threads import finished_even_if_cancelled
from broker.auth import Caller
from broker.citizen import Citizen
from broker.errors import BadRequest
from broker.logs import get_logger
from broker.registry import Registry
from consent import (
    Consent,
    ConsentEvent,
    ConsentRequest,
    ConsentStore,
    Grant,
    Purpose,
    ReceiptContext,
    ReceiptIssuer,
)
from consent.errors import ConsentRequestInvalid
from schemas import SchemaSet
from schemas.identifiers import InvalidNik, parse_nik

__all__ = ["ConsentApi", "ConsentOut", "ConsentRequestIn", "ConsentRequestOut", "ReceiptOut"]

_log = get_logger("simpul.consent")

_DAY = 86_400


class GrantIn(BaseModel):
    """One service and the fields of its answer the consumer wants."""

    model_config = ConfigDict(extra="forbid")

    service: Annotated[str, Field(min_length=1, max_length=255)]
    fields: Annotated[list[str], Field(min_length=1, max_length=64)]


class PurposeIn(BaseModel):
    """Why the data is needed; ``code`` from the registry's purpose catalogue."""

    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=64)]
    text: Annotated[str | None, Field(max_length=500)] = None


class ConsentRequestIn(BaseModel):
    """``POST /v1/consent-requests`` body."""

    model_config = ConfigDict(extra="forbid")

    subject_nik: Annotated[str, Field(pattern=r"^[0-9]{16}$")]
    grants: Annotated[list[GrantIn], Field(min_length=1, max_length=16)]
    purpose: PurposeIn
    procedure_ref: Annotated[str, Field(min_length=1, max_length=128)]
    valid_for_seconds: Annotated[int, Field(ge=60, le=366 * _DAY)] = 30 * _DAY
    request_ttl_seconds: Annotated[int, Field(ge=60, le=30 * _DAY)] = 7 * _DAY
    max_uses: Annotated[int | None, Field(ge=1, le=1_000_000)] = None
    fetch_type: Literal["ONETIME", "PERIODIC"] = "PERIODIC"


class GrantOut(BaseModel):
    """A granted service and fields."""

    service: str
    fields: list[str]


class ConsentRequestOut(BaseModel):
    """A consent request as its consumer and its citizen see it."""

    id: str
    status: Literal["PENDING", "APPROVED", "REJECTED", "EXPIRED"]
    client_id: str
    grants: list[GrantOut]
    purpose_code: str
    purpose_text: str
    procedure_ref: str
    created_at: int
    expires_at: int
    fetch_type: Literal["ONETIME", "PERIODIC"] = "PERIODIC"
    max_uses: int | None = None
    consent_id: str | None = None
    consent_token: str | None = None


class ConsentOut(BaseModel):
    """A consent as the citizen sees it."""

    id: str
    status: Literal["ACTIVE", "PAUSED", "REVOKED", "EXPIRED"]
    client_id: str
    grants: list[GrantOut]
    purpose_code: str
    purpose_text: str
    procedure_ref: str
    not_before: int
    expires_at: int
    status_changed_at: int
    fetch_type: Literal["ONETIME", "PERIODIC"] = "PERIODIC"
    max_uses: int | None = None
    use_count: int = 0
    receipt: str | None = None


class ReceiptOut(BaseModel):
    """A signed consent receipt (compact JWS); verify it with ``/.well-known/jwks.json``."""

    consent_id: str
    kid: str
    receipt: str


def _grants_out(grants: tuple[Grant, ...]) -> list[GrantOut]:
    return [GrantOut(service=g.service, fields=list(g.fields)) for g in grants]


def _request_out(req: ConsentRequest, token: str | None = None) -> ConsentRequestOut:
    return ConsentRequestOut(
        id=req.id,
        status=req.status,  # type: ignore[arg-type]  # the store only holds the four states
        client_id=req.client_id,
        grants=_grants_out(req.grants),
        purpose_code=req.purpose.code,
        purpose_text=req.purpose.text,
        procedure_ref=req.procedure_ref,
        created_at=req.created_at,
        expires_at=req.expires_at,
        fetch_type=req.fetch_type.value,
        max_uses=req.max_uses,
        consent_id=req.consent_id,
        consent_token=token,
    )


def _consent_out(c: Consent, receipt: str | None = None) -> ConsentOut:
    return ConsentOut(
        id=c.id,
        status=c.status,  # type: ignore[arg-type]  # the store only holds the four states
        client_id=c.client_id,
        grants=_grants_out(c.grants),
        purpose_code=c.purpose.code,
        purpose_text=c.purpose.text,
        procedure_ref=c.procedure_ref,
        not_before=c.nbf,
        expires_at=c.exp,
        status_changed_at=c.status_changed_at,
        fetch_type=c.fetch_type.value,
        max_uses=c.max_uses,
        use_count=c.use_count,
        receipt=receipt,
    )


class ConsentApi:
    """The broker-side rules around the consent store: registry checks, receipts, audit events."""

    def __init__(
        self,
        *,
        store: ConsentStore,
        registry: Registry,
        schemas: SchemaSet,
        audit: AuditLog,
        subject_secret: bytes,
        receipts: ReceiptIssuer,
    ) -> None:
        self._store = store
        self._registry = registry
        self._schemas = schemas
        self._audit = audit
        self._secret = subject_secret
        self._receipts = receipts
        self._flushing = asyncio.Lock()

    # --- the consumer's side ---

    async def create_request(self, caller: Caller, body: bytes) -> ConsentRequestOut:
        """Validate and store a consumer's consent request (PENDING)."""
        try:
            data = ConsentRequestIn.model_validate_json(body)
        except ValidationError as exc:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['type']}"
                for e in exc.errors()[:5]
            )
            raise ConsentRequestInvalid(f"invalid consent request: {where}") from exc
        try:
            parse_nik(data.subject_nik)
        except InvalidNik as exc:
            raise ConsentRequestInvalid(f"subject_nik is not a valid NIK: {exc.detail}") from exc
        grants = []
        for i, grant in enumerate(data.grants):
            service = self._registry.service(grant.service)
            self._registry.require_access(caller.client_id, service.id)
            known = set(self._schemas.response_fields(service.schema))
            unknown = sorted(set(grant.fields) - known)
            if unknown:
                raise ConsentRequestInvalid(
                    f"grants[{i}]: {service.id} has no field(s) {', '.join(unknown)}"
                )
            grants.append(Grant(service=service.id, fields=tuple(dict.fromkeys(grant.fields))))
        purpose = self._purpose(caller.client_id, data.purpose)
        created = self._store.create_request(
            client_id=caller.client_id,
            client_jkt=caller.jkt,
            subject_nik=data.subject_nik,
            grants=tuple(grants),
            purpose=purpose,
            procedure_ref=data.procedure_ref,
            valid_for_seconds=data.valid_for_seconds,
            request_ttl_seconds=data.request_ttl_seconds,
            max_uses=data.max_uses,
            fetch_type=data.fetch_type,
            xroad_id=caller.xroad_id,
        )
        await self.flush()
        return _request_out(created)

    def _purpose(self, client_id: str, given: PurposeIn) -> Purpose:
        """The catalogued purpose, if this client may name it (Myinfo: one purpose per request)."""
        if self._registry.purpose(given.code) is None:
            raise ConsentRequestInvalid("purpose.code is not in the registry's purpose catalogue")
        entry = self._registry.require_purpose(client_id, given.code)
        return Purpose(code=entry.code, text=given.text or entry.text_id)

    def poll(self, caller: Caller, request_id: str) -> ConsentRequestOut:
        """The consumer's view of its own request; approved ones carry the token."""
        req = self._store.get_request(request_id, client_id=caller.client_id)
        token = None
        if req.status == "APPROVED" and req.consent_id is not None:
            consent = self._store.get_consent(req.consent_id, client_id=caller.client_id)
            token = self._store.token_for(consent)
        return _request_out(req, token)

    # --- the citizen's side ---

    def citizen_requests(self, citizen: Citizen, *, status: str | None) -> list[ConsentRequestOut]:
        """The citizen's requests, newest first."""
        if status is not None and status not in {"PENDING", "APPROVED", "REJECTED", "EXPIRED"}:
            raise BadRequest("status must be PENDING, APPROVED, REJECTED or EXPIRED")
        return [
            _request_out(r)
            for r in self._store.list_requests(subject_nik=citizen.nik, status=status)
        ]

    def citizen_consents(self, citizen: Citizen, *, status: str | None = None) -> list[ConsentOut]:
        """The citizen's consents, newest first, optionally only those in ``status``."""
        if status is not None and status not in {"ACTIVE", "PAUSED", "REVOKED", "EXPIRED"}:
            raise BadRequest("status must be ACTIVE, PAUSED, REVOKED or EXPIRED")
        return [
            _consent_out(c)
            for c in self._store.list_consents(subject_nik=citizen.nik)
            if status is None or c.status == status
        ]

    def citizen_consent(self, citizen: Citizen, consent_id: str) -> ConsentOut:
        """One of the citizen's own consents."""
        return _consent_out(self._store.citizen_consent(consent_id, subject_nik=citizen.nik))

    async def approve(self, citizen: Citizen, request_id: str) -> ConsentOut:
        """Approve the citizen's own pending request (again: the same consent); with a receipt."""
        granted = self._store.approve(request_id, subject_nik=citizen.nik)
        await self.flush()
        return _consent_out(granted, self._receipt(granted))

    async def reject(self, citizen: Citizen, request_id: str) -> ConsentRequestOut:
        """Reject the citizen's own pending request (rejecting again changes nothing)."""
        rejected = self._store.reject(request_id, subject_nik=citizen.nik)
        await self.flush()
        return _request_out(rejected)

    async def pause(self, citizen: Citizen, consent_id: str) -> ConsentOut:
        """Pause the citizen's own consent; the very next exchange under it is refused."""
        paused = self._store.pause(consent_id, subject_nik=citizen.nik)
        await self.flush()
        return _consent_out(paused)

    async def resume(self, citizen: Citizen, consent_id: str) -> ConsentOut:
        """Resume the citizen's own paused consent."""
        resumed = self._store.resume(consent_id, subject_nik=citizen.nik)
        await self.flush()
        return _consent_out(resumed)

    async def revoke(self, citizen: Citizen, consent_id: str) -> ConsentOut:
        """Revoke the citizen's own consent; effective for the very next exchange."""
        revoked = self._store.revoke(consent_id, subject_nik=citizen.nik)
        await self.flush()
        return _consent_out(revoked)

    def receipt(self, citizen: Citizen, consent_id: str) -> ReceiptOut:
        """The signed receipt of one of the citizen's own consents (whatever its status now)."""
        consent = self._store.citizen_consent(consent_id, subject_nik=citizen.nik)
        return ReceiptOut(
            consent_id=consent.id, kid=self._receipts.kid, receipt=self._receipt(consent)
        )

    def _receipt(self, consent: Consent) -> str:
        registry = self._registry
        names = {sub.id: member.name for member in registry.members for sub in member.subsystems}
        providers = {
            g.service: registry.services[g.service].provider
            for g in consent.grants
            if g.service in registry.services
        }
        catalogued = registry.purpose(consent.purpose.code)
        context = ReceiptContext(
            consumer_name=names.get(consent.client_id, consent.client_id),
            purpose_text_id=catalogued.text_id if catalogued else consent.purpose.text,
            purpose_text_en=catalogued.text_en if catalogued else consent.purpose.text,
            legal_basis=catalogued.legal_basis if catalogued else "",
            providers=providers,
            agencies=names,
            revoke_url=f"/v1/me/consents/{consent.id}/revoke",
            jurisdiction=registry.instance,
        )
        return self._receipts.issue(consent, context)

    # --- the audit trail of transitions ---

    async def flush(self) -> int:
        """Copy logged transitions into the audit log, oldest first; returns how many.

        If the audit log is unavailable the transitions stay logged and a later flush (the
        background worker's) writes them: the citizen's decision is not undone by it.
        Cancelled while a claim runs on its thread, or while an event is being audited, it
        lets that finish first (the broker stops its consent worker so, before the audit
        writer): a record written but not marked would be written again once its claim ran out.
        """
        written = 0
        async with self._flushing:
            while claimed := await finished_even_if_cancelled(
                asyncio.to_thread(self._store.claim_unaudited, now=int(time.time()), limit=100)
            ):
                for event, claim in claimed:
                    if not await finished_even_if_cancelled(self._audit_event(event, claim)):
                        return written
                    written += 1
        return written

    async def _audit_event(self, event: ConsentEvent, claim: int) -> bool:
        """Write ``event``'s record and mark the event audited; False if the log refused it."""
        try:
            stamp = await self._audit.commit(self._entry(event))
        except AuditUnavailable:
            # The claim expires and this or another node writes the event later.
            _log.warning("consent_event_not_audited", event_id=event.id)
            return False
        await asyncio.to_thread(self._store.mark_audited, event.id, stamp.seq, claim=claim)
        return True

    def _entry(self, event: ConsentEvent) -> AuditEntry:
        return AuditEntry(
            event=event.event,
            xroad_id=event.xroad_id or event.id,
            client=event.client_id,
            service=None,
            officer=None,
            issue=None,
            purpose=event.purpose_code,
            consent_id=event.consent_id,
            subject_ref=subject_ref(event.subject_nik, self._secret),
            decision="allowed",
            reason=None,
            status=201 if event.event == "consent.request" else 200,
            request_hash=None,
            response_hash=None,
            released_fields=(),
            latency_us=0,
        )
