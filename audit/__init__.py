"""The append-only, tamper-evident audit log of every exchange and consent decision.

The broker builds an :class:`AuditEntry` per event and awaits :meth:`AuditLog.commit` (its
stamp) or :meth:`AuditLog.append` (the whole record); both return only once the record is
durable. Records are hash-chained and each carries its RFC 9162
leaf hash; :func:`verify_log` checks a log end to end. Nothing here imports the broker.
"""

from __future__ import annotations

from audit.errors import AuditUnavailable, Error
from audit.query import records_for_subject
from audit.records import AuditEntry, AuditRecord
from audit.store import count, install, read_records, tail
from audit.subjects import same_subject, subject_ref
from audit.verify import VerifyReport, verify_log
from audit.writer import AuditLog, append_now

__all__ = [
    "AuditEntry",
    "AuditLog",
    "AuditRecord",
    "AuditUnavailable",
    "Error",
    "VerifyReport",
    "append_now",
    "count",
    "install",
    "read_records",
    "records_for_subject",
    "same_subject",
    "subject_ref",
    "tail",
    "verify_log",
]
