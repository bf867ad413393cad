"""The garbage collector's settings for a serving broker process.

A broker worker builds a few hundred thousand long-lived objects at startup (FastAPI and
pydantic models, SQLAlchemy, the registry, schemas, keys). CPython's collector walked all of
them at every full collection, about 80 ms each on the benchmark machine, and with its default
thresholds it ran often: under load 9 % of the worker's CPU went to collecting, and each full
collection stalled every exchange in flight (docs/performance.md).

:func:`tuned_gc` therefore collects once, then freezes what startup built (``gc.freeze``: the
collector no longer walks it; it is still freed by reference counting as usual) and raises
the youngest generation's threshold, so that objects an exchange allocates and drops are
mostly gone by reference counting before a collection would walk them. Cycles are still
collected, less often, except cycles among what was frozen: those stay until serving stops,
a bounded cost, since startup objects become garbage once at most. Both settings are
process-wide, so only ``simpul serve`` asks for them (an embedding program or the tests keep
their own), and they are undone when serving stops; nested uses (two apps in one process)
undo them only when the last one stops.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "tuned_gc"]

#: Allocations (net of deallocations) between collections of the youngest generation.
YOUNG_THRESHOLD: Final = 10_000


class _Nesting:
    """How many served apps are inside :func:`tuned_gc`, and the settings from before them."""

    active = 0
    before: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def tuned_gc() -> Iterator[None]:
    """Freeze what exists now and raise the young threshold; restore both on the last exit."""
    if _Nesting.active == 0:
        _Nesting.before = gc.get_threshold()
        gc.collect()
        gc.freeze()
        gc.set_threshold(YOUNG_THRESHOLD, *_Nesting.before[1:])
    _Nesting.active += 1
    try:
        yield
    finally:
        _Nesting.active -= 1
        if _Nesting.active == 0:
            gc.set_threshold(*_Nesting.before)
            gc.unfreeze()
