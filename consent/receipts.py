"""Consent receipts: what the citizen keeps as proof of what they agreed to.

The fields follow the Kantara Initiative Consent Receipt Specification v1.1 (who collects,
what personal data from which controller, why, on what legal basis, for how long, how to
withdraw), signed by the broker as a compact JWS (Ed25519, ``typ consent-receipt+jwt``) that
anyone can check with the broker's published JWK Set.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

from consent.errors import ReceiptInvalid
from consent.models import Consent

__all__ = [
    "RECEIPT_TYPE",
    "RECEIPT_VERSION",
    "ReceiptContext",
    "ReceiptIssuer",
    "mask_nik",
    "receipt_payload",
    "verify_receipt",
]

#: The ``typ`` header of a receipt (never confusable with a consent token).
RECEIPT_TYPE: Final = "consent-receipt+jwt"
#: The Kantara specification version the fields follow.
RECEIPT_VERSION: Final = "KI-CR-v1.1.0"

_ALG: Final = "Ed25519"
_REGISTRY: Final = jws.JWSRegistry(algorithms=[_ALG])


@dataclass(frozen=True, slots=True)
class ReceiptContext:
    """What the store does not know: names and texts from the registry, and where to revoke.

    ``agencies`` maps subsystem ids (the consumer, each provider) to organisation names;
    ``providers`` maps each granted service id to its provider subsystem.
    """

    consumer_name: str
    purpose_text_id: str
    purpose_text_en: str
    legal_basis: str
    providers: Mapping[str, str] = field(default_factory=dict)
    agencies: Mapping[str, str] = field(default_factory=dict)
    revoke_url: str = ""
    jurisdiction: str = "ID"


def mask_nik(nik: str) -> str:
    """The NIK with all but its last four digits hidden: enough for the citizen to recognise."""
    return "*" * (len(nik) - 4) + nik[-4:]


def receipt_payload(consent: Consent, context: ReceiptContext, *, issuer: str) -> dict[str, Any]:
    """The receipt's claims for ``consent`` (deterministic: the same consent, the same receipt)."""
    services = []
    for grant in consent.grants:
        provider = context.providers.get(grant.service, "")
        services.append(
            {
                "service": grant.service,
                "piiController": context.agencies.get(provider, provider),
                "purposes": [
                    {
                        "purpose": context.purpose_text_id,
                        "purposeEn": context.purpose_text_en,
                        "purposeCode": consent.purpose.code,
                        "purposeCategory": [consent.purpose.code],
                        "consentType": "EXPLICIT",
                        "piiCategory": list(grant.fields),
                        "primaryPurpose": True,
                        "legalBasis": context.legal_basis,
                        "termination": f"the consent ends at {consent.exp} (unix time)"
                        " or when revoked, whichever comes first",
                        "thirdPartyDisclosure": True,
                        "thirdPartyName": context.consumer_name,
                    }
                ],
            }
        )
    return {
        "version": RECEIPT_VERSION,
        "iss": issuer,
        "iat": consent.iat,
        "jurisdiction": context.jurisdiction,
        "consentTimestamp": consent.iat,
        "collectionMethod": "explicit approval by the citizen in Simpul",
        "consentReceiptID": consent.id,
        "consentRequestID": consent.request_id,
        "language": "id",
        "piiPrincipalId": mask_nik(consent.subject_nik),
        "piiControllers": [
            {"piiController": context.consumer_name, "subsystem": consent.client_id},
            *(
                {"piiController": context.agencies.get(p, p), "subsystem": p}
                for p in dict.fromkeys(context.providers.get(g.service, "") for g in consent.grants)
                if p
            ),
        ],
        "services": services,
        "procedureRef": consent.procedure_ref,
        "validity": {"notBefore": consent.nbf, "expiresAt": consent.exp},
        "fetchType": consent.fetch_type.value,
        "maxUses": consent.max_uses,
        "sensitive": True,
        "spiCat": ["national identity data"],
        "revocation": {
            "method": "POST",
            "url": context.revoke_url,
            "effect": "immediate: the next exchange under this consent is refused",
        },
    }


class ReceiptIssuer:
    """Signs receipts with the broker's current key (its ``kid`` in the header)."""

    def __init__(self, *, key: OKPKey, issuer: str) -> None:
        if not key.is_private or key.curve_name != "Ed25519":
            raise ValueError("receipts are signed with a private Ed25519 key")
        key.ensure_kid()
        self._key = key
        self.issuer = issuer
        self.kid = str(key.kid)

    def issue(self, consent: Consent, context: ReceiptContext) -> str:
        """The compact JWS receipt of ``consent``."""
        payload = receipt_payload(consent, context, issuer=self.issuer)
        header = {"alg": _ALG, "kid": self._key.kid, "typ": RECEIPT_TYPE}
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return jws.serialize_compact(header, body.encode(), self._key, registry=_REGISTRY)


def verify_receipt(receipt: str, keys: KeySet) -> dict[str, Any]:
    """Check a receipt's signature against ``keys`` (e.g. the broker's JWKS); return its claims."""
    try:
        obj = jws.extract_compact(receipt.encode(), registry=_REGISTRY)
        header = obj.headers()
        if header.get("typ") != RECEIPT_TYPE or header.get("alg") != _ALG:
            raise ReceiptInvalid("not a consent receipt")
        key = keys.get_by_kid(str(header.get("kid")))
        if not jws.validate_compact(obj, key, registry=_REGISTRY):
            raise ReceiptInvalid("receipt signature does not verify")
        claims = json.loads(obj.payload)
    except ReceiptInvalid:
        raise
    except (JoseError, ValueError, KeyError, UnicodeError) as exc:
        raise ReceiptInvalid("receipt signature does not verify") from exc
    if not isinstance(claims, dict):
        raise ReceiptInvalid("receipt payload is not a JSON object")
    return claims
