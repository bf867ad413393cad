"""Signed checkpoints of the log, kept for ever: sign now, sign on a timer, look them up.

A checkpoint is signed over the tree exactly as committed: the size and the root are read under
the writers' lock, after any batch that is already committed and before any that is not.
Every checkpoint is stored (``audit_checkpoints`` is append-only), so an auditor can ask for a
consistency proof between any two of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, insert, select

from audit._lock import write_transaction
from audit.errors import CheckpointNotFound
from audit.notes import Checkpoint, key_id, sign_checkpoint
from audit.records import format_time
from audit.store import audit_checkpoints
from audit.tree import root_in, tree_size_in

__all__ = [
    "DEFAULT_ORIGIN",
    "CheckpointScheduler",
    "KeySource",
    "StoredCheckpoint",
    "checkpoint_covering",
    "get_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "sign_now",
]

#: The log's name in its checkpoints (and the key name it signs under), C2SP-style.
DEFAULT_ORIGIN: Final = "simpul.go.id/audit"

#: Where the current signing key comes from: ``(kid, private key)``, asked at every signing,
#: so a rotated key is used from the next checkpoint on.
KeySource = Callable[[], tuple[str, Ed25519PrivateKey]]


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A checkpoint as kept: the signed note plus what it says, for lookups."""

    id: int
    tree_size: int
    root_hash: bytes
    time: str
    key_name: str
    key_id: str
    kid: str
    note: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: the root in hex, the note exactly as signed."""
        return {
            "id": self.id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "time": self.time,
            "key_name": self.key_name,
            "key_id": self.key_id,
            "kid": self.kid,
            "note": self.note,
        }


def _from_row(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        id=int(row.id),
        tree_size=int(row.tree_size),
        root_hash=bytes.fromhex(row.root_hash),
        time=str(row.time),
        key_name=str(row.key_name),
        key_id=str(row.key_id),
        kid=str(row.kid),
        note=str(row.note),
    )


def sign_now(
    engine: Engine, *, origin: str, kid: str, key: Ed25519PrivateKey, force: bool = False
) -> StoredCheckpoint:
    """Sign and store a checkpoint of the log as committed now.

    Unless ``force``, returns the latest checkpoint instead when the log has not grown since.
    """
    # Under the writers' lock: the size and the nodes under it agree, and of several nodes
    # signing at once, the second sees the first's checkpoint (no duplicates, and ids follow
    # tree sizes). Holding it costs the writers one root and one signature.
    with write_transaction(engine) as conn:
        size = tree_size_in(conn)
        latest = _latest_in(conn)
        if latest is not None and latest.tree_size == size and not force:
            return latest
        root = root_in(conn, size)
        checkpoint = Checkpoint(origin=origin, size=size, root=root)
        signed = StoredCheckpoint(
            id=0,
            tree_size=size,
            root_hash=root,
            time=format_time(datetime.now(UTC)),
            key_name=origin,
            key_id=key_id(origin, key.public_key()).hex(),
            kid=kid,
            note=sign_checkpoint(checkpoint, key),
        )
        values = signed.as_dict()
        del values["id"]
        inserted = conn.execute(insert(audit_checkpoints).values(**values))
    new_id = inserted.inserted_primary_key
    if new_id is None:  # pragma: no cover - both dialects return the new key
        raise RuntimeError("the checkpoint's id was not returned")
    return replace(signed, id=int(new_id[0]))


def _latest_in(conn: Any) -> StoredCheckpoint | None:
    row = conn.execute(
        # The largest tree, not the last row: with several nodes signing, a checkpoint of a
        # smaller size may be stored after a larger one, and "latest" must never go back.
        select(audit_checkpoints)
        .order_by(audit_checkpoints.c.tree_size.desc(), audit_checkpoints.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _from_row(row)


def latest_checkpoint(engine: Engine) -> StoredCheckpoint | None:
    """The most recent checkpoint, or None before the first."""
    with engine.connect() as conn:
        return _latest_in(conn)


def get_checkpoint(engine: Engine, checkpoint_id: int) -> StoredCheckpoint:
    """The checkpoint with ``checkpoint_id``; :class:`CheckpointNotFound` if there is none."""
    with engine.connect() as conn:
        row = conn.execute(
            select(audit_checkpoints).where(audit_checkpoints.c.id == checkpoint_id)
        ).first()
    if row is None:
        raise CheckpointNotFound(f"no checkpoint {checkpoint_id}")
    return _from_row(row)


def checkpoint_covering(engine: Engine, seq: int) -> StoredCheckpoint | None:
    """The earliest checkpoint whose tree includes record ``seq``, if one was signed yet."""
    with engine.connect() as conn:
        row = conn.execute(
            select(audit_checkpoints)
            .where(audit_checkpoints.c.tree_size >= seq)
            .order_by(audit_checkpoints.c.tree_size, audit_checkpoints.c.id)
            .limit(1)
        ).first()
    return None if row is None else _from_row(row)


def list_checkpoints(
    engine: Engine, *, after_id: int = 0, limit: int | None = None
) -> list[StoredCheckpoint]:
    """Checkpoints in the order they were signed, from after ``after_id``."""
    query = (
        select(audit_checkpoints)
        .where(audit_checkpoints.c.id > after_id)
        .order_by(audit_checkpoints.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [_from_row(row) for row in conn.execute(query)]


class CheckpointScheduler:
    """Signs a checkpoint every ``interval`` seconds while the log grows, and on demand."""

    def __init__(
        self, engine: Engine, *, key: KeySource, origin: str = DEFAULT_ORIGIN, interval: float = 2.0
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._engine = engine
        self._key = key
        self._origin = origin
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def origin(self) -> str:
        """The log's origin line (and key name)."""
        return self._origin

    async def sign(self, *, force: bool = False) -> StoredCheckpoint:
        """Sign a checkpoint of the log as committed now (or return the latest if unchanged)."""
        kid, key = self._key()
        async with self._lock:  # one signer at a time per process: no duplicate checkpoints
            signing = asyncio.ensure_future(
                asyncio.to_thread(
                    sign_now, self._engine, origin=self._origin, kid=kid, key=key, force=force
                )
            )
            try:
                return await asyncio.shield(signing)
            except asyncio.CancelledError:
                # Stopping: the thread signs all the same. Hold the lock until it has, so the
                # last checkpoint of stop() is not signed beside it, and the connection goes
                # back before the engine is disposed of.
                with suppress(Exception):
                    await signing
                raise

    async def start(self) -> None:
        """Start signing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="audit-checkpoints")

    async def stop(self) -> None:
        """Stop the timer, then sign a last checkpoint covering everything written."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        try:
            await self.sign()
        except Exception:  # noqa: BLE001 - shutting down; the next start signs instead
            return

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sign()
            except Exception:  # noqa: BLE001, S112 - a failed signing is retried at the next tick
                continue
