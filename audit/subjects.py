"""Keyed references: a citizen's NIK, and a response body, as keyed hashes, so the log names no one.

Without the broker's secret a reference cannot be reversed by hashing all possible NIKs (there
are only about 10**12 plausible ones, well within reach of a plain hash); with it the broker
can still find a citizen's own records.

A response body is referenced the same way. A minimised answer can be tiny (``{"nama": ...}``
when only the name was consented to), so a plain SHA-256 of it could be reversed with a list of
names, or matched against a known person's record to say whose exchange a record was. The body
reference is keyed by a key derived from the same secret, kept apart from subject references
by its own label.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["MIN_SECRET_BYTES", "body_ref", "body_ref_key", "same_subject", "subject_ref"]

#: The shortest secret accepted: the HMAC-SHA256 key should carry the hash's full 256 bits.
MIN_SECRET_BYTES: Final = 32
_BODY_REF_LABEL: Final = b"simpul/audit/response-body/v1"


def subject_ref(nik: str, secret: bytes) -> str:
    """The subject reference of ``nik``: hex HMAC-SHA256 keyed by ``secret``."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the subject secret must be at least {MIN_SECRET_BYTES} bytes")
    if not nik:
        raise ValueError("the subject must not be empty")
    return hmac.new(secret, nik.encode(), hashlib.sha256).hexdigest()


def body_ref_key(secret: bytes) -> bytes:
    """The key of :func:`body_ref`, derived from the subject secret (HMAC of a fixed label)."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the subject secret must be at least {MIN_SECRET_BYTES} bytes")
    return hmac.new(secret, _BODY_REF_LABEL, hashlib.sha256).digest()


def body_ref(body: bytes, key: bytes) -> str:
    """The audit log's reference to a response body: hex HMAC-SHA256 keyed by ``key``.

    ``key`` is :func:`body_ref_key` of the subject secret, derived once by the caller.
    """
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def same_subject(ref_a: str, ref_b: str) -> bool:
    """Whether two subject references are equal, compared in constant time."""
    return hmac.compare_digest(ref_a.encode(), ref_b.encode())
