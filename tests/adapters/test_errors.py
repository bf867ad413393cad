"""The adapters' error tree follows the Errors contract of docs/architecture.md."""

from __future__ import annotations

import pytest

from adapters import errors

CONTRACT = [
    (errors.RecordNotFound, "record-not-found", 404),
    (errors.UpstreamTimeout, "upstream-timeout", 504),
    (errors.UpstreamUnavailable, "upstream-unavailable", 502),
    (errors.UpstreamError, "upstream-error", 502),
    (errors.UpstreamInvalid, "upstream-invalid", 502),
    (errors.ServiceUnsupported, "service-unsupported", 500),
    (errors.QueryInvalid, "query-invalid", 400),
]


class TestContract:
    @pytest.mark.parametrize(("cls", "problem_type", "status"), CONTRACT)
    def test_problem_type_and_status(
        self, cls: type[errors.Error], problem_type: str, status: int
    ) -> None:
        assert issubclass(cls, errors.Error)
        assert (cls.problem_type, cls.status) == (problem_type, status)

    def test_problem_types_are_distinct_slugs(self) -> None:
        slugs = [cls.problem_type for cls, _, _ in CONTRACT]
        assert len(set(slugs)) == len(slugs)
        assert all(slug == slug.lower() and " " not in slug for slug in slugs)

    def test_every_error_is_exported(self) -> None:
        exported = {getattr(errors, name) for name in errors.__all__}
        assert {cls for cls, _, _ in CONTRACT} | {errors.Error} == exported


class TestDetail:
    @pytest.mark.parametrize("cls", [cls for cls, _, _ in CONTRACT])
    def test_detail_defaults_to_title(self, cls: type[errors.Error]) -> None:
        error = cls()
        assert error.detail == cls.title
        assert str(error) == cls.title

    def test_detail_given(self) -> None:
        error = errors.UpstreamInvalid("dukcapil answer: TGL_LHR is missing")
        assert error.detail == "dukcapil answer: TGL_LHR is missing"
        assert str(error) == error.detail
