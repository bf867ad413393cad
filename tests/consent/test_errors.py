"""The consent errors are a contract: one stable problem type and status per cause."""

from __future__ import annotations

import pytest

from consent import errors
from consent.errors import Error

# Pinned: problem types are never renamed (docs/architecture.md, Errors).
EXPECTED = {
    "ConsentMissing": ("consent-missing", 401),
    "ConsentInvalid": ("consent-invalid", 401),
    "ConsentAlgorithmRefused": ("consent-algorithm-refused", 401),
    "ConsentExpired": ("consent-expired", 403),
    "ConsentNotYetValid": ("consent-not-yet-valid", 403),
    "ConsentRevoked": ("consent-revoked", 403),
    "ConsentNotActive": ("consent-not-active", 403),
    "ConsentExhausted": ("consent-exhausted", 403),
    "ConsentNotFound": ("consent-not-found", 403),
    "ConsentWrongAudience": ("consent-wrong-audience", 403),
    "ConsentNotBound": ("consent-not-bound", 403),
    "ConsentWrongSubject": ("consent-wrong-subject", 403),
    "ConsentNotEntitled": ("consent-not-entitled", 403),
    "ServiceNotGranted": ("service-not-granted", 403),
    "FieldNotGranted": ("field-not-granted", 403),
    "ConsentPurposeMismatch": ("consent-purpose-mismatch", 403),
    "ConsentRequestInvalid": ("consent-request-invalid", 400),
    "ConsentRequestNotFound": ("consent-request-not-found", 404),
    "ConsentRequestNotPending": ("consent-request-not-pending", 409),
    "ConsentTransitionRefused": ("consent-transition-refused", 409),
    "ReceiptInvalid": ("receipt-invalid", 400),
}


class TestErrors:
    def test_every_exported_error_is_pinned(self) -> None:
        assert set(errors.__all__) - {"Error"} == set(EXPECTED)

    @pytest.mark.parametrize(("name", "expected"), sorted(EXPECTED.items()))
    def test_problem_type_and_status(self, name: str, expected: tuple[str, int]) -> None:
        cls = getattr(errors, name)
        assert issubclass(cls, Error)
        assert (cls.problem_type, cls.status) == expected
        assert cls.__doc__

    def test_detail_defaults_to_the_title(self) -> None:
        error = errors.ConsentRevoked()
        assert error.detail == "Consent has been revoked" == str(error)
        assert errors.ConsentNotActive("consent is paused").detail == "consent is paused"
