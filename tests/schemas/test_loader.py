"""Loading the schema files: each is checked, linked and compiled once; a broken one is named."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

import schemas
from schemas import SCHEMA_CODES, SchemaFileInvalid, SchemaSet, UnknownSchema
from tests.schemas.reference import FILES, packaged
from tests.schemas.samples import MOTHER_NIK, ktp_record


def _object_schemas(node: object) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "properties" in node:
            yield node
        for value in node.values():
            yield from _object_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from _object_schemas(value)


class TestPackagedFiles:
    def test_the_set_of_files(self) -> None:
        names = {p.name for p in (resources.files("schemas") / "json").iterdir()}
        assert names == set(FILES)

    @pytest.mark.parametrize("name", FILES)
    def test_valid_draft_2020_12(self, name: str) -> None:
        document = packaged(name)
        Draft202012Validator.check_schema(document)
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"] == "urn:simpul:schema:" + name.removesuffix(".json")

    @pytest.mark.parametrize("name", FILES[1:])
    def test_no_other_properties_anywhere(self, name: str) -> None:
        found = list(_object_schemas(packaged(name)))
        assert found
        assert all(schema.get("additionalProperties") is False for schema in found)

    @pytest.mark.parametrize("code", SCHEMA_CODES)
    def test_fields_enum_names_the_response_properties(self, code: str) -> None:
        request, response = packaged(f"{code}.request.json"), packaged(f"{code}.response.json")
        assert request["properties"]["fields"]["items"]["enum"] == list(response["properties"])

    @pytest.mark.parametrize("name", FILES[1:])
    def test_shared_definitions_are_referenced_not_copied(self, name: str) -> None:
        text = (resources.files("schemas") / "json" / name).read_text(encoding="utf-8")
        assert "urn:simpul:schema:defs#/$defs/" in text
        assert '"pattern"' not in text
        assert "LAKI-LAKI" not in text


class TestSchemaSet:
    def test_codes(self) -> None:
        assert SCHEMA_CODES == ("ktp", "kk", "akta-lahir")

    @pytest.mark.parametrize(
        "call",
        [
            lambda s: s.validate_request("ktp-lama", {"nik": MOTHER_NIK}),
            lambda s: s.validate_response("KTP", ktp_record()),
            lambda s: s.response_fields("akta"),
            lambda s: s.request_query_keys(""),
        ],
    )
    def test_unknown_code(self, schema_set: SchemaSet, call: Callable[[SchemaSet], object]) -> None:
        with pytest.raises(UnknownSchema, match="no schema for service code") as caught:
            call(schema_set)
        assert (caught.value.problem_type, caught.value.status) == ("unknown-schema", 500)

    def test_unknown_code_is_named_only_if_harmless(self, schema_set: SchemaSet) -> None:
        with pytest.raises(UnknownSchema) as named:
            schema_set.response_fields("ktp-lama")
        with pytest.raises(UnknownSchema) as unnamed:
            schema_set.response_fields(MOTHER_NIK)
        assert named.value.detail == "no schema for service code 'ktp-lama'"
        assert unnamed.value.detail == "no schema for service code"

    def test_clock_is_consulted_on_each_validation(self) -> None:
        days = iter([date(2025, 6, 30), date(1985, 1, 1)])
        loaded = SchemaSet.load(today=lambda: next(days))
        loaded.validate_request("ktp", {"nik": "3201010201850003"})
        with pytest.raises(schemas.RequestInvalid, match="in the future"):
            loaded.validate_request("ktp", {"nik": "3201010201850003"})


class TestModuleFunctions:
    def test_default_set_is_loaded_once(self) -> None:
        assert schemas.default_schemas() is schemas.default_schemas()

    def test_delegate_to_the_default_set(self) -> None:
        schemas.validate_request("ktp", {"nik": MOTHER_NIK})
        schemas.validate_response("ktp", ktp_record())
        assert schemas.response_fields("kk")[0] == "no_kk"
        assert schemas.request_query_keys("kk") == ("no_kk", "nik")
        with pytest.raises(schemas.RequestInvalid):
            schemas.validate_request("ktp", {})
        with pytest.raises(schemas.ResponseInvalid):
            schemas.validate_response("ktp", {})


def _edit(name: str, change: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def apply(directory: Path) -> None:
        path = directory / name
        document = json.loads(path.read_text(encoding="utf-8"))
        change(document)
        path.write_text(json.dumps(document), encoding="utf-8")

    return apply


def _write(name: str, text: str) -> Callable[[Path], None]:
    return lambda directory: (directory / name).write_text(text, encoding="utf-8")


class TestBrokenFiles:
    @pytest.fixture
    def directory(self, tmp_path: Path) -> Path:
        source = resources.files("schemas") / "json"
        for name in FILES:
            (tmp_path / name).write_text((source / name).read_text(encoding="utf-8"))
        return tmp_path

    def test_an_intact_copy_loads(self, directory: Path) -> None:
        SchemaSet.load(directory=directory).validate_request("ktp", {"nik": MOTHER_NIK})

    @pytest.mark.parametrize(
        ("name", "damage", "message"),
        [
            ("ktp.request.json", lambda d: (d / "ktp.request.json").unlink(), "cannot be read"),
            ("kk.response.json", _write("kk.response.json", "{"), "not valid JSON"),
            ("defs.json", _write("defs.json", '{"a": 1, "a": 2}'), "duplicate key"),
            ("kk.request.json", _write("kk.request.json", "[]"), "must be a JSON object"),
            (
                "ktp.response.json",
                _edit(
                    "ktp.response.json",
                    lambda d: d.update({"$schema": "http://json-schema.org/draft-07/schema#"}),
                ),
                "\\$schema must be",
            ),
            (
                "akta-lahir.request.json",
                _edit(
                    "akta-lahir.request.json", lambda d: d.update({"$id": "urn:simpul:schema:akta"})
                ),
                "\\$id must be urn:simpul:schema:akta-lahir.request",
            ),
            (
                "ktp.response.json",
                _edit(
                    "ktp.response.json", lambda d: d["properties"]["nama"].update({"type": "text"})
                ),
                "not a valid Draft 2020-12 schema",
            ),
            (
                "kk.response.json",
                _edit(
                    "kk.response.json",
                    lambda d: d["properties"].update(
                        {"x": {"$ref": "urn:simpul:schema:defs#/$defs/nope"}}
                    ),
                ),
                "\\$ref urn:simpul:schema:defs#/\\$defs/nope does not resolve",
            ),
            (
                "kk.response.json",  # a plain-name anchor: only JSON pointers are resolved
                _edit(
                    "kk.response.json",
                    lambda d: d["properties"].update({"x": {"$ref": "urn:simpul:schema:defs#nik"}}),
                ),
                "\\$ref urn:simpul:schema:defs#nik does not resolve",
            ),
            (
                "ktp.request.json",  # the first file that refers to the missing definition
                _edit("defs.json", lambda d: d["$defs"].pop("nik")),
                "\\$ref urn:simpul:schema:defs#/\\$defs/nik does not resolve",
            ),
            (
                "ktp.request.json",
                _edit(
                    "ktp.request.json", lambda d: d["properties"]["fields"]["items"]["enum"].pop()
                ),
                "fields.items.enum must list the properties of ktp.response.json",
            ),
            (
                "akta-lahir.response.json",
                _edit("akta-lahir.response.json", lambda d: d.pop("properties")),
                "must declare its top-level properties",
            ),
        ],
    )
    def test_names_the_file(
        self, directory: Path, name: str, damage: Callable[[Path], None], message: str
    ) -> None:
        damage(directory)
        with pytest.raises(SchemaFileInvalid, match=message) as caught:
            SchemaSet.load(directory=directory)
        assert caught.value.detail.startswith(f"{name}: ")
        assert caught.value.problem_type == "schema-file-invalid"

    def test_missing_document_given_directly(self) -> None:
        with pytest.raises(SchemaFileInvalid, match=r"^defs\.json: missing$"):
            SchemaSet(documents={})

    def test_missing_directory(self, tmp_path: Path) -> None:
        with pytest.raises(SchemaFileInvalid, match=r"^defs\.json: cannot be read"):
            SchemaSet.load(directory=tmp_path / "nowhere")
