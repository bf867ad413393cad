"""Load the packaged JSON Schemas once: check each file, link them in one registry, compile.

``jsonschema-rs`` checks the files against the Draft 2020-12 meta-schema, compiles each schema
once, and decides on the hot path whether an instance is valid. The rejections are worded from
the schema node each error points at (:mod:`schemas._messages`), never from the instance's
values. ``jsonschema``, the reference implementation, lives in the tests:
``tests/schemas/test_fast_path.py`` proves both accept and reject the same instances, with the
same messages, for every schema shipped. Two rules make them agree: ``pattern`` is anchored as
ECMA-262 (the JSON Schema regex dialect) does, where ``$`` is the end of the string and not
"before a final newline" as in Python (jsonschema-rs does this itself); and ``format: date`` is
checked by :func:`_is_date`, the reference's own rule (jsonschema-rs alone would accept year
0000).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import islice
from typing import Any, Final, Literal
from urllib.parse import unquote

import jsonschema_rs

from schemas._messages import describe, json_path, summarise
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
        self._documents: dict[str, Any] = {documents[n]["$id"]: documents[n] for n in _FILES}
        for name in _FILES:
            _check_refs(name, documents[name], self._documents)
        self._today = today
        self._validators: dict[tuple[str, Kind], Any] = {}
        registry = jsonschema_rs.Registry(list(self._documents.items()))
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
            self._validators[code, "request"] = _compile(f"{code}.request.json", request, registry)
            self._validators[code, "response"] = _compile(
                f"{code}.response.json", response, registry
            )

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

    def is_valid(self, code: str, kind: Kind, instance: object) -> bool:
        """Whether ``instance`` passes the schema alone (no identifier checks).

        A value JSON cannot hold fails where the schema states a type (NaN, a set, bytes, a key
        that is not a string). For tests and benchmarks.
        """
        self._check_code(code)
        try:
            return bool(self._validators[code, kind].is_valid(instance))
        except (ValueError, TypeError, OverflowError):
            return False

    def schema_problems(self, code: str, kind: Kind, instance: object) -> list[str]:
        """``path: message`` for each schema rule ``instance`` breaks, ordered by path.

        Empty when it passes. The lines never quote the instance's values. Public so the tests
        can set them beside the reference implementation's.
        """
        self._check_code(code)
        validator = self._validators[code, kind]
        try:
            if validator.is_valid(instance):
                return []
            found = list(islice(validator.iter_errors(instance), _MAX_ERRORS))
        except (ValueError, TypeError, OverflowError):
            # jsonschema-rs takes only what JSON can hold: a set, bytes or a key that is not a
            # string cannot have come from a parsed body. (NaN and the infinities are taken,
            # and fail every type a schema states.)
            return ["$: is not a JSON value"]
        lines = sorted((_path_key(e.instance_path), self._describe(e, instance)) for e in found)
        return [line for _, line in lines] or ["$: does not match the schema"]

    def _describe(self, error: Any, instance: object) -> str:
        node, keyword = _keyword_at(self._documents, error.absolute_keyword_location)
        path = list(error.instance_path)
        if keyword is None:  # pragma: no cover - every keyword we ship has a location
            return f"{json_path(path)}: fails the '{error.kind.name}' rule"
        return describe(path, keyword, node[keyword], _at(instance, path), node)

    def _validate(self, code: str, kind: Kind, instance: object, error: type[Error]) -> None:
        problems = self.schema_problems(code, kind, instance)
        if problems:
            raise error(summarise(problems))
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


def _compile(name: str, document: Mapping[str, Any], registry: Any) -> Any:
    try:
        return jsonschema_rs.Draft202012Validator(
            dict(document),
            registry=registry,
            validate_formats=True,
            ignore_unknown_formats=False,
            formats={"date": _is_date},
        )
    except jsonschema_rs.ValidationError as exc:  # pragma: no cover - the checks above go first
        raise SchemaFileInvalid(f"{name}: cannot be compiled: {exc.message}") from exc


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


def _is_date(value: str) -> bool:
    # jsonschema's FORMAT_CHECKER rule for "date": RFC 3339 full-date digits, and a day that
    # exists. date.fromisoformat alone would also take "20240229" and other ISO 8601 forms.
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


# Keywords whose value is a map of names to schemas, one schema, or an array of schemas: the
# walk from a keyword location down to the keyword that failed goes through them.
_SCHEMA_MAPS: Final = frozenset(
    {"$defs", "definitions", "properties", "patternProperties", "dependentSchemas"}
)
_SCHEMA_ONE: Final = frozenset(
    {
        "additionalProperties",
        "unevaluatedProperties",
        "items",
        "unevaluatedItems",
        "contains",
        "propertyNames",
        "not",
        "if",
        "then",
        "else",
    }
)
_SCHEMA_ARRAYS: Final = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})


def _keyword_at(
    documents: Mapping[str, Any], location: str | None
) -> tuple[Mapping[str, Any], str | None]:
    """The schema object holding the keyword a location points at, and that keyword.

    A location is a document's ``$id``, ``#`` and a JSON pointer: ``…:defs#/$defs/rt_rw/pattern``.
    It may go on past the keyword (``…#/dependentRequired/0``): the keyword is the first
    token, walking down from the root, that does not lead to another schema.
    """
    base, _, fragment = (location or "").partition("#")
    node: Any = documents.get(base)
    if not isinstance(node, dict):
        return {}, None
    tokens = _pointer(fragment)
    index = 0
    while index < len(tokens):
        keyword = tokens[index]
        value = node.get(keyword) if isinstance(node, dict) else None
        if keyword in _SCHEMA_MAPS or keyword in _SCHEMA_ARRAYS:
            child = _step(value, tokens[index + 1]) if index + 1 < len(tokens) else None
            if not isinstance(child, dict):
                return node, keyword
            node, index = child, index + 2
        elif keyword in _SCHEMA_ONE and isinstance(value, dict) and index + 1 < len(tokens):
            node, index = value, index + 1
        else:
            return node, keyword if keyword in node else None
    return node, None


def _pointer(fragment: str) -> list[str]:
    if not fragment.startswith("/"):
        return []
    return [unquote(t).replace("~1", "/").replace("~0", "~") for t in fragment[1:].split("/")]


def _step(node: object, token: str) -> object:
    if isinstance(node, dict):
        return node.get(token)
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    return None


def _at(instance: object, path: Sequence[str | int]) -> object:
    for part in path:
        instance = instance[part]  # type: ignore[index]
    return instance


def _path_key(path: Sequence[str | int]) -> tuple[tuple[bool, str | int], ...]:
    # Indices before names at each level, so a list's items and an object's names never meet.
    return tuple((isinstance(p, str), p) for p in path)


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
        jsonschema_rs.meta.validate(document)
    except jsonschema_rs.ValidationError as exc:
        raise SchemaFileInvalid(
            f"{name}: not a valid Draft 2020-12 schema at {_schema_path(exc.instance_path)}: "
            f"{exc.message}"
        ) from exc


def _schema_path(parts: Sequence[str | int]) -> str:
    # A place in a schema file: every name is shown, as the file is ours and holds no one's data.
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _check_refs(name: str, document: Mapping[str, Any], documents: Mapping[str, Any]) -> None:
    for ref in _refs(document):
        base, _, fragment = ref.partition("#")
        target: object = documents.get(base or document["$id"])
        if fragment and not fragment.startswith("/"):
            target = None  # a plain-name anchor: the schemas we ship use pointers only
        for token in _pointer(fragment):
            target = _step(target, token)
        if target is None:
            raise SchemaFileInvalid(f"{name}: $ref {ref} does not resolve")


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
