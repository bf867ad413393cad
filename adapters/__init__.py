"""Adapters: one module per agency backend, behind the small :class:`Adapter` protocol.

``create_adapter(name, base_url=..., timeout=...)`` builds one by registry name. The
``sandbox`` subpackage (synthetic backends, FastAPI) is separate: importing ``adapters``
never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from adapters._http import HttpAdapter
from adapters._protocol import Adapter
from adapters.capil import CapilAdapter
from adapters.dukcapil import DukcapilAdapter

if TYPE_CHECKING:  # only a caller that hands in a client has httpx imported
    import httpx

__all__ = [
    "ADAPTER_NAMES",
    "ADAPTER_SERVICES",
    "Adapter",
    "CapilAdapter",
    "DukcapilAdapter",
    "create_adapter",
]

_CLASSES: Mapping[str, type[HttpAdapter]] = {
    DukcapilAdapter.name: DukcapilAdapter,
    CapilAdapter.name: CapilAdapter,
}

ADAPTER_NAMES: tuple[str, ...] = tuple(_CLASSES)
"""The registry names of the adapters: ``("dukcapil", "capil")``."""

ADAPTER_SERVICES: Mapping[str, frozenset[str]] = MappingProxyType(
    {name: cls.services for name, cls in _CLASSES.items()}
)
"""The schema codes each adapter serves, for checking a registry before anything runs."""


def create_adapter(
    name: str, *, base_url: str, timeout: float, client: httpx.AsyncClient | None = None
) -> Adapter:
    """The adapter registered as ``name``, calling the backend at ``base_url``.

    ``timeout`` (seconds) bounds each fetch. Without ``client`` the adapter owns a pool of
    keep-alive connections (``adapters._wire``) and closes it in ``aclose``; a given client is
    left open.
    """
    try:
        cls = _CLASSES[name]
    except KeyError:
        known = ", ".join(ADAPTER_NAMES)
        raise ValueError(f"unknown adapter {name!r} (known: {known})") from None
    return cls(base_url=base_url, timeout=timeout, client=client)
