"""What an exchange's audit records say: the trail its steps fill in, the others its record
names (each gets a record of their own), and request text made storable."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from audit import subject_ref
from broker.signatures import request_hash
from schemas.errors import ResponseInvalid

if TYPE_CHECKING:
    from broker.exchange import ExchangeRequest

__all__ = [
    "CO_SUBJECT_EVENT",
    "MAX_RECORD_PEOPLE",
    "Trail",
    "co_subject_refs",
    "request_hash_or_none",
    "short",
    "storable",
]

#: The most people one record may name (a KK's members): each gets the exchange in their
#: access log, an audit record apiece, so an answer naming more is refused as implausible.
MAX_RECORD_PEOPLE = 64

#: The event of the record filed under each other person a released record names (a KK's
#: other members, a birth certificate's child or parents): the same exchange, in their log.
CO_SUBJECT_EVENT = "exchange.co_subject"


@dataclass(slots=True)
class Trail:
    """What the audit record will say; filled in as each step passes."""

    xroad_id: str
    client: str
    service: str
    officer: str | None
    issue: str | None
    purpose: str | None = None
    consent_id: str | None = None
    subject_ref: str | None = None
    co_subject_refs: tuple[str, ...] = ()  # the others the fetched record names
    released: tuple[str, ...] = field(default_factory=tuple)
    request_hash: str | None = None
    timed: bool = False  # this exchange's stages are timed (see broker.stages)


def co_subject_refs(
    niks: Sequence[str], *, filed_under: str | None, secret: bytes
) -> tuple[str, ...]:
    """The subject references of the people ``niks`` names but the one an exchange is filed
    under (``filed_under``, a reference too), in order.

    Raises :class:`ResponseInvalid` past :data:`MAX_RECORD_PEOPLE`: no family card or birth
    certificate names so many, and each of them costs an audit record.
    """
    if len(niks) > MAX_RECORD_PEOPLE:
        raise ResponseInvalid(f"the record names more than {MAX_RECORD_PEOPLE} people")
    refs = (subject_ref(nik, secret) for nik in niks)
    return tuple(ref for ref in refs if ref != filed_under)


def request_hash_or_none(request: ExchangeRequest) -> str | None:
    """The hash that binds the answer to the request; None when the request is not even signed."""
    try:
        return request_hash(
            method=request.method, url=request.url, headers=request.headers, body=request.body
        )
    except Exception:  # noqa: BLE001 - an unsigned request is refused later, and still audited
        return None


def short(value: str | None) -> str | None:
    """``value`` made :func:`storable` and cut to 255 characters (a column's width); None for
    none or empty."""
    return storable(value)[:255] if value else None


#: C0 control characters, NUL above all: PostgreSQL holds no NUL in text, and one in a
#: record would fail its whole group-committed batch (every exchange in it a 503).
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def storable(value: str) -> str:
    """``value`` (unverified: a path, a header) with control characters as U+FFFD, for the
    audit record of a request that may be refused for them."""
    return value if value.isprintable() else _CONTROLS.sub("\ufffd", value)
