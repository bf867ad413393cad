"""Turn JSON Schema validation errors into ``path: message`` lines that never quote the instance.

Validators' own messages quote the offending value (``'3201...' does not match ...``), and a
value may be a NIK. These lines are built only from the error's path, the keyword that failed
and the schema object holding it, so they can go into a problem detail and a log; and any
validator that can say where it failed (jsonschema-rs in the broker, jsonschema in the tests)
words a rejection alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["describe", "json_path", "summarise"]

# Property names made only of lower-case letters and underscores cannot carry a NIK, a number
# or a token, so they may be echoed; any other name from the instance is not shown.
_SHOWABLE_NAME = re.compile(r"[a-z_]{1,64}")
_MAX_ENUM_LISTED = 8


def summarise(lines: Iterable[str], *, limit: int = 5) -> str:
    """Join the first ``limit`` distinct lines with ``; `` and say how many more there were."""
    distinct = list(dict.fromkeys(lines))
    shown = "; ".join(distinct[:limit])
    if len(distinct) > limit:
        return f"{shown}; and {len(distinct) - limit} more"
    return shown


def json_path(path: Iterable[str | int]) -> str:
    """A JSONPath such as ``$.anggota[0].nik`` for an instance location."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _showable(part):
            out += f".{part}"
        else:
            out += "[?]"
    return out


def describe(
    path: Iterable[str | int], keyword: str, value: Any, instance: Any, schema: Mapping[str, Any]
) -> str:
    """``path: message`` for one failed ``keyword``, without the instance's values.

    ``value`` is the keyword's value in ``schema``, the schema object holding it; ``instance``
    is the part of the instance at ``path``: names it lacks or has too many are listed.
    """
    return f"{json_path(path)}: {_message(keyword, value, instance, schema)}"


def _message(keyword: str, value: Any, instance: Any, schema: Mapping[str, Any]) -> str:
    match keyword:
        case "required":
            missing = [
                name for name in value if isinstance(instance, dict) and name not in instance
            ]
            return f"missing required property {_names(missing)}"
        case "additionalProperties":
            extra = [key for key in instance if key not in schema.get("properties", {})]
            return f"unexpected property {_names(extra)}"
        case "dependentRequired":
            pairs = [
                f"'{key}' requires '{needed}'"
                for key, needs in value.items()
                if key in instance
                for needed in needs
                if needed not in instance
            ]
            return ", ".join(pairs) or "fails the 'dependentRequired' rule"
        case "type":
            return f"must be of type {' or '.join(value) if isinstance(value, list) else value}"
        case "enum":
            if len(value) <= _MAX_ENUM_LISTED:
                return f"must be one of {', '.join(repr(v) for v in value)}"
            return f"is not one of the {len(value)} allowed values"
        case "const":
            return f"must be {value!r}"
        case "pattern":
            return f"does not match the pattern {value}"
        case "format":
            return f"is not a valid {value}"
        case "minLength":
            return "must not be empty" if value == 1 else f"must be at least {value} characters"
        case "maxLength":
            return f"must be at most {value} characters"
        case "minItems":
            return f"must have at least {value} item{'s' if value != 1 else ''}"
        case "maxItems":
            return f"must have at most {value} items"
        case "uniqueItems":
            return "must not repeat an item"
        case "minimum":
            return f"must be at least {value}"
        case "maximum":
            return f"must be at most {value}"
        case "oneOf":
            return f"must match exactly one of: {_alternatives(value)}"
        case "anyOf":
            return f"must match one of: {_alternatives(value)}"
        case _:
            return f"fails the '{keyword}' rule"


def _names(names: Sequence[str]) -> str:
    shown = [f"'{n}'" if _showable(n) else "(name not shown)" for n in names]
    return ", ".join(shown)


def _showable(name: object) -> bool:
    return isinstance(name, str) and _SHOWABLE_NAME.fullmatch(name) is not None


def _alternatives(schemas: Sequence[Mapping[str, Any]]) -> str:
    return " | ".join(_alternative(sub) for sub in schemas)


def _alternative(schema: Mapping[str, Any]) -> str:
    if "required" in schema:
        return " + ".join(f"'{name}'" for name in schema["required"])
    if "const" in schema:
        return repr(schema["const"])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "type" in schema:
        return str(schema["type"])
    return "(a sub-schema)"
