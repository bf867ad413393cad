"""Operator endpoints: health and the broker's published keys."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from broker.deps import BrokerDep

__all__ = ["router"]

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness and database reachability")
def healthz(broker: BrokerDep) -> JSONResponse:
    """200 when both databases answer; 503 otherwise (without internals)."""
    checks: dict[str, str] = {}
    for name, engine in (("database", broker.engine), ("audit_database", broker.audit_engine)):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            checks[name] = "ok"
        except Exception:  # noqa: BLE001 - health reports, it does not raise
            checks[name] = "unavailable"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503
    )


@router.get("/.well-known/jwks.json", summary="The broker's public signing keys")
def jwks(broker: BrokerDep) -> dict[str, Any]:
    """Keys that verify consent tokens, receipts, responses and notifications, by ``kid``.

    The current signing key comes first; earlier keys stay until they are retired.
    """
    return broker.keyring.jwks()
