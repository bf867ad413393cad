"""Subject references: a citizen's NIK as a keyed hash, so the log names no one.

Without the broker's secret a reference cannot be reversed by hashing all possible NIKs (there
are only about 10**12 plausible ones, well within reach of a plain hash); with it the broker
can still find a citizen's own records.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["MIN_SECRET_BYTES", "same_subject", "subject_ref"]

#: The shortest secret accepted: the HMAC-SHA256 key should carry the hash's full 256 bits.
MIN_SECRET_BYTES: Final = 32


def subject_ref(nik: str, secret: bytes) -> str:
    """The subject reference of ``nik``: hex HMAC-SHA256 keyed by ``secret``."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the subject secret must be at least {MIN_SECRET_BYTES} bytes")
    if not nik:
        raise ValueError("the subject must not be empty")
    return hmac.new(secret, nik.encode(), hashlib.sha256).hexdigest()


def same_subject(ref_a: str, ref_b: str) -> bool:
    """Whether two subject references are equal, compared in constant time."""
    return hmac.compare_digest(ref_a.encode(), ref_b.encode())
