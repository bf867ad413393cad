"""The broker's long-lived parts, built once at start-up and closed at shutdown."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from adapters import Adapter, create_adapter
from broker.registry import Registry, Service

__all__ = ["Adapters"]


@dataclass(slots=True)
class Adapters:
    """One adapter (with its own connection pool) per registered service."""

    by_service: Mapping[str, Adapter]

    @classmethod
    def for_registry(cls, registry: Registry) -> Adapters:
        """Build the adapters the registry names; nothing connects until the first call."""
        return cls(
            by_service={
                service.id: create_adapter(
                    service.adapter, base_url=service.backend, timeout=service.timeout
                )
                for service in registry.services.values()
            }
        )

    def for_service(self, service: Service) -> Adapter:
        """The adapter serving ``service``."""
        return self.by_service[service.id]

    async def aclose(self) -> None:
        """Close every connection pool."""
        for adapter in self.by_service.values():
            await adapter.aclose()
