"""The verifiers' fast path: a record's canonical JSON straight from a row tuple or an export line.

The reference path (:func:`audit.verify.leaf_of_row`, :func:`audit.export.leaf_of_document`)
copies each record into a dict in column order, parses and re-encodes ``released_fields`` and
looks for floats before orjson sorts and writes it. A record in the *plain* shape - every hashed
value a ``str``, an ``int`` or None, ``released_fields`` a list of ``str`` (online: the canonical
JSON text of one) - needs less:

- a row: one orjson call over a dict built in sorted key order (no sorting needed), with
  ``released_fields`` spliced in verbatim as a fragment once its text has passed the reference
  check (parse, re-encode, compare), which happens once per distinct text, not per record;
- an export line: the parsed line itself, less its two hashes, written with sorted keys, when
  the line is exactly as long as that serialisation plus its two hashes.

Why the length: orjson keeps the last of a repeated key, and the reference refuses a line that
repeats one (other readers keep the first). orjson writes the shortest JSON there is for what it
parsed (no whitespace, no escape where a character may stand as itself, integers without sign or
leading zeros to spare; it refuses raw control characters), and a repeated key is one more member.
So a line that repeats a key is always longer than the serialisation of what it parsed to; one
of exactly that length holds each member once, at its shortest.

Why the bytes are the reference's: sorting only ever moves dict keys, and the only dict is the
top level, with the same ASCII keys and values as the reference's; a list of ``str`` has no keys;
a fragment is written as is, and its text is orjson's encoding of the list it parses to; with
no float anywhere, the reference's float refusal does not apply. Anything not in the plain shape
gives None and goes to the reference path, which decides: the fast path may decline what the
reference accepts, never accept what it refuses. tests/audit/test_plain.py holds both to this
with generated records and malformed rows and lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import orjson

from audit.store import COLUMNS, DOCUMENT_COLUMNS, encode_fields

__all__ = ["SORTED_COLUMNS", "Plain", "document_canonicaliser", "row_canonicaliser"]

#: What the fast path needs of a record: its seq, its canonical JSON and the stored leaf and
#: chain hashes (as stored, of whatever type: they are only ever compared).
Plain = tuple[object, bytes, object, object]

#: The hashed columns in the order canonical JSON writes them.
SORTED_COLUMNS: Final = tuple(sorted(DOCUMENT_COLUMNS))

_SCALARS: Final = frozenset({str, int, type(None)})  # exact types: no bool, float or subclasses
_STRINGS: Final = frozenset({str})
_MAX_CACHED_FIELDS: Final = 1024  # distinct released_fields texts remembered per walk

_DOCUMENT_SCALARS: Final = frozenset(DOCUMENT_COLUMNS) - {"released_fields"}
#: What the two hash members add to a record's canonical JSON, besides the hashes themselves.
_HASH_MEMBERS: Final = len(b',"leaf_hash":"","chain_hash":""')

# The unpacking below names the row's columns by position: fail at import, not with wrong hashes.
_ROW: Final = (
    *("seq", "time", "event", "xroad_id", "client", "service", "officer", "issue", "purpose"),
    *("consent_id", "subject_ref", "decision", "reason", "status", "request_hash"),
    *("response_hash", "released_fields", "latency_us", "leaf_hash", "chain_hash"),
)
if COLUMNS != _ROW:
    raise RuntimeError("the audit_records columns changed: audit._plain must follow")


def _fields_fragment(text: object) -> orjson.Fragment | None:
    """``released_fields`` text as a fragment, if it is the canonical JSON of a list of str.

    The check is the reference path's (parse, re-encode, compare) plus: only strings inside.
    """
    if type(text) is not str:
        return None
    try:
        items = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(items) is not list or not _STRINGS.issuperset(map(type, items)):
        return None
    try:
        if encode_fields(items) != text:
            return None
    except TypeError:  # orjson.JSONEncodeError: not encodable, so not canonical either
        return None
    return orjson.Fragment(text)


def row_canonicaliser() -> Callable[[Sequence[Any]], Plain | None]:
    """A function from a row tuple (in :data:`audit.store.COLUMNS` order) to its :data:`Plain`.

    Each walk gets its own, with its own small cache of ``released_fields`` texts already checked.
    """
    checked: dict[str, orjson.Fragment | None] = {}

    def plain(row: Sequence[Any]) -> Plain | None:
        if not _SCALARS.issuperset(map(type, row)):
            return None
        (
            seq,
            time,
            event,
            xroad_id,
            client,
            service,
            officer,
            issue,
            purpose,
            consent_id,
            subject_ref,
            decision,
            reason,
            status,
            request_hash,
            response_hash,
            released_fields,
            latency_us,
            leaf_hash,
            chain_hash,
        ) = row
        try:
            fields = checked[released_fields]
        except KeyError:
            if len(checked) >= _MAX_CACHED_FIELDS:
                checked.clear()
            fields = checked[released_fields] = _fields_fragment(released_fields)
        if fields is None:
            return None
        try:
            canonical = orjson.dumps(
                {
                    "client": client,
                    "consent_id": consent_id,
                    "decision": decision,
                    "event": event,
                    "issue": issue,
                    "latency_us": latency_us,
                    "officer": officer,
                    "purpose": purpose,
                    "reason": reason,
                    "released_fields": fields,
                    "request_hash": request_hash,
                    "response_hash": response_hash,
                    "seq": seq,
                    "service": service,
                    "status": status,
                    "subject_ref": subject_ref,
                    "time": time,
                    "xroad_id": xroad_id,
                }
            )
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate, an int beyond 64 bits
            return None
        return seq, canonical, leaf_hash, chain_hash

    return plain


def document_canonicaliser() -> Callable[[str], Plain | None]:
    """A function from an export line to its :data:`Plain` (None: not a plain record line).

    The parsed line is re-serialised with sorted keys, as the reference does, once it holds
    exactly the hashed fields plus the two hashes, with nothing that could be a float: then its
    bytes are the reference's, key for key. Its length then tells that no key was repeated
    (see the module's docstring). The hashes are taken to need no escaping, as hex does: a line
    where they do has hashes no leaf matches, so the walk hands it to the reference anyway.
    """

    def plain(line: str) -> Plain | None:
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if type(document) is not dict:
            return None
        leaf_hash = document.pop("leaf_hash", None)
        chain_hash = document.pop("chain_hash", None)
        released_fields = document.pop("released_fields", None)
        if (
            type(leaf_hash) is not str
            or type(chain_hash) is not str
            or document.keys() != _DOCUMENT_SCALARS
            or not _SCALARS.issuperset(map(type, document.values()))
            or type(released_fields) is not list
            or not _STRINGS.issuperset(map(type, released_fields))
        ):
            return None
        document["released_fields"] = released_fields
        try:
            canonical = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits
            return None
        size = len(line) if line.isascii() else len(line.encode())
        if line.endswith("\n"):
            size -= 1
        if size != len(canonical) + _HASH_MEMBERS + len(leaf_hash) + len(chain_hash):
            return None  # a repeated key, whitespace or a spare escape: the reference decides
        return document["seq"], canonical, leaf_hash, chain_hash

    return plain
