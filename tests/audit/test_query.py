"""An auditor's filters: values no record can hold are a malformed query on every database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from audit.errors import AuditQueryInvalid
from audit.query import RecordFilter, find_records
from audit.writer import append_now
from tests.audit._factories import make_entry


class TestUnstorableValues:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("client", "\x00"),
            ("since", "2026\x00"),
            ("until", "2027-01-01T00:00:00.000000Z\x00"),
            ("consent_id", "consent-0\x00"),  # a lookup column: goes through audit_lookup
            ("subject_ref", "\x00" * 64),
            ("xroad_id", "\ud800"),  # a lone surrogate: no UTF-8 text can hold it
            ("reason", "a\udcff"),
        ],
    )
    def test_refused_as_an_invalid_query(self, installed: Engine, name: str, value: str) -> None:
        # PostgreSQL fails a query holding such a value (a 500 on the auditor API, before).
        append_now(installed, [make_entry(i) for i in range(3)])
        with pytest.raises(AuditQueryInvalid, match=f"{name} holds a character") as caught:
            find_records(installed, RecordFilter(**{name: value}))
        assert (caught.value.status, caught.value.problem_type) == (400, "audit-query-invalid")

    def test_other_text_still_matches(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(3)])
        found = find_records(installed, RecordFilter(client="ID/GOV/DPMPTSP-DKI/perizinan"))
        assert [record.seq for record in found] == [1, 2, 3]
        assert find_records(installed, RecordFilter(client="ID/GOV/DINAS-SÜß/佐藤")) == []
