"""The sandbox: a synthetic population and two agency backends serving it over HTTP.

The backends are FastAPI apps built by factories; importing this package builds nothing.
The adapters never import it: it stands in for the agencies, it is not part of the broker.
"""

from __future__ import annotations

from adapters.sandbox.capil import create_capil_app
from adapters.sandbox.dukcapil import create_dukcapil_app
from adapters.sandbox.population import Population, generate

__all__ = ["Population", "create_capil_app", "create_dukcapil_app", "generate"]
