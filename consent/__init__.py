"""Consent: requests, the citizen's decisions, consents and their tokens, and the exchange checks.

Modules: ``errors`` (one class per problem type), ``tokens`` (issue and verify consent tokens),
``checks`` (what a verified token allows), ``people`` (who a record names and who of them may
consent), ``models`` and ``store`` (the lifecycle in a database).
This package never imports ``broker`` or ``fastapi``.
"""

from __future__ import annotations

from consent.checks import check_exchange, check_may_consent, check_subject_in
from consent.models import (
    Consent,
    ConsentEvent,
    ConsentRequest,
    ConsentStatus,
    FetchType,
    RequestStatus,
)
from consent.receipts import ReceiptContext, ReceiptIssuer, verify_receipt
from consent.store import ConsentStore, install
from consent.tokens import ConsentClaims, Grant, Purpose, TokenIssuer, TokenVerifier

__all__ = [
    "Consent",
    "ConsentClaims",
    "ConsentEvent",
    "ConsentRequest",
    "ConsentStatus",
    "ConsentStore",
    "FetchType",
    "Grant",
    "Purpose",
    "ReceiptContext",
    "ReceiptIssuer",
    "RequestStatus",
    "TokenIssuer",
    "TokenVerifier",
    "check_exchange",
    "check_may_consent",
    "check_subject_in",
    "install",
    "verify_receipt",
]
