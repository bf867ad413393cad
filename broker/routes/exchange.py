"""``POST /r1/{service id}``: one data exchange."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.datastructures import URL
from starlette.types import Scope

from broker.deps import BrokerDep
from broker.exchange import ExchangeRequest

__all__ = ["exchange_request", "router"]

router = APIRouter(tags=["exchange"])


@router.post(
    "/r1/{service_id:path}",
    summary="Fetch a citizen's record from the owning agency, with consent",
    responses={
        200: {"description": "The consented fields, signed by the broker"},
        400: {"description": "Malformed or schema-invalid request (problem+json)"},
        401: {"description": "Signature or consent token refused (problem+json)"},
        403: {"description": "Access right or consent refused (problem+json)"},
        502: {"description": "Backend failed or answered invalid data (problem+json)"},
        503: {"description": "Audit log unavailable: nothing released (problem+json)"},
    },
)
async def exchange(service_id: str, request: Request, broker: BrokerDep) -> Response:
    """Run the exchange pipeline; the body is the JSON query of the service's request schema."""
    outcome = await broker.exchange.handle(
        exchange_request(request.scope, service_id, await request.body())
    )
    return Response(content=outcome.body, status_code=outcome.status, headers=outcome.headers)


def exchange_request(scope: Scope, service_id: str, body: bytes) -> ExchangeRequest:
    """The exchange as the pipeline takes it, from the ASGI scope of ``POST /r1/{service_id}``."""
    return ExchangeRequest(
        service_id=service_id,
        method=scope["method"],
        url=str(URL(scope=scope)),  # what Starlette's Request.url gives
        headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]],
        body=body,
    )
