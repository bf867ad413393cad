"""Load the packaged JSON Schemas once: check each file, link them in one registry, compile.

Each schema is compiled twice. ``jsonschema`` is the reference: it checks the files and words
every error message. ``jsonschema-rs`` (about a hundred times faster) decides on the hot path
whether an instance is valid; only an instance it rejects is walked by the reference, for the
messages. ``tests/schemas/test_fast_path.py`` proves both accept and reject the same instances
for every schema shipped. Two rules make them agree by construction: the reference anchors
``pattern`` as ECMA-262 (the JSON Schema regex dialect) does, where ``$`` is the end of the
string and not "before a final newline" as in Python; and the fast path checks ``format:
date`` with the reference's own format checker.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import islice
from typing import Any, Final, Literal

# jsonschema ships no type information; every value taken from it is handled as Any here.
import jsonschema_rs
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError, ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from schemas._messages import describe, summarise
from schemas._semantics import identifier_problems
from schemas.errors import Error, RequestInvalid, ResponseInvalid, SchemaFileInvalid, UnknownSchema
from schemas.identifiers import today_in_indonesia

__all__ = [
    "SCHEMA_CODES",
    "SchemaSet",
    "default_schemas",
    "request_query_keys",
    "response_fields",
    "validate_request",
    "validate_response",
]

SCHEMA_CODES: Final = ("ktp", "kk", "akta-lahir")
Kind = Literal["request", "response"]

DRAFT_2020_12: Final = "https://json-schema.org/draft/2020-12/schema"
_ID_PREFIX: Final = "urn:simpul:schema:"
_DEFS_FILE: Final = "defs.json"
_FILES: Final = (
    _DEFS_FILE,
    *(f"{code}.{kind}.json" for code in SCHEMA_CODES for kind in ("request", "response")),
)
# Enough errors to pick the first few by location without walking a huge bad body to the end.
_MAX_ERRORS: Final = 50
_SHOWABLE_CODE = re.compile(r"[a-z][a-z-]{0,31}")


class SchemaSet:
    """The request and response schemas of every service, each checked and compiled once."""

    def __init__(
        self,
        *,
        documents: Mapping[str, Any],
        today: Callable[[], date] = today_in_indonesia,
    ) -> None:
        """Check and compile ``documents`` (parsed schema files by file name).

        Raises :class:`~schemas.errors.SchemaFileInvalid`, naming the file, if one is missing,
        is not a valid Draft 2020-12 schema, has the wrong ``$id``, or holds a ``$ref`` that does
        not resolve. ``today`` is the clock for the identifier date checks.
        """
        for name in _FILES:
            if name not in documents:
                raise SchemaFileInvalid(f"{name}: missing")
            _check_document(name, documents[name])
        registry: Registry[Any] = Registry().with_resources(
            (documents[name]["$id"], DRAFT202012.create_resource(documents[name]))
            for name in _FILES
        )
        registry = registry.crawl()
        for name in _FILES:
            _check_refs(name, documents[name], registry)
        self._today = today
        self._validators: dict[tuple[str, Kind], Any] = {}
        self._fast: dict[tuple[str, Kind], Any] = {}
        fast_registry = jsonschema_rs.Registry(
            [(documents[name]["$id"], documents[name]) for name in _FILES]
        )
        self._response_fields: dict[str, tuple[str, ...]] = {}
        self._query_keys: dict[str, tuple[str, ...]] = {}
        for code in SCHEMA_CODES:
            request, response = (
                documents[f"{code}.request.json"],
                documents[f"{code}.response.json"],
            )
            self._response_fields[code] = _properties(f"{code}.response.json", response)
            query = _properties(f"{code}.request.json", request)
            self._query_keys[code] = tuple(k for k in query if k != "fields")
            _check_fields_enum(code, request, self._response_fields[code])
            self._validators[code, "request"] = _compile(request, registry)
            self._validators[code, "response"] = _compile(response, registry)
            self._fast[code, "request"] = _compile_fast(request, fast_registry)
            self._fast[code, "response"] = _compile_fast(response, fast_registry)

    @classmethod
    def load(
        cls,
        *,
        directory: Traversable | None = None,
        today: Callable[[], date] = today_in_indonesia,
    ) -> SchemaSet:
        """Read, check and compile the schema files (default: the ones packaged with Simpul)."""
        root = directory if directory is not None else resources.files("schemas") / "json"
        return cls(documents={name: _read(root, name) for name in _FILES}, today=today)

    def validate_request(self, code: str, instance: object) -> None:
        """Raise :class:`~schemas.errors.RequestInvalid` unless ``instance`` is a valid request."""
        self._validate(code, "request", instance, RequestInvalid)

    def validate_response(self, code: str, instance: object) -> None:
        """Raise :class:`~schemas.errors.ResponseInvalid` unless ``instance`` is a valid record."""
        self._validate(code, "response", instance, ResponseInvalid)

    def response_fields(self, code: str) -> tuple[str, ...]:
        """The response's top-level property names: what grants and minimisation work on."""
        self._check_code(code)
        return self._response_fields[code]

    def request_query_keys(self, code: str) -> tuple[str, ...]:
        """The request's property names other than ``fields``: what an adapter may be asked by."""
        self._check_code(code)
        return self._query_keys[code]

    def is_valid(self, code: str, kind: Kind, instance: object, *, reference: bool) -> bool:
        """Whether ``instance`` passes the schema alone (no identifier checks).

        ``reference`` picks the ``jsonschema`` validator, else the hot path's; the two agree
        (see the module docstring). For tests and benchmarks.
        """
        self._check_code(code)
        if reference:
            return bool(self._validators[code, kind].is_valid(instance))
        return _fast_is_valid(self._fast[code, kind], self._validators[code, kind], instance)

    def _validate(self, code: str, kind: Kind, instance: object, error: type[Error]) -> None:
        self._check_code(code)
        reference = self._validators[code, kind]
        if not _fast_is_valid(self._fast[code, kind], reference, instance):
            found = list(islice(reference.iter_errors(instance), _MAX_ERRORS))
            if not found:  # pragma: no cover - the fast-path test proves the two agree
                raise error("$: does not match the schema")
            found.sort(key=lambda e: tuple((isinstance(p, str), p) for p in e.absolute_path))
            raise error(summarise(describe(e) for e in found))
        problems = identifier_problems(instance, today=self._today(), records=kind == "response")
        if problems:
            raise error(summarise(problems))

    @staticmethod
    def _check_code(code: str) -> None:
        if code not in SCHEMA_CODES:
            shown = f" {code!r}" if isinstance(code, str) and _SHOWABLE_CODE.fullmatch(code) else ""
            raise UnknownSchema(f"no schema for service code{shown}")


@functools.cache
def default_schemas() -> SchemaSet:
    """The packaged schemas, loaded on first use and kept for the life of the process."""
    return SchemaSet.load()


def validate_request(code: str, instance: object) -> None:
    """:meth:`SchemaSet.validate_request` on :func:`default_schemas`."""
    default_schemas().validate_request(code, instance)


def validate_response(code: str, instance: object) -> None:
    """:meth:`SchemaSet.validate_response` on :func:`default_schemas`."""
    default_schemas().validate_response(code, instance)


def response_fields(code: str) -> tuple[str, ...]:
    """:meth:`SchemaSet.response_fields` on :func:`default_schemas`."""
    return default_schemas().response_fields(code)


def request_query_keys(code: str) -> tuple[str, ...]:
    """:meth:`SchemaSet.request_query_keys` on :func:`default_schemas`."""
    return default_schemas().request_query_keys(code)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    # ECMA-262 (what JSON Schema specifies): "$" ends the string; Python's "$" also matches
    # before a final newline, which would let "001\n" pass as a three-digit RT.
    if isinstance(instance, str) and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


_Reference = extend(Draft202012Validator, {"pattern": _ecma_pattern})


def _compile(document: Mapping[str, Any], registry: Registry[Any]) -> Any:
    # FORMAT_CHECKER must be passed explicitly: without it "format": "date" is only a note.
    return _Reference(document, registry=registry, format_checker=_FORMATS)


_FORMATS: Final = Draft202012Validator.FORMAT_CHECKER


def _reference_date(value: str) -> bool:
    return bool(_FORMATS.conforms(value, "date"))


def _compile_fast(document: Mapping[str, Any], registry: Any) -> Any:
    # The reference's own date check: jsonschema-rs alone would accept year 0000.
    return jsonschema_rs.Draft202012Validator(
        dict(document),
        registry=registry,
        validate_formats=True,
        ignore_unknown_formats=False,
        formats={"date": _reference_date},
    )


def _fast_is_valid(fast: Any, reference: Any, instance: object) -> bool:
    try:
        return bool(fast.is_valid(instance))
    except (ValueError, TypeError, OverflowError):
        # A value jsonschema-rs cannot take (not a JSON type, an integer past 64 bits): the
        # reference decides, so the answer never depends on which validator ran.
        return bool(reference.is_valid(instance))


def _read(root: Traversable, name: str) -> Any:
    try:
        text = (root / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise SchemaFileInvalid(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except ValueError as exc:
        raise SchemaFileInvalid(f"{name}: not valid JSON: {exc}") from exc


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys silently; in a schema that hides a rule.
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in an object")
    return result


def _check_document(name: str, document: Any) -> None:
    if not isinstance(document, dict):
        raise SchemaFileInvalid(f"{name}: must be a JSON object")
    if document.get("$schema") != DRAFT_2020_12:
        raise SchemaFileInvalid(f"{name}: $schema must be {DRAFT_2020_12}")
    expected_id = _ID_PREFIX + name.removesuffix(".json")
    if document.get("$id") != expected_id:
        raise SchemaFileInvalid(f"{name}: $id must be {expected_id}")
    try:
        Draft202012Validator.check_schema(document)
    except SchemaError as exc:
        raise SchemaFileInvalid(
            f"{name}: not a valid Draft 2020-12 schema at {exc.json_path}: {exc.message}"
        ) from exc


def _check_refs(name: str, document: Mapping[str, Any], registry: Registry[Any]) -> None:
    resolver = registry.resolver(base_uri=document["$id"])
    for ref in _refs(document):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise SchemaFileInvalid(f"{name}: $ref {ref} does not resolve") from exc


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _properties(name: str, document: Mapping[str, Any]) -> tuple[str, ...]:
    properties = document.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise SchemaFileInvalid(f"{name}: must declare its top-level properties")
    return tuple(properties)


def _check_fields_enum(code: str, request: Mapping[str, Any], fields: tuple[str, ...]) -> None:
    try:
        allowed = request["properties"]["fields"]["items"]["enum"]
    except (KeyError, TypeError):
        allowed = None
    if allowed != list(fields):
        raise SchemaFileInvalid(
            f"{code}.request.json: fields.items.enum must list the properties of "
            f"{code}.response.json, in order"
        )
