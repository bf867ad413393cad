"""The one interface the broker sees of an agency backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

__all__ = ["Adapter"]


@runtime_checkable
class Adapter(Protocol):
    """Maps a shared-schema query to one agency backend's API and its answer back.

    ``service`` is the schema code (``ktp``, ``kk``, ``akta-lahir``); ``query`` is the
    validated request body without ``fields``. The result is the shared record shape; failures
    are :mod:`adapters.errors`.
    """

    name: str

    async def fetch(self, service: str, query: Mapping[str, Any]) -> dict[str, Any]:
        """The record ``query`` names, in the shared shape of ``service``."""
        ...

    async def aclose(self) -> None:
        """Release the adapter's connections (only those it owns)."""
        ...
