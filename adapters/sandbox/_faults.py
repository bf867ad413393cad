"""How the sandbox backends misbehave for the population's fault NIKs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from adapters.sandbox.population import FaultKind, Population

__all__ = ["SLOW_DELAY", "fault_for", "stall"]

SLOW_DELAY = 3.0
"""Seconds a backend waits before answering about a ``slow`` NIK."""


def fault_for(population: Population, niks: Iterable[str]) -> FaultKind | None:
    """The fault of the first of ``niks`` that has one: an answer about several people (a KK)
    misbehaves if any of them is a fault NIK."""
    for nik in niks:
        fault = population.faults.get(nik)
        if fault is not None:
            return fault
    return None


async def stall(fault: FaultKind | None, delay: float) -> None:
    """Sleep ``delay`` seconds if ``fault`` is ``slow``; then the answer goes out as usual."""
    if fault == "slow":
        await asyncio.sleep(delay)
