"""FastAPI dependencies, as ``Annotated`` aliases that build on each other."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Request

from broker.citizen import Citizen
from broker.errors import CitizenUnauthenticated
from broker.runtime import Broker

__all__ = ["BrokerDep", "CitizenDep", "PathId"]


# Dependencies are coroutines on purpose: FastAPI runs a plain ``def`` dependency in its thread
# pool, a thread hop per request that cost ≈190 µs of CPU for a one-attribute lookup.
async def _broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


BrokerDep = Annotated[Broker, Depends(_broker)]


async def _citizen(
    broker: BrokerDep, authorization: Annotated[str | None, Header()] = None
) -> Citizen:
    if broker.citizens is None:
        raise CitizenUnauthenticated("no citizen identity provider is configured")
    return broker.citizens.verify(authorization)


CitizenDep = Annotated[Citizen, Depends(_citizen)]

#: A consent's or a consent request's id in a path. No NUL: PostgreSQL cannot hold one in text
#: and fails the query (a 500) where SQLite finds nothing; refused here as a bad request.
PathId = Annotated[str, Path(pattern=r"^[^\x00]+$")]
