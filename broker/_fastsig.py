"""A direct RFC 9421 signer for the broker's own responses: the hot path of every exchange.

The library (``http-message-signatures``) builds the same signature base through its general
Structured Fields machinery, which costs ten times the Ed25519 signature itself. The broker's
responses use a narrow, fixed shape (``@status`` and single-valued headers it set itself,
plain-token key id and tag), so the base can be written out directly. Anything outside that
shape returns None and the caller signs with the library. Ed25519 signatures are
deterministic, so ``tests/broker/test_fastsig.py`` proves the two produce identical headers.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from broker import _ed25519 as ed25519

__all__ = ["sign_response_headers"]

# Printable ASCII without the characters a Structured Fields string would have to escape.
_TOKEN = re.compile(r"[A-Za-z0-9._:/+=-]{1,200}")
# A Structured Fields key (RFC 8941 section 3.2), which a signature's label must be.
_LABEL = re.compile(r"[a-z*][a-z0-9_.*-]{0,63}")
_SIGNATURE_FIELDS = frozenset({"signature", "signature-input"})
_NAME = re.compile(r"[a-z0-9-]{1,64}")
_VALUE = re.compile(r"[\x20-\x7e]*")


def sign_response_headers(
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    key: Ed25519PrivateKey,
    key_id: str,
    label: str,
    tag: str,
    components: Sequence[str],
    created: datetime,
) -> dict[str, str] | None:
    """``headers`` plus Content-Digest, Signature-Input and Signature; None if not this shape."""
    if not (_TOKEN.fullmatch(key_id) and _TOKEN.fullmatch(tag) and _LABEL.fullmatch(label)):
        return None
    # The body is always covered, each component once: the library adds a missing
    # content-digest itself and refuses a repeated component.
    if "content-digest" not in components or len(set(components)) != len(components):
        return None
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        low = name.lower()
        if low in lowered or low == "content-digest" or low in _SIGNATURE_FIELDS:
            # Repeated names, a digest the library would check, or an earlier signature it
            # would drop: not this shape.
            return None
        lowered[low] = value
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    lowered["content-digest"] = digest
    lines = []
    for component in components:
        if component == "@status":
            value = str(status)
        elif _NAME.fullmatch(component) and component in lowered:
            value = lowered[component].strip(" \t")
            if not _VALUE.fullmatch(value):
                return None
        else:
            return None
        lines.append(f'"{component}": {value}')
    inner = " ".join(f'"{c}"' for c in components)
    params = f'({inner});created={int(created.timestamp())};keyid="{key_id}";alg="ed25519"'
    params += f';tag="{tag}"'
    lines.append(f'"@signature-params": {params}')
    signature = ed25519.sign(key, "\n".join(lines).encode("ascii"))
    out = dict(headers)
    out["Content-Digest"] = digest
    out["Signature-Input"] = f"{label}={params}"
    out["Signature"] = f"{label}=:{base64.b64encode(signature).decode()}:"
    return out
