"""What auditors can ask of the log: records, checkpoints, proofs and exports.

Auditors are registry subsystems holding the ``auditor`` role; they sign their requests like
consumers do (no consent token). A subject is searched by NIK: the broker turns it into the
keyed subject reference, so the NIK is neither stored nor compared in the clear.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Final

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from audit import merkle, subject_ref
from audit.checkpoints import (
    CheckpointScheduler,
    StoredCheckpoint,
    get_checkpoint,
    latest_checkpoint,
    list_checkpoints,
)
from audit.errors import AuditQueryInvalid, AuditRecordNotFound
from audit.export import iter_export
from audit.query import RecordFilter, find_records
from audit.records import MAX_SEQ
from audit.store import read_records
from audit.tree import consistency_proof_at, inclusion_proof_at
from broker.auth import Caller, RequestAuthenticator
from broker.errors import AuditorRequired
from broker.registry import Registry
from broker.signatures import CONSENT_REQUEST_COMPONENTS

__all__ = [
    "AUDITOR_ROLE",
    "AuditorApi",
    "CheckpointOut",
    "ConsistencyOut",
    "InclusionOut",
    "RecordPage",
    "RecordQuery",
]

AUDITOR_ROLE: Final = "auditor"
MAX_PAGE: Final = 1000


class CheckpointOut(BaseModel):
    """A signed checkpoint: the C2SP note exactly as signed, and what it says."""

    id: int
    tree_size: int
    root_hash: Annotated[str, Field(description="hex")]
    time: str
    key_name: str
    key_id: Annotated[str, Field(description="signed-note key ID, hex")]
    kid: Annotated[str, Field(description="kid of the broker JWK that signed")]
    note: str

    @classmethod
    def of(cls, checkpoint: StoredCheckpoint) -> CheckpointOut:
        """From the stored checkpoint."""
        return cls.model_validate(checkpoint.as_dict())


class InclusionOut(BaseModel):
    """RFC 9162 inclusion proof of record ``seq`` (leaf ``seq - 1``) in a checkpoint's tree."""

    seq: int
    leaf_index: int
    tree_size: int
    leaf_hash: Annotated[str, Field(description="hex")]
    proof: Annotated[list[str], Field(description="hex hashes, leaf upwards")]
    checkpoint: CheckpointOut


class ConsistencyOut(BaseModel):
    """RFC 9162 consistency proof: the older checkpoint's tree is a prefix of the newer one's."""

    old: CheckpointOut
    new: CheckpointOut
    proof: Annotated[list[str], Field(description="hex hashes")]


class RecordQuery(BaseModel):
    """Filters for records; ``subject_nik`` is hashed by the broker, never stored."""

    since: str | None = None
    until: str | None = None
    event: str | None = None
    client: str | None = None
    service: str | None = None
    decision: str | None = None
    reason: str | None = None
    consent_id: str | None = None
    subject_nik: Annotated[str | None, Field(pattern=r"^[0-9]{16}$")] = None
    subject_ref: Annotated[str | None, Field(pattern=r"^[0-9a-f]{64}$")] = None
    xroad_id: str | None = None
    after_seq: Annotated[int, Field(ge=0, le=MAX_SEQ)] = 0
    limit: Annotated[int, Field(ge=1, le=MAX_PAGE)] = 100


class RecordPage(BaseModel):
    """Records in log order; page on with ``after_seq`` = ``next_after``."""

    records: list[dict[str, Any]]
    next_after: int | None = None


class AuditorApi:
    """The auditor endpoints' logic, apart from HTTP."""

    def __init__(
        self,
        *,
        engine: Engine,
        registry: Registry,
        authenticator: RequestAuthenticator,
        checkpoints: CheckpointScheduler,
        subject_secret: bytes,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._authenticator = authenticator
        self._checkpoints = checkpoints
        self._secret = subject_secret

    async def authenticate(
        self, *, method: str, url: str, headers: Sequence[tuple[str, str]], body: bytes
    ) -> Caller:
        """A signed request from a subsystem with the auditor role, or the reason why not."""
        caller = await self._authenticator.authenticate(
            method=method,
            url=url,
            headers=headers,
            body=body,
            components=CONSENT_REQUEST_COMPONENTS,
        )
        if AUDITOR_ROLE not in self._registry.subsystem(caller.client_id).roles:
            raise AuditorRequired(f"{caller.client_id} does not hold the auditor role")
        return caller

    def records(self, query: RecordQuery) -> RecordPage:
        """Records matching ``query``."""
        subject = query.subject_ref
        if query.subject_nik is not None:
            subject = subject_ref(query.subject_nik, self._secret)
        where = RecordFilter(
            since=query.since,
            until=query.until,
            event=query.event,
            client=query.client,
            service=query.service,
            decision=query.decision,
            reason=query.reason,
            consent_id=query.consent_id,
            subject_ref=subject,
            xroad_id=query.xroad_id,
        )
        found = find_records(self._engine, where, after_seq=query.after_seq, limit=query.limit)
        return RecordPage(
            records=[record.as_dict() for record in found],
            next_after=found[-1].seq if len(found) == query.limit else None,
        )

    async def sign(self) -> CheckpointOut:
        """A checkpoint of the log as committed now (the latest one if nothing was added)."""
        return CheckpointOut.of(await self._checkpoints.sign())

    async def _covering(self, seq: int) -> StoredCheckpoint:
        latest = await asyncio.to_thread(latest_checkpoint, self._engine)
        if latest is None or latest.tree_size < seq:
            latest = await self._checkpoints.sign()
        return latest

    async def latest(self) -> CheckpointOut:
        """The latest checkpoint (signed now if there is none yet)."""
        latest = await asyncio.to_thread(latest_checkpoint, self._engine)
        return CheckpointOut.of(latest if latest is not None else await self._checkpoints.sign())

    def checkpoint(self, checkpoint_id: int) -> CheckpointOut:
        """One checkpoint by id."""
        return CheckpointOut.of(get_checkpoint(self._engine, checkpoint_id))

    def checkpoints(self, *, after_id: int, limit: int) -> list[CheckpointOut]:
        """Checkpoints in signing order."""
        return [
            CheckpointOut.of(c)
            for c in list_checkpoints(self._engine, after_id=after_id, limit=limit)
        ]

    async def inclusion(self, seq: int, checkpoint_id: int | None = None) -> InclusionOut:
        """Record ``seq``'s inclusion proof against a checkpoint (default: the latest)."""
        if checkpoint_id is None:
            checkpoint = await self._covering(seq)
        else:
            checkpoint = await asyncio.to_thread(get_checkpoint, self._engine, checkpoint_id)
        return await asyncio.to_thread(self._inclusion, seq, checkpoint)

    def inclusion_against(
        self, seqs: Sequence[int], checkpoint: StoredCheckpoint
    ) -> list[InclusionOut | None]:
        """Inclusion proofs of several records against one checkpoint (None where not covered)."""
        return [
            self._inclusion(seq, checkpoint) if 1 <= seq <= checkpoint.tree_size else None
            for seq in seqs
        ]

    def _inclusion(self, seq: int, checkpoint: StoredCheckpoint) -> InclusionOut:
        if not 1 <= seq <= checkpoint.tree_size:
            raise AuditRecordNotFound(f"checkpoint {checkpoint.id} does not cover record {seq}")
        (record,) = read_records(self._engine, start=seq, limit=1)
        proof = inclusion_proof_at(self._engine, seq - 1, checkpoint.tree_size)
        return InclusionOut(
            seq=seq,
            leaf_index=seq - 1,
            tree_size=checkpoint.tree_size,
            leaf_hash=merkle.leaf_hash(record.canonical()).hex(),
            proof=[h.hex() for h in proof],
            checkpoint=CheckpointOut.of(checkpoint),
        )

    async def attach_proofs(self, entries: Sequence[Any]) -> None:
        """Set ``proof`` on each entry (anything with ``seq``) against the latest checkpoint."""
        if not entries:
            return
        seqs = [entry.seq for entry in entries]
        checkpoint = await self._covering(max(seqs))
        proofs = await asyncio.to_thread(self.inclusion_against, seqs, checkpoint)
        for entry, proof in zip(entries, proofs, strict=True):
            entry.proof = proof

    async def latest_covering(self, seq: int) -> StoredCheckpoint:
        """The latest checkpoint, signed afresh if it does not yet cover record ``seq``."""
        return await self._covering(seq)

    def consistency(self, old_id: int, new_id: int) -> ConsistencyOut:
        """The consistency proof between two stored checkpoints."""
        old = get_checkpoint(self._engine, old_id)
        new = get_checkpoint(self._engine, new_id)
        if old.tree_size > new.tree_size:
            raise AuditQueryInvalid("the first checkpoint must not be larger than the second")
        proof = consistency_proof_at(self._engine, old.tree_size, new.tree_size)
        return ConsistencyOut(
            old=CheckpointOut.of(old), new=CheckpointOut.of(new), proof=[h.hex() for h in proof]
        )

    async def export(
        self, *, first_seq: int, last_seq: int | None, checkpoint_id: int | None
    ) -> tuple[StoredCheckpoint, Iterator[str]]:
        """The checkpoint an export is made under, and the export's lines (a generator)."""
        if checkpoint_id is not None:
            checkpoint = await asyncio.to_thread(get_checkpoint, self._engine, checkpoint_id)
        else:
            checkpoint = await self._covering(max(first_seq, last_seq or 0, 1))
        lines = iter_export(self._engine, checkpoint, first_seq=first_seq, last_seq=last_seq)
        first = next(lines)  # the range is checked here, before any response is sent
        return checkpoint, _prepend(first, lines)


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
