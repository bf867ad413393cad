"""Consent requests and decisions as the broker offers them: checked against the registry,
stored by the consent package, every decision written to the audit log."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit import AuditEntry, AuditLog, subject_ref
from broker.auth import Caller
from broker.citizen import Citizen
from broker.errors import BadRequest
from broker.registry import Registry
from consent import Consent, ConsentRequest, ConsentStore, Grant, Purpose
from consent.errors import ConsentRequestInvalid
from schemas import SchemaSet
from schemas.identifiers import InvalidNik, parse_nik

__all__ = ["ConsentApi", "ConsentOut", "ConsentRequestIn", "ConsentRequestOut"]

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
    max_uses: Annotated[int | None, Field(ge=1)] = None


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
        consent_id=req.consent_id,
        consent_token=token,
    )


def _consent_out(c: Consent) -> ConsentOut:
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
    )


class ConsentApi:
    """The broker-side rules around the consent store: registry checks and audit events."""

    def __init__(
        self,
        *,
        store: ConsentStore,
        registry: Registry,
        schemas: SchemaSet,
        audit: AuditLog,
        subject_secret: bytes,
    ) -> None:
        self._store = store
        self._registry = registry
        self._schemas = schemas
        self._audit = audit
        self._secret = subject_secret

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
        purpose = self._purpose(data.purpose)
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
        )
        await self._record(
            "consent.request",
            client=caller.client_id,
            xroad_id=caller.xroad_id,
            nik=data.subject_nik,
            purpose=purpose.code,
            consent_id=None,
            status=201,
        )
        return _request_out(created)

    def _purpose(self, given: PurposeIn) -> Purpose:
        catalogue = {p.code: p for p in self._registry.purposes}
        if not catalogue:
            if not given.text:
                raise ConsentRequestInvalid("purpose.text is required")
            return Purpose(code=given.code, text=given.text)
        entry = catalogue.get(given.code)
        if entry is None:
            raise ConsentRequestInvalid("purpose.code is not in the registry's purpose catalogue")
        return Purpose(code=entry.code, text=given.text or entry.text_id)

    def poll(self, caller: Caller, request_id: str) -> ConsentRequestOut:
        """The consumer's view of its own request; approved ones carry the token."""
        req = self._store.get_request(request_id, client_id=caller.client_id)
        token = None
        if req.status == "APPROVED" and req.consent_id is not None:
            consent = self._store.get_consent(req.consent_id, client_id=caller.client_id)
            token = self._store.token_for(consent)
        return _request_out(req, token)

    def citizen_requests(self, citizen: Citizen, *, status: str | None) -> list[ConsentRequestOut]:
        """The citizen's requests, newest first."""
        if status is not None and status not in {"PENDING", "APPROVED", "REJECTED", "EXPIRED"}:
            raise BadRequest("status must be PENDING, APPROVED, REJECTED or EXPIRED")
        return [
            _request_out(r)
            for r in self._store.list_requests(subject_nik=citizen.nik, status=status)
        ]

    def citizen_consents(self, citizen: Citizen) -> list[ConsentOut]:
        """The citizen's consents, newest first."""
        return [_consent_out(c) for c in self._store.list_consents(subject_nik=citizen.nik)]

    async def approve(self, citizen: Citizen, request_id: str) -> ConsentOut:
        """Approve the citizen's own pending request."""
        granted = self._store.approve(request_id, subject_nik=citizen.nik)
        await self._citizen_event("consent.approve", granted, citizen)
        return _consent_out(granted)

    async def reject(self, citizen: Citizen, request_id: str) -> ConsentRequestOut:
        """Reject the citizen's own pending request."""
        rejected = self._store.reject(request_id, subject_nik=citizen.nik)
        await self._record(
            "consent.reject",
            client=rejected.client_id,
            xroad_id=str(uuid.uuid4()),
            nik=citizen.nik,
            purpose=rejected.purpose.code,
            consent_id=None,
            status=200,
        )
        return _request_out(rejected)

    async def revoke(self, citizen: Citizen, consent_id: str) -> ConsentOut:
        """Revoke the citizen's own consent; effective for the very next exchange."""
        revoked = self._store.revoke(consent_id, subject_nik=citizen.nik)
        await self._citizen_event("consent.revoke", revoked, citizen)
        return _consent_out(revoked)

    async def _citizen_event(self, event: str, c: Consent, citizen: Citizen) -> None:
        await self._record(
            event,
            client=c.client_id,
            xroad_id=str(uuid.uuid4()),
            nik=citizen.nik,
            purpose=c.purpose.code,
            consent_id=c.id,
            status=200,
        )

    async def _record(
        self,
        event: str,
        *,
        client: str,
        xroad_id: str,
        nik: str,
        purpose: str,
        consent_id: str | None,
        status: int,
    ) -> None:
        await self._audit.append(
            AuditEntry(
                event=event,
                xroad_id=xroad_id,
                client=client,
                service=None,
                officer=None,
                issue=None,
                purpose=purpose,
                consent_id=consent_id,
                subject_ref=subject_ref(nik, self._secret),
                decision="allowed",
                reason=None,
                status=status,
                request_hash=None,
                response_hash=None,
                released_fields=(),
                latency_us=0,
            )
        )
