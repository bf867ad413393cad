"""What a verified consent allows: the checks on one exchange and on the provider's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from consent.checks import (
    AllOf,
    Audience,
    BoundTo,
    PurposeIs,
    Subject,
    check_exchange,
    check_may_consent,
    check_subject_in,
)
from consent.errors import (
    ConsentNotBound,
    ConsentNotEntitled,
    ConsentPurposeMismatch,
    ConsentWrongAudience,
    ConsentWrongSubject,
    Error,
    FieldNotGranted,
    ServiceNotGranted,
)
from consent.people import RecordPeople
from consent.tokens import ConsentClaims
from tests.consent.conftest import CLIENT, KK, KTP, NIK, OTHER_CLIENT, OTHER_NIK

AKTA = "ID/GOV/DUKCAPIL/capil/akta-lahir"
OTHER_JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def exchange(claims: ConsentClaims, jkt: str, /, **changes: Any) -> tuple[str, ...]:
    """``check_exchange`` with a request that the claims allow, changed by ``changes``."""
    request: dict[str, Any] = {
        "client_id": CLIENT,
        "client_jkt": jkt,
        "service_id": KTP,
        "subject_nik": NIK,
        "fields": None,
        "purpose_code": "izin-usaha",
    }
    request.update(changes)
    return check_exchange(claims, **request)


class TestCheckExchange:
    def test_all_granted_fields_when_none_requested(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        assert exchange(claims, client_jkt) == ("nik", "nama", "alamat")

    def test_requested_fields_in_request_order_without_repeats(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        fields = ["alamat", "nik", "alamat"]
        assert exchange(claims, client_jkt, fields=fields) == ("alamat", "nik")

    def test_the_grant_of_the_called_service(self, claims: ConsentClaims, client_jkt: str) -> None:
        assert exchange(claims, client_jkt, service_id=KK) == ("no_kk", "anggota")

    def test_no_subject_in_request_skips_the_subject_check(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        # e.g. a KK looked up by its number: check_subject_in runs on the answer instead
        assert exchange(claims, client_jkt, subject_nik=None, service_id=KK) == ("no_kk", "anggota")

    def test_purpose_is_optional(self, claims: ConsentClaims, client_jkt: str) -> None:
        assert exchange(claims, client_jkt, purpose_code=None, fields=["nama"]) == ("nama",)

    def test_empty_field_list_releases_nothing(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        assert exchange(claims, client_jkt, fields=[]) == ()

    def test_a_single_string_is_not_a_field_list(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        with pytest.raises(TypeError):
            exchange(claims, client_jkt, fields="nama")

    @pytest.mark.parametrize(
        ("changes", "error"),
        [
            pytest.param({"client_id": OTHER_CLIENT}, ConsentWrongAudience, id="wrong-audience"),
            pytest.param({"client_jkt": OTHER_JKT}, ConsentNotBound, id="not-bound"),
            pytest.param({"client_jkt": ""}, ConsentNotBound, id="not-bound-empty"),
            pytest.param({"client_jkt": "é" * 43}, ConsentNotBound, id="not-bound-non-ascii"),
            pytest.param({"subject_nik": OTHER_NIK}, ConsentWrongSubject, id="wrong-subject"),
            pytest.param({"subject_nik": "३१७१"}, ConsentWrongSubject, id="subject-non-ascii"),
            pytest.param({"service_id": AKTA}, ServiceNotGranted, id="service-not-granted"),
            pytest.param(
                {"service_id": AKTA, "fields": ["nik"]}, ServiceNotGranted, id="service-with-fields"
            ),
            pytest.param({"fields": ["nama", "agama"]}, FieldNotGranted, id="field-not-granted"),
            pytest.param({"fields": ["no_kk"]}, FieldNotGranted, id="field-of-another-grant"),
            pytest.param({"purpose_code": "bansos"}, ConsentPurposeMismatch, id="purpose-mismatch"),
        ],
    )
    def test_refused(
        self,
        claims: ConsentClaims,
        client_jkt: str,
        changes: dict[str, Any],
        error: type[Error],
    ) -> None:
        with pytest.raises(error) as caught:
            exchange(claims, client_jkt, **changes)
        assert type(caught.value) is error
        assert NIK not in caught.value.detail
        assert OTHER_NIK not in caught.value.detail

    def test_field_not_granted_names_the_fields(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        with pytest.raises(FieldNotGranted, match="agama, pekerjaan"):
            exchange(claims, client_jkt, fields=["pekerjaan", "nama", "agama"])

    def test_audience_is_checked_first(self, claims: ConsentClaims, client_jkt: str) -> None:
        with pytest.raises(ConsentWrongAudience):
            exchange(
                claims,
                client_jkt,
                client_id=OTHER_CLIENT,
                subject_nik=OTHER_NIK,
                service_id=AKTA,
            )


class TestPolicies:
    def test_all_of_refuses_an_empty_list(self) -> None:
        # An empty conjunction would allow everything.
        with pytest.raises(ValueError, match="at least one"):
            AllOf([])

    def test_all_of_raises_the_first_failure(self, claims: ConsentClaims, client_jkt: str) -> None:
        policy = AllOf([BoundTo(client_jkt), PurposeIs("bansos"), Audience(OTHER_CLIENT)])
        with pytest.raises(ConsentPurposeMismatch):
            policy.verify(claims)

    def test_all_of_passes_when_every_policy_holds(
        self, claims: ConsentClaims, client_jkt: str
    ) -> None:
        AllOf([Audience(CLIENT), BoundTo(client_jkt), Subject(NIK)]).verify(claims)

    def test_subject_policy_hides_the_nik(self) -> None:
        assert NIK not in repr(Subject(NIK))


class TestCheckSubjectIn:
    @pytest.mark.parametrize(
        "niks",
        [[NIK], [OTHER_NIK, NIK], (n for n in [OTHER_NIK, NIK])],
        ids=["only", "among-members", "generator"],
    )
    def test_subject_among_the_record(self, claims: ConsentClaims, niks: Sequence[str]) -> None:
        check_subject_in(claims, niks)

    @pytest.mark.parametrize(
        "niks",
        [[], [OTHER_NIK], [NIK[:-1]], ["३१७१०१४५०१९०००१"]],
        ids=["no-people", "someone-else", "prefix", "non-ascii"],
    )
    def test_subject_not_in_the_record(self, claims: ConsentClaims, niks: Sequence[str]) -> None:
        with pytest.raises(ConsentWrongSubject) as caught:
            check_subject_in(claims, niks)
        assert NIK not in caught.value.detail


class TestCheckMayConsent:
    def test_one_who_may_consent(self, claims: ConsentClaims) -> None:
        check_may_consent(claims, RecordPeople((OTHER_NIK, NIK), (OTHER_NIK, NIK)))

    def test_named_but_not_entitled(self, claims: ConsentClaims) -> None:
        with pytest.raises(ConsentNotEntitled) as caught:
            check_may_consent(claims, RecordPeople((OTHER_NIK, NIK), (OTHER_NIK,)))
        assert NIK not in caught.value.detail

    def test_not_named_at_all_is_the_wrong_subject(self, claims: ConsentClaims) -> None:
        # Entitlement is never read for someone the record does not name.
        with pytest.raises(ConsentWrongSubject):
            check_may_consent(claims, RecordPeople((OTHER_NIK,), (OTHER_NIK, NIK)))
