"""Database work on a thread that a cancelled caller still waits for.

``await asyncio.to_thread(work)`` returns at once when the awaiting task is cancelled, while
``work`` goes on running on its thread with a pooled connection checked out. When the task is
a background loop that the broker cancels as it stops, that connection would then be given
back after the engine's pool has been disposed of, to a pool nothing will close; and whatever
the caller meant to do once the work had committed would not be done.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["finished_even_if_cancelled"]

_T = TypeVar("_T")


async def finished_even_if_cancelled(
    work: Coroutine[Any, Any, _T], *, then: Callable[[_T], object] | None = None
) -> _T:
    """Await ``work`` (a database call on its thread); if cancelled meanwhile, let it finish.

    The thread commits whatever the caller does, so a stopping caller waits for it, hands its
    result to ``then`` (to give a claim back, say), and only then lets the cancellation
    through. A second cancellation while it waits is obeyed at once.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):  # failed work holds nothing to give back
            result = await task
            if then is not None:
                then(result)
        raise
