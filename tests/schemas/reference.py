"""The reference: ``jsonschema``, the JSON Schema reference implementation, on the shipped files.

The broker validates with jsonschema-rs (``schemas/_loader.py``); the tests hold it to this.
Two rules are set here as JSON Schema states them: ``pattern`` is an ECMA-262 regex, where ``$``
is the end of the string (Python's ``$`` also matches before a final newline), and ``format:
date`` is asserted (without a format checker it is only a note).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from importlib import resources
from typing import Any

# jsonschema ships no type information; every value taken from it is handled as Any here.
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]
from jsonschema.validators import extend  # type: ignore[import-untyped]
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from schemas import SCHEMA_CODES
from schemas._loader import _path_key
from schemas._messages import describe

__all__ = ["FILES", "packaged", "reference_problems", "reference_validator"]

FILES = ["defs.json"] + [f"{c}.{k}.json" for c in SCHEMA_CODES for k in ("request", "response")]


def packaged(name: str) -> Any:
    """A shipped schema file, parsed."""
    return json.loads((resources.files("schemas") / "json" / name).read_text(encoding="utf-8"))


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if isinstance(instance, str) and not _ecma_regex(pattern).search(instance):
        yield ValidationError(f"does not match {pattern!r}")


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


_Reference = extend(Draft202012Validator, {"pattern": _ecma_pattern})


@functools.cache
def reference_validator(code: str, kind: str) -> Any:
    """The reference validator of one shipped schema, every file linked in one registry."""
    registry: Registry[Any] = Registry().with_resources(
        (packaged(name)["$id"], DRAFT202012.create_resource(packaged(name))) for name in FILES
    )
    return _Reference(
        packaged(f"{code}.{kind}.json"),
        registry=registry.crawl(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def reference_problems(code: str, kind: str, instance: object) -> list[str]:
    """The reference's errors worded as the broker words them, in the broker's order."""
    lines = sorted(
        (
            _path_key(e.absolute_path),
            describe(e.absolute_path, e.validator, e.validator_value, e.instance, e.schema),
        )
        for e in reference_validator(code, kind).iter_errors(instance)
    )
    return [line for _, line in lines]
