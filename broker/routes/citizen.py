"""The citizen's own consents: list, approve, reject, revoke (ID-token authenticated)."""

from __future__ import annotations

from fastapi import APIRouter

from broker.consent_api import ConsentOut, ConsentRequestOut
from broker.deps import BrokerDep, CitizenDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/me", tags=["consent (citizen)"])


@router.get("/consent-requests", summary="My consent requests, newest first")
def my_requests(
    citizen: CitizenDep, broker: BrokerDep, status: str | None = None
) -> list[ConsentRequestOut]:
    """Everything agencies have asked of me, optionally filtered by status."""
    return broker.consent_api.citizen_requests(citizen, status=status)


@router.post("/consent-requests/{request_id}/approve", summary="Approve a consent request")
async def approve(request_id: str, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """Creates an ACTIVE consent; the agency can then collect its token."""
    return await broker.consent_api.approve(citizen, request_id)


@router.post("/consent-requests/{request_id}/reject", summary="Reject a consent request")
async def reject(request_id: str, citizen: CitizenDep, broker: BrokerDep) -> ConsentRequestOut:
    """The agency learns the answer when it polls; nothing is released."""
    return await broker.consent_api.reject(citizen, request_id)


@router.get("/consents", summary="My consents and their status")
def my_consents(citizen: CitizenDep, broker: BrokerDep) -> list[ConsentOut]:
    """Every consent I gave, active or not."""
    return broker.consent_api.citizen_consents(citizen)


@router.post("/consents/{consent_id}/revoke", summary="Revoke a consent, effective at once")
async def revoke(consent_id: str, citizen: CitizenDep, broker: BrokerDep) -> ConsentOut:
    """The very next exchange under this consent is refused. Revoking twice is harmless."""
    return await broker.consent_api.revoke(citizen, consent_id)
