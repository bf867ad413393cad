"""The auditor API (``/v1/audit``): records, checkpoints, proofs, exports. Signed requests only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from audit.errors import AuditQueryInvalid
from audit.records import MAX_SEQ
from broker.auditor_api import (
    MAX_PAGE,
    CheckpointOut,
    ConsistencyOut,
    InclusionOut,
    RecordPage,
    RecordQuery,
)
from broker.auth import Caller
from broker.deps import BrokerDep

__all__ = ["router"]

router = APIRouter(prefix="/v1/audit", tags=["audit (auditor)"])


async def _auditor(request: Request, broker: BrokerDep) -> Caller:
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
    return await broker.auditor_api.authenticate(
        method=request.method, url=str(request.url), headers=headers, body=await request.body()
    )


AuditorDep = Annotated[Caller, Depends(_auditor)]


@router.get("/records", summary="Records matching filters, in log order")
async def records(
    _: AuditorDep, broker: BrokerDep, query: Annotated[RecordQuery, Query()]
) -> RecordPage:
    """Filter by time range, client, service, decision, reason, consent or subject reference."""
    if query.subject_nik is not None:  # a NIK in a URL ends up in logs and proxies
        raise AuditQueryInvalid("search by NIK with POST /v1/audit/records/search")
    return await run_in_threadpool(broker.auditor_api.records, query)


@router.post("/records/search", summary="Records matching filters, a subject given by NIK")
async def search_records(_: AuditorDep, broker: BrokerDep, query: RecordQuery) -> RecordPage:
    """As ``GET /records``, with the filters in the (signed) body, so a NIK stays out of URLs."""
    return await run_in_threadpool(broker.auditor_api.records, query)


@router.get("/checkpoints/latest", summary="The latest signed checkpoint")
async def latest(_: AuditorDep, broker: BrokerDep) -> CheckpointOut:
    """A C2SP signed note; verify it with the broker's key from the JWKS."""
    return await broker.auditor_api.latest()


@router.post("/checkpoints", summary="Sign a checkpoint of the log now")
async def sign(_: AuditorDep, broker: BrokerDep) -> CheckpointOut:
    """Returns the latest checkpoint instead if the log has not grown since."""
    return await broker.auditor_api.sign()


@router.get("/checkpoints", summary="Every checkpoint, in signing order")
async def checkpoints(
    _: AuditorDep,
    broker: BrokerDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[CheckpointOut]:
    """Page on with ``after_id`` = the last id seen."""
    return await run_in_threadpool(broker.auditor_api.checkpoints, after_id=after_id, limit=limit)


@router.get("/checkpoints/{checkpoint_id}", summary="One checkpoint")
async def checkpoint(
    checkpoint_id: Annotated[int, Path(ge=1, le=MAX_SEQ)], _: AuditorDep, broker: BrokerDep
) -> CheckpointOut:
    """By id."""
    return await run_in_threadpool(broker.auditor_api.checkpoint, checkpoint_id)


@router.get("/proofs/inclusion", summary="Inclusion proof of a record in a checkpoint's tree")
async def inclusion(
    _: AuditorDep,
    broker: BrokerDep,
    seq: Annotated[int, Query(ge=1, le=MAX_SEQ)],
    checkpoint: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="default: the latest")
    ] = None,
) -> InclusionOut:
    """RFC 9162 audit path for leaf ``seq - 1``."""
    return await broker.auditor_api.inclusion(seq, checkpoint)


@router.get("/proofs/consistency", summary="Consistency proof between two checkpoints")
async def consistency(
    _: AuditorDep,
    broker: BrokerDep,
    old: Annotated[int, Query(ge=1, le=MAX_SEQ, alias="from")],
    new: Annotated[int, Query(ge=1, le=MAX_SEQ, alias="to")],
) -> ConsistencyOut:
    """RFC 9162: the tree of checkpoint ``from`` is a prefix of the tree of checkpoint ``to``."""
    return await run_in_threadpool(broker.auditor_api.consistency, old, new)


@router.get(
    "/export",
    summary="A range of records as JSON Lines, with the checkpoint covering it",
    response_class=StreamingResponse,
)
async def export(
    _: AuditorDep,
    broker: BrokerDep,
    first_seq: Annotated[int, Query(ge=1, le=MAX_SEQ)] = 1,
    last_seq: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
    checkpoint: Annotated[
        int | None, Query(ge=1, le=MAX_SEQ, description="default: the latest")
    ] = None,
) -> StreamingResponse:
    """Line 1 is a header holding the checkpoint note; check with ``simpul audit verify``."""
    signed, lines = await broker.auditor_api.export(
        first_seq=first_seq, last_seq=last_seq, checkpoint_id=checkpoint
    )
    return StreamingResponse(
        lines,
        media_type="application/jsonl",
        headers={"Simpul-Checkpoint-Id": str(signed.id)},
    )
