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
collected, less often. Both settings are process-wide, so only ``simpul serve`` asks for them
(an embedding program or the tests keep their own), and they are undone when serving stops.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = ["YOUNG_THRESHOLD", "tuned_gc"]

#: Allocations (net of deallocations) between collections of the youngest generation.
YOUNG_THRESHOLD: Final = 10_000


@contextmanager
def tuned_gc() -> Iterator[None]:
    """Freeze what exists now and raise the young threshold; restore both on exit."""
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
