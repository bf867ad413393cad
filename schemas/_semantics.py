"""Identifier checks run after a body has passed its schema: what JSON Schema cannot express.

Every ``nik`` must be a real NIK and every ``no_kk`` a real No. KK. In records (responses), an
object that carries ``nik``, ``tanggal_lahir`` and ``jenis_kelamin`` — the KTP holder, each KK
member, the child on an Akta — must have a NIK that encodes that birth date and sex, and a birth
date that is not in the future.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from schemas._messages import json_path
from schemas.errors import InvalidNik, InvalidNoKk
from schemas.identifiers import nik_matches, parse_nik, parse_no_kk

__all__ = ["identifier_problems"]

Path = tuple[str | int, ...]


def identifier_problems(instance: object, *, today: date, records: bool) -> list[str]:
    """``path: message`` for each identifier rule ``instance`` breaks (none: an empty list).

    ``records`` turns on the record checks; ``today`` bounds every encoded date.
    """
    return list(_walk(instance, (), today=today, records=records))


def _walk(value: object, path: Path, *, today: date, records: bool) -> Iterator[str]:
    # Only objects and arrays are walked into: a scalar holds no object to check.
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, list | dict):
                yield from _walk(item, (*path, index), today=today, records=records)
    elif isinstance(value, dict):
        yield from _check_object(value, path, today=today, records=records)
        for key, item in value.items():
            if isinstance(item, list | dict):
                yield from _walk(item, (*path, key), today=today, records=records)


def _check_object(obj: dict[str, Any], path: Path, *, today: date, records: bool) -> Iterator[str]:
    nik = obj.get("nik")
    if isinstance(nik, str):
        try:
            parse_nik(nik, today=today)
        except InvalidNik as exc:
            yield f"{json_path((*path, 'nik'))}: invalid NIK: {exc.detail}"
        else:
            if records and not _agrees(nik, obj):
                where = json_path((*path, "nik"))
                yield f"{where}: NIK does not encode the record's tanggal_lahir and jenis_kelamin"
    no_kk = obj.get("no_kk")
    if isinstance(no_kk, str):
        try:
            parse_no_kk(no_kk, today=today)
        except InvalidNoKk as exc:
            yield f"{json_path((*path, 'no_kk'))}: invalid No. KK: {exc.detail}"
    if records and _in_future(obj.get("tanggal_lahir"), today):
        yield f"{json_path((*path, 'tanggal_lahir'))}: is in the future"


def _agrees(nik: str, obj: dict[str, Any]) -> bool:
    if "tanggal_lahir" not in obj or "jenis_kelamin" not in obj:
        return True
    return nik_matches(nik, obj["tanggal_lahir"], obj["jenis_kelamin"])


def _in_future(value: object, today: date) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return date.fromisoformat(value) > today
    except ValueError:  # the schema's date format reports it
        return False
