"""The broker's validator (jsonschema-rs) and the reference (jsonschema) agree on every schema we
ship: the same instances accepted, the same rejected, with the same messages."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import SCHEMA_CODES, SchemaSet
from schemas.errors import RequestInvalid, ResponseInvalid
from tests.schemas.reference import reference_problems
from tests.schemas.samples import CHILD_NIK, MOTHER_NIK, NO_KK, RECORDS

REQUESTS: dict[str, list[dict[str, Any]]] = {
    "ktp": [{"nik": MOTHER_NIK}, {"nik": MOTHER_NIK, "fields": ["nama", "alamat"]}],
    "kk": [{"no_kk": NO_KK}, {"nik": MOTHER_NIK, "fields": ["anggota"]}],
    "akta-lahir": [
        {"nik": CHILD_NIK},
        {"no_akta": "3201-LT-05032015-0042", "kantor_penerbit": "DISDUKCAPIL BOGOR"},
    ],
}
KINDS = [(code, kind) for code in SCHEMA_CODES for kind in ("request", "response")]


def _samples(code: str, kind: str) -> list[dict[str, Any]]:
    return REQUESTS[code] if kind == "request" else [RECORDS[code]()]


# Strings near the rules the schemas state: digits of every length, dates good and bad,
# enumeration spellings, trailing newlines (where Python's "$" and ECMA-262's differ).
_TEXT = st.one_of(
    st.from_regex(r"\A[0-9]{1,18}\n?\Z"),
    st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\n?\Z"),
    st.sampled_from(
        ["0000-01-01", "2024-02-29", "2023-02-29", "SEUMUR HIDUP", "LAKI-LAKI", "O+", "WNI", ""]
    ),
    st.text(alphabet="0123456789-+ ABCKLMNOPSTUWaz\n\u0661", max_size=20),
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    _TEXT,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["nik", "nama", "x"]), inner)
    ),
    max_leaves=6,
)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path] if path else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*path, index))
    return found


@st.composite
def _mutant(draw: st.DrawFn, code: str, kind: str) -> Any:
    """A valid sample with one to three places replaced, removed or added."""
    instance = copy.deepcopy(draw(st.sampled_from(_samples(code, kind))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(instance)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = instance
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_VALUES)
        elif action == "remove":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "nik", "fields", "NIK"]))] = draw(_VALUES)
        else:
            parent.append(draw(_VALUES))
    return instance


def _agree(schema_set: SchemaSet, code: str, kind: Any, instance: Any) -> bool:
    """Both decide alike and word the rejection alike (each distinct line, in order)."""
    lines = schema_set.schema_problems(code, kind, instance)
    reference = reference_problems(code, kind, instance)
    assert list(dict.fromkeys(lines)) == list(dict.fromkeys(reference)), (code, kind, instance)
    assert schema_set.is_valid(code, kind, instance) == (not reference), (code, kind, instance)
    return not lines


class TestAgreement:
    @pytest.mark.parametrize(("code", "kind"), KINDS)
    def test_shipped_samples_pass_both(self, schema_set: SchemaSet, code: str, kind: str) -> None:
        for sample in _samples(code, kind):
            assert _agree(schema_set, code, kind, sample)

    @pytest.mark.parametrize(("code", "kind"), KINDS)
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data())
    def test_mutants(
        self, schema_set: SchemaSet, code: str, kind: str, data: st.DataObject
    ) -> None:
        _agree(schema_set, code, kind, data.draw(_mutant(code, kind)))

    @pytest.mark.parametrize(("code", "kind"), KINDS)
    @settings(max_examples=60, deadline=None)
    @given(instance=_VALUES)
    def test_arbitrary_json(
        self, schema_set: SchemaSet, code: str, kind: str, instance: Any
    ) -> None:
        _agree(schema_set, code, kind, instance)

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("rt", "001\n"),  # a final newline: both refuse it
            ("tanggal_lahir", "0000-01-01"),  # jsonschema-rs's own date check would pass it
            ("tanggal_lahir", "2023-02-29"),
            ("tanggal_lahir", "20230228"),  # ISO 8601, but not RFC 3339's full-date
            ("tanggal_lahir", "2023-02-28\n"),
            ("rt", "\u0661\u0662\u0663"),  # Arabic-Indic digits are not [0-9]
            ("rt", 1),
        ],
    )
    def test_known_divergences_are_closed(
        self, schema_set: SchemaSet, field: str, value: Any
    ) -> None:
        record = RECORDS["ktp"]()
        record[field] = value
        assert not _agree(schema_set, "ktp", "response", record)


class TestHotPathErrors:
    @pytest.mark.parametrize(
        ("kind", "instance", "error", "where"),
        [
            ("request", {"nik": "123"}, RequestInvalid, "$.nik"),
            ("request", {"nik": MOTHER_NIK, "extra": 1}, RequestInvalid, "unexpected property"),
            ("response", {**RECORDS["ktp"](), "rt": "001\n"}, ResponseInvalid, "$.rt"),
        ],
    )
    def test_rejections_keep_the_reference_messages(
        self,
        schema_set: SchemaSet,
        kind: str,
        instance: dict[str, Any],
        error: type[Exception],
        where: str,
    ) -> None:
        validate = (
            schema_set.validate_request if kind == "request" else schema_set.validate_response
        )
        with pytest.raises(error) as raised:
            validate("ktp", instance)
        assert where in str(raised.value)
        assert "\n" not in str(raised.value)


class TestValuesJsonCannotHold:
    """A parsed body never holds these; a caller's mistake must still be refused, not echoed."""

    @pytest.mark.parametrize(
        ("value", "detail"),
        [
            ({1, 2}, "$: is not a JSON value"),
            (b"3201", "$: is not a JSON value"),
            ({1: "a"}, "$: is not a JSON value"),
            (object(), "$: is not a JSON value"),
            (float("nan"), "$.ayah.nik: must match one of: nik | null"),
            (float("inf"), "$.ayah.nik: must match one of: nik | null"),
        ],
    )
    def test_refused_where_a_type_is_stated(
        self, schema_set: SchemaSet, value: Any, detail: str
    ) -> None:
        record = RECORDS["akta-lahir"]()
        record["ayah"]["nik"] = value  # a NIK, or null
        assert not schema_set.is_valid("akta-lahir", "response", record)
        with pytest.raises(ResponseInvalid) as raised:
            schema_set.validate_response("akta-lahir", record)
        assert str(raised.value) == detail
