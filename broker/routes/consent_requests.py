"""Consumers ask citizens for consent, and poll for the answer (signed requests)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from broker.consent_api import ConsentRequestIn, ConsentRequestOut
from broker.deps import BrokerDep, PathId
from broker.signatures import CONSENT_REQUEST_COMPONENTS

__all__ = ["router"]

router = APIRouter(prefix="/v1/consent-requests", tags=["consent (consumer)"])


def _headers(request: Request) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]


@router.post(
    "",
    status_code=201,
    summary="Ask a citizen for consent",
    response_model=ConsentRequestOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": ConsentRequestIn.model_json_schema()}},
        }
    },
)
async def create_consent_request(
    request: Request, response: Response, broker: BrokerDep
) -> ConsentRequestOut:
    """Signed like an exchange (without a consent token); the citizen then decides."""
    body = await request.body()
    caller = await broker.authenticator.authenticate(
        method=request.method,
        url=str(request.url),
        headers=_headers(request),
        body=body,
        components=CONSENT_REQUEST_COMPONENTS,
    )
    created = await broker.consent_api.create_request(caller, body)
    response.headers["Location"] = f"/v1/consent-requests/{created.id}"
    return created


@router.get(
    "/{request_id}",
    summary="Poll a consent request; an approved one carries the consent token",
    response_model=ConsentRequestOut,
)
async def get_consent_request(
    request_id: PathId, request: Request, broker: BrokerDep
) -> ConsentRequestOut:
    """Only the client that made the request can see it."""
    caller = await broker.authenticator.authenticate(
        method=request.method,
        url=str(request.url),
        headers=_headers(request),
        body=await request.body(),
        components=CONSENT_REQUEST_COMPONENTS,
    )
    return broker.consent_api.poll(caller, request_id)
