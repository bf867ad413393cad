"""The citizen's own consents and data tracker (ID-token authenticated, ``/v1/me``).

Every action is idempotent where repeating it can mean only one thing: approving an approved
request returns its consent, rejecting a rejected one, pausing a paused one, resuming an
active one and revoking a revoked one change nothing. Moves the lifecycle forbids (resume a
revoked consent, approve an expired request) are refused with their own problem type.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from audit.records import MAX_SEQ
from broker.access_log import MAX_PAGE, AccessLogPage, access_log
from broker.consent_api import ConsentOut, ConsentRequestOut, ReceiptOut
from broker.deps import BrokerDep, CitizenDep, PathId

__all__ = ["router"]

router = APIRouter(prefix="/v1/me", tags=["consent (citizen)"])


@router.get("/consent-requests", summary="My consent requests, newest first")
def my_requests(
    citizen: CitizenDep, broker: BrokerDep, status: str | None = None
) -> list[ConsentRequestOut]:
    """Everything agencies have asked of me, optionally filtered by status."""
    return broker.consent_api.citizen_requests(citizen, status=status)


@router.post("/consent-requests/{request_id}/approve", summary="Approve a consent request")
async def approve(request_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """Creates an ACTIVE consent and returns it with its signed receipt."""
    return await broker.consent_api.approve(citizen, request_id)


@router.post("/consent-requests/{request_id}/reject", summary="Reject a consent request")
async def reject(request_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentRequestOut:
    """The agency learns the answer when it polls; nothing is released."""
    return await broker.consent_api.reject(citizen, request_id)


@router.get("/consents", summary="My consents and their status")
def my_consents(
    citizen: CitizenDep, broker: BrokerDep, status: str | None = None
) -> list[ConsentOut]:
    """Every consent I gave, newest first, optionally filtered by status."""
    return broker.consent_api.citizen_consents(citizen, status=status)


@router.get("/consents/{consent_id}", summary="One of my consents")
def my_consent(consent_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """Its status now, and how often it has been used."""
    return broker.consent_api.citizen_consent(citizen, consent_id)


@router.post("/consents/{consent_id}/pause", summary="Pause a consent, effective at once")
async def pause(consent_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """Exchanges under it are refused until I resume it; the agencies are notified."""
    return await broker.consent_api.pause(citizen, consent_id)


@router.post("/consents/{consent_id}/resume", summary="Resume a paused consent")
async def resume(consent_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """The consent is ACTIVE again until it expires."""
    return await broker.consent_api.resume(citizen, consent_id)


@router.post("/consents/{consent_id}/revoke", summary="Revoke a consent, effective at once")
async def revoke(consent_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """The very next exchange under this consent is refused. Revoking twice is harmless."""
    return await broker.consent_api.revoke(citizen, consent_id)


@router.get("/consents/{consent_id}/receipt", summary="The signed receipt of a consent")
def receipt(consent_id: PathId, citizen: CitizenDep, broker: BrokerDep) -> ReceiptOut:
    """A compact JWS by the broker (Kantara consent receipt fields); verify with the JWKS."""
    return broker.consent_api.receipt(citizen, consent_id)


@router.get("/access-log", summary="Who read my data, when and why (newest first)")
async def my_access_log(
    citizen: CitizenDep,
    broker: BrokerDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="next_before of the last page")
    ] = None,
    proofs: Annotated[bool, Query(description="add each entry's inclusion proof")] = False,
) -> AccessLogPage:
    """Every exchange and refusal that concerned me, and my own consent decisions."""
    page = await run_in_threadpool(
        access_log,
        broker.audit_engine,
        broker.registry,
        citizen,
        secret=broker.settings.subject_secret_bytes,
        limit=limit,
        before=before,
    )
    if proofs:  # against the latest signed checkpoint, so anyone can check them
        await broker.auditor_api.attach_proofs(page.entries)
    return page
