"""Simpul's shared data contracts: the JSON Schemas of each service, and the identifier rules.

Load the schemas once with :meth:`SchemaSet.load` (or use the module-level functions, which
share one lazily loaded set), then check every request before it reaches an adapter and every
answer before it reaches a consumer::

    schemas = SchemaSet.load()
    schemas.validate_request("ktp", {"nik": nik})          # raises RequestInvalid
    schemas.validate_response("ktp", record)               # raises ResponseInvalid
    schemas.response_fields("ktp")                         # ("nik", "nama", ...)
"""

from __future__ import annotations

from schemas._loader import (
    SCHEMA_CODES,
    SchemaSet,
    default_schemas,
    request_query_keys,
    response_fields,
    validate_request,
    validate_response,
)
from schemas.errors import (
    Error,
    InvalidNik,
    InvalidNoKk,
    RequestInvalid,
    ResponseInvalid,
    SchemaFileInvalid,
    UnknownSchema,
)

__all__ = [
    "SCHEMA_CODES",
    "Error",
    "InvalidNik",
    "InvalidNoKk",
    "RequestInvalid",
    "ResponseInvalid",
    "SchemaFileInvalid",
    "SchemaSet",
    "UnknownSchema",
    "default_schemas",
    "request_query_keys",
    "response_fields",
    "validate_request",
    "validate_response",
]
