"""The fast walk (:meth:`LogChecker.run`) against the reference walk, one record fed at a time.

Both walk the same tampered log (changed values of any type, deletions, swaps, insertions,
resealed and rechained records, checkpoints right and wrong) and must reach the same report,
the same progress calls and the same tree. Offline, :func:`audit.export.verify_export` is held
against the loop it had before the fast path, kept here as the reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any
from unittest.mock import patch

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

import audit.verify
from audit import merkle
from audit._plain import document_canonicaliser, row_canonicaliser
from audit.checkpoints import StoredCheckpoint, sign_now
from audit.errors import CheckpointInvalid
from audit.export import _Header, iter_export, leaf_of_document, verify_export
from audit.notes import Checkpoint, open_checkpoint
from audit.records import GENESIS_CHAIN_HASH, hash_chain, hash_leaf, seal
from audit.store import COLUMNS, iter_raw_tuples, iter_rows, read_records, record_row
from audit.verify import (
    OUT_OF_ORDER,
    RECORD_CHANGED,
    LogChecker,
    VerifyReport,
    leaf_of_row,
    verify_log,
)
from audit.writer import append_now
from tests.audit._factories import drop_triggers, make_entry, raw_sqlite

ORIGIN = "test.go.id/audit"
KEY = Ed25519PrivateKey.generate()
_SEQ, _LEAF, _CHAIN = COLUMNS.index("seq"), COLUMNS.index("leaf_hash"), COLUMNS.index("chain_hash")
_TIME = "2026-01-01T00:00:00.000000Z"

Row = list[Any]


def _sealed_rows(count: int) -> list[Row]:
    rows: list[Row] = []
    previous = GENESIS_CHAIN_HASH
    for i in range(count):
        record = seal(make_entry(i), seq=i + 1, time=_TIME, previous_chain_hash=previous)
        rows.append(list(record_row(record)))
        previous = record.chain_hash
    return rows


def _reseal(row: Row) -> None:
    """Give a row the leaf hash of its content as it now is (the record format is public)."""
    plain = row_canonicaliser()(tuple(row))
    if plain is not None:
        row[_LEAF] = hash_leaf(plain[1]).hex()


def _rechain(rows: list[Row], start: int) -> None:
    """Recompute every leaf and chain hash from ``start`` on: a rewrite the chain cannot see."""
    previous = GENESIS_CHAIN_HASH if start == 0 else rows[start - 1][_CHAIN]
    for row in rows[start:]:
        _reseal(row)
        if type(previous) is str and len(previous) == 64 and type(row[_LEAF]) is str:
            row[_CHAIN] = hash_chain(bytes.fromhex(previous), bytes.fromhex(row[_LEAF])).hex()
        previous = row[_CHAIN]


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(),
    st.integers(-(2**66), 2**66),
    st.binary(max_size=3),
    st.text(max_size=4),
    st.sampled_from(['["nik"]', '[ "nik"]', "[1.5]", '["nik",{"b":1,"a":2}]', "x"]),
)

_op = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 40), st.sampled_from(COLUMNS), _junk),
    st.tuples(st.just("delete"), st.integers(0, 40)),
    st.tuples(st.just("swap"), st.integers(0, 40), st.integers(0, 40)),
    st.tuples(st.just("copy"), st.integers(0, 40), st.integers(0, 40)),
    st.tuples(st.just("renumber"), st.integers(0, 40), st.integers(-3, 3)),
    st.tuples(st.just("insert"), st.integers(0, 40), st.booleans()),
    st.tuples(st.just("reseal"), st.integers(0, 40)),
    st.tuples(st.just("rechain"), st.integers(0, 40)),
)


def _tamper(rows: list[Row], ops: Iterable[tuple[Any, ...]]) -> None:
    for op in ops:
        if not rows:
            return
        i = op[1] % len(rows)
        if op[0] == "set":
            rows[i][COLUMNS.index(op[2])] = op[3]
        elif op[0] == "delete":
            del rows[i]
        elif op[0] == "swap":
            j = op[2] % len(rows)
            rows[i], rows[j] = rows[j], rows[i]
        elif op[0] == "copy":
            rows.insert(i, list(rows[op[2] % len(rows)]))
        elif op[0] == "renumber":
            for row in rows[i:]:
                if type(row[_SEQ]) is int:
                    row[_SEQ] += op[2]
                    _reseal(row)
        elif op[0] == "insert":
            previous = rows[i - 1][_CHAIN] if i and op[2] else GENESIS_CHAIN_HASH
            seq = rows[i][_SEQ] if type(rows[i][_SEQ]) is int and rows[i][_SEQ] > 0 else i + 1
            try:
                forged = seal(make_entry(99), seq=seq, time=_TIME, previous_chain_hash=previous)
            except (TypeError, ValueError):
                continue
            for row in rows[i:]:
                if type(row[_SEQ]) is int:
                    row[_SEQ] += 1
                    _reseal(row)
            rows.insert(i, list(record_row(forged)))
        elif op[0] == "reseal":
            _reseal(rows[i])
        else:
            _rechain(rows, i)


def _checkpoints(original: list[Row], sizes: set[int], wrong: set[int]) -> list[Checkpoint]:
    leaves = [bytes.fromhex(row[_LEAF]) for row in original]
    result = []
    for size in sorted(sizes):
        compact = merkle.CompactRange()
        for leaf in leaves[:size]:
            compact.append(leaf)
        root = compact.root() if size <= len(leaves) else hashlib.sha256(b"%d" % size).digest()
        if size in wrong:
            root = hashlib.sha256(root).digest()
        result.append(Checkpoint(origin=ORIGIN, size=size, root=root))
    return result


def _reference_walk(
    rows: list[Row], checkpoints: list[Checkpoint], every: int
) -> tuple[VerifyReport, list[int], LogChecker]:
    """verify_log as it was: every row fed as a dict, progress after each."""
    checker = LogChecker(leaf_of=leaf_of_row, checkpoints=checkpoints)
    seen: list[int] = []
    report = None
    for row in rows:
        report = checker.feed(dict(zip(COLUMNS, row, strict=True)))
        if report is not None:
            break
        if checker.checked % every == 0:
            seen.append(checker.checked)
    return report or checker.finish(), seen, checker


def _fast_walk(
    rows: list[Row], checkpoints: list[Checkpoint], every: int
) -> tuple[VerifyReport, list[int], LogChecker]:
    checker = LogChecker(leaf_of=leaf_of_row, checkpoints=checkpoints)
    seen: list[int] = []
    report = checker.run(
        (tuple(row) for row in rows),
        plain=row_canonicaliser(),
        slow=lambda row: checker.feed(dict(zip(COLUMNS, row, strict=True))),
        progress=seen.append,
        progress_every=every,
    )
    return report or checker.finish(), seen, checker


def _same_walk(rows: list[Row], checkpoints: list[Checkpoint], every: int) -> VerifyReport:
    expected, expected_seen, reference = _reference_walk(rows, checkpoints, every)
    report, seen, fast = _fast_walk(rows, checkpoints, every)
    assert report == expected
    assert seen == expected_seen
    assert (fast.edge.size, fast.edge.root()) == (reference.edge.size, reference.edge.root())
    return report


class TestOnlineWalk:
    @settings(max_examples=400, deadline=None)
    @given(
        count=st.integers(0, 40),
        ops=st.lists(_op, max_size=3),
        sizes=st.sets(st.integers(0, 43), max_size=5),
        wrong=st.sets(st.integers(0, 43), max_size=1),
        every=st.integers(1, 7),
        pending=st.integers(1, 9),
    )
    def test_same_verdict_as_the_reference(
        self,
        count: int,
        ops: list[tuple[Any, ...]],
        sizes: set[int],
        wrong: set[int],
        every: int,
        pending: int,
    ) -> None:
        original = _sealed_rows(count)
        rows = [list(row) for row in original]
        _tamper(rows, ops)
        with patch.object(audit.verify, "_PENDING_LEAVES", pending):
            _same_walk(rows, _checkpoints(original, sizes, wrong), every)

    @pytest.mark.parametrize(
        ("again", "problem"), [(2, OUT_OF_ORDER), (3, RECORD_CHANGED), (4, OUT_OF_ORDER)]
    )
    def test_the_record_after_one_that_does_not_chain_settles_it(
        self, again: int, problem: str
    ) -> None:
        # Record 3's chain hash is edited, then comes an intact copy of a record: of 3 itself
        # (fits where the walk stands, must not be taken), of 4 (only the column was edited) or
        # of 5 (record 3 does not belong).
        original = _sealed_rows(6)
        rows = [list(row) for row in original]
        rows[2][_CHAIN] = "0" * 64
        rows.insert(3, list(original[again]))
        report = _same_walk(rows, [], 1)
        assert (report.first_bad_seq, report.problem) == (3, problem)

    def test_a_long_log_with_checkpoints_around_every_flush(self) -> None:
        original = _sealed_rows(9000)
        sizes = {1, 2, 3, 4095, 4096, 4097, 8191, 8192, 8193, 9000}
        report = _same_walk(original, _checkpoints(original, sizes, set()), 1000)
        assert (report.ok, report.records, report.checkpoints) == (True, 9000, len(sizes))
        rows = [list(row) for row in original]
        rows[5000][COLUMNS.index("officer")] = "mallory"
        _rechain(rows, 5000)
        report = _same_walk(rows, _checkpoints(original, sizes, set()), 1000)
        assert (report.first_bad_seq, report.problem) == (4098, audit.verify.CHECKPOINT_MISMATCH)


class TestRawTuples:
    @pytest.mark.parametrize("page_size", [1, 7, 1000])
    def test_the_same_rows_as_the_dict_reader(self, installed: Engine, page_size: int) -> None:
        append_now(installed, [make_entry(i) for i in range(23)])
        expected = [tuple(row[c] for c in COLUMNS) for row in iter_rows(installed, start=-(2**63))]
        rows = list(iter_raw_tuples(installed, start=-(2**63), page_size=page_size))
        assert rows == expected
        assert [row[_SEQ] for row in rows] == list(range(1, 24))
        assert list(iter_raw_tuples(installed, start=20, page_size=page_size)) == expected[19:]

    def test_a_walk_stopped_early_releases_its_connection(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(10)])
        rows = iter_raw_tuples(installed, page_size=4)
        pool = installed.pool
        assert isinstance(pool, QueuePool)
        next(rows)
        assert pool.checkedout() == 1
        rows.close()
        assert pool.checkedout() == 0

    def test_page_size_must_be_positive(self, installed: Engine) -> None:
        with pytest.raises(ValueError, match="page_size"):
            next(iter_raw_tuples(installed, page_size=0))


_MALFORMED = [
    ("status", 200.5),
    ("status", 2**62),
    ("latency_us", 1.5),
    ("officer", b"\x00\xff"),
    ("released_fields", '["nik", "nama", "alamat"]'),
    ("released_fields", '["nik","nama",1.5]'),
    ("released_fields", "not json"),
    ("time", 20260101),
]


@pytest.mark.sqlite_only  # types SQLite stores as given; PostgreSQL's columns refuse them
class TestMalformedRowsInTheDatabase:
    @pytest.mark.parametrize(("column", "value"), _MALFORMED, ids=[c for c, _ in _MALFORMED])
    def test_reported_as_changed_never_a_crash(
        self, installed: Engine, column: str, value: object
    ) -> None:
        append_now(installed, [make_entry(i) for i in range(12)])
        drop_triggers(installed)
        with raw_sqlite(installed) as conn:
            conn.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = 7", (value,))  # noqa: S608
        rows = [tuple(row[c] for c in COLUMNS) for row in iter_rows(installed, start=-(2**63))]
        assert list(iter_raw_tuples(installed, start=-(2**63), page_size=5)) == rows
        expected, _, _ = _reference_walk([list(row) for row in rows], [], 10_000)
        report = verify_log(installed, page_size=5)
        assert report == expected
        assert (report.first_bad_seq, report.problem) == (7, RECORD_CHANGED)

    @pytest.mark.parametrize(("column", "value"), _MALFORMED, ids=[c for c, _ in _MALFORMED])
    def test_exported_and_changed_offline_too(
        self, installed: Engine, column: str, value: object
    ) -> None:
        append_now(installed, [make_entry(i) for i in range(12)])
        checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
        drop_triggers(installed)
        with raw_sqlite(installed) as conn:
            conn.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = 7", (value,))  # noqa: S608
        lines = list(iter_export(installed, checkpoint))
        assert len(lines) == 13  # the header and every record, the changed one as stored
        report = verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())
        assert (report.first_bad_seq, report.problem) == (7, RECORD_CHANGED)

    def test_a_blob_before_the_range_or_in_the_tree_fails_the_export_not_the_exporter(
        self, installed: Engine
    ) -> None:
        append_now(installed, [make_entry(i) for i in range(12)])
        checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
        previous = next(r for r in read_records(installed) if r.seq == 6).chain_hash
        drop_triggers(installed)
        with raw_sqlite(installed) as conn:
            conn.execute("UPDATE audit_records SET chain_hash = X'00ff' WHERE seq = 6")
            conn.execute("UPDATE audit_tree SET hash = 'not a hash'")
        lines = list(iter_export(installed, checkpoint, first_seq=7))
        assert len(lines) == 7
        with pytest.raises(CheckpointInvalid, match="header is malformed"):
            verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())
        with raw_sqlite(installed) as conn:  # the tree's text alone: a root nobody signed
            conn.execute("UPDATE audit_records SET chain_hash = ? WHERE seq = 6", (previous,))
        lines = list(iter_export(installed, checkpoint, first_seq=7))
        report = verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())
        assert not report.ok

    @pytest.mark.parametrize("page_size", [5, 1000])
    def test_text_that_is_not_utf8_is_changed_both_ways(
        self, installed: Engine, page_size: int
    ) -> None:
        # SQLite keeps any bytes as TEXT; its driver cannot decode these and used to stop the
        # walk (and the export) with an error instead of a verdict.
        append_now(installed, [make_entry(i) for i in range(12)])
        checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
        drop_triggers(installed)
        with raw_sqlite(installed) as conn:
            conn.execute(
                "UPDATE audit_records SET officer = CAST(X'62756469ff' AS TEXT) WHERE seq = 7"
            )
        report = verify_log(installed, page_size=page_size)
        assert (report.first_bad_seq, report.problem, report.records) == (7, RECORD_CHANGED, 6)
        rows = list(iter_raw_tuples(installed, page_size=page_size))
        assert [row[_SEQ] for row in rows] == list(range(1, 13))
        assert rows[6][COLUMNS.index("officer")].encode("utf-8", "surrogateescape") == b"budi\xff"
        lines = list(iter_export(installed, checkpoint))
        report = verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())
        assert (report.first_bad_seq, report.problem) == (7, RECORD_CHANGED)
        with installed.connect() as conn:  # the pool's connection decodes as before
            driver = conn.connection.driver_connection
            assert driver is not None
            assert driver.text_factory is str


def _reference_verify_export(
    lines: Iterable[str], *, checkpoint_note: str, progress: Callable[[int], object], every: int
) -> VerifyReport:
    """verify_export as it was before the fast path (signature check included)."""
    checkpoint = open_checkpoint(checkpoint_note, KEY.public_key())
    it = iter(lines)
    header = _Header(next(it, ""), checkpoint)
    checker = LogChecker(
        leaf_of=leaf_of_document,
        checkpoints=[checkpoint],
        first_seq=header.first_seq,
        previous_chain_hash=header.previous,
        edge=header.edge,
    )
    for line in it:
        if not line.strip():
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            document = None
        if header.first_seq + checker.checked > header.last_seq:
            return checker.verdict(header.last_seq + 1, OUT_OF_ORDER)
        if not isinstance(document, dict):
            report: VerifyReport | None = checker.verdict(
                header.first_seq + checker.checked, RECORD_CHANGED
            )
        else:
            report = checker.feed(document)
        if report is not None:
            return report
        if checker.checked % every == 0:
            progress(checker.checked)
    progress(checker.checked)
    if header.first_seq + checker.checked <= header.last_seq:
        return checker.finish(tree_size=header.last_seq)
    return checker.check_extended(header.right) or checker.finish(tree_size=header.last_seq)


class _Exports:
    """A signed checkpoint and exports under it, by first record (kept out of reprs: large)."""

    def __init__(self, checkpoint: StoredCheckpoint, lines: dict[int, list[str]]) -> None:
        self.checkpoint = checkpoint
        self.lines = lines

    def __repr__(self) -> str:
        return f"<exports from {sorted(self.lines)}>"


@pytest.fixture
def exported(installed: Engine) -> _Exports:
    """Exports of a 25-record log from a few first records, under one checkpoint."""
    append_now(installed, [make_entry(i) for i in range(13)])
    append_now(installed, [make_entry(i) for i in range(13, 25)])
    checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
    return _Exports(
        checkpoint,
        {first: list(iter_export(installed, checkpoint, first_seq=first)) for first in (1, 6, 25)},
    )


_line_op = st.one_of(
    st.tuples(st.just("set"), st.integers(1, 30), st.sampled_from(COLUMNS), _junk),
    st.tuples(st.just("delete"), st.integers(1, 30)),
    st.tuples(st.just("swap"), st.integers(1, 30), st.integers(1, 30)),
    st.tuples(st.just("copy"), st.integers(1, 30), st.integers(1, 30)),
    st.tuples(
        st.just("line"), st.integers(1, 30), st.sampled_from(["\n", "  \n", "{\n", "[]\n", "1\n"])
    ),
)


class TestOfflineWalk:
    @settings(
        max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        first=st.sampled_from([1, 6, 25]),
        ops=st.lists(_line_op, max_size=3),
        every=st.integers(1, 7),
        pending=st.integers(1, 9),
    )
    def test_same_verdict_as_the_reference(
        self,
        exported: _Exports,
        first: int,
        ops: list[tuple[Any, ...]],
        every: int,
        pending: int,
    ) -> None:
        checkpoint = exported.checkpoint
        lines = list(exported.lines[first])
        for op in ops:
            if len(lines) < 2:
                break
            i = 1 + op[1] % (len(lines) - 1)
            if op[0] == "set":
                try:
                    document = orjson.loads(lines[i])
                    document[op[2]] = op[3]
                    lines[i] = orjson.dumps(document).decode() + "\n"
                except (TypeError, ValueError):  # not a record line, or junk that is no JSON
                    continue
            elif op[0] == "delete":
                del lines[i]
            elif op[0] == "swap":
                j = 1 + op[2] % (len(lines) - 1)
                lines[i], lines[j] = lines[j], lines[i]
            elif op[0] == "copy":
                lines.insert(i, lines[1 + op[2] % (len(lines) - 1)])
            else:
                lines.insert(i, op[2])
        expected_seen: list[int] = []
        expected = _reference_verify_export(
            lines, checkpoint_note=checkpoint.note, progress=expected_seen.append, every=every
        )
        seen: list[int] = []
        with patch.object(audit.verify, "_PENDING_LEAVES", pending):
            report = verify_export(
                lines,
                checkpoint_note=checkpoint.note,
                public_key=KEY.public_key(),
                progress=seen.append,
                progress_every=every,
            )
        assert report == expected
        assert seen == expected_seen

    @pytest.mark.parametrize(
        "edit",
        [
            lambda line: line[:-2] + ',"subject_nik":"3171234567890001"}\n',
            lambda line: '{"decision":"refused",' + line[1:],
            lambda line: '{"seq":7,' + line[1:],
            lambda line: line[:-2] + ',"seq":7}\n',
        ],
        ids=["extra-key", "repeated-key-first", "repeated-same-value", "repeated-key-last"],
    )
    @pytest.mark.parametrize("pending", [1, 4096])
    def test_a_line_holding_more_than_its_record_is_changed(
        self, exported: _Exports, edit: Callable[[str], str], pending: int
    ) -> None:
        lines = list(exported.lines[1])
        lines[7] = edit(lines[7])
        assert document_canonicaliser()(lines[7]) is None  # never the fast path's to accept
        with patch.object(audit.verify, "_PENDING_LEAVES", pending):
            report = verify_export(
                lines, checkpoint_note=exported.checkpoint.note, public_key=KEY.public_key()
            )
        assert (report.first_bad_seq, report.problem, report.records) == (7, RECORD_CHANGED, 6)

    def test_whitespace_and_key_order_are_no_change(self, exported: _Exports) -> None:
        header, *records = exported.lines[1]
        spaced = [json.dumps(dict(sorted(orjson.loads(line).items()))) + "\n" for line in records]
        report = verify_export(
            [header, *spaced], checkpoint_note=exported.checkpoint.note, public_key=KEY.public_key()
        )
        assert (report.ok, report.records) == (True, 25)

    def test_a_header_with_a_repeated_key_is_refused(self, exported: _Exports) -> None:
        header, *records = exported.lines[6]
        lines = ['{"first_seq":1,' + header[1:], *records]
        with pytest.raises(CheckpointInvalid, match="header is malformed"):
            verify_export(
                lines, checkpoint_note=exported.checkpoint.note, public_key=KEY.public_key()
            )

    def test_a_valid_record_past_the_range_is_out_of_order(self, installed: Engine) -> None:
        append_now(installed, [make_entry(i) for i in range(25)])
        checkpoint = sign_now(installed, origin=ORIGIN, kid="k-1", key=KEY)
        whole = list(iter_export(installed, checkpoint))
        lines = [*iter_export(installed, checkpoint, first_seq=3, last_seq=10), whole[11]]
        seen: list[int] = []
        expected = _reference_verify_export(
            lines, checkpoint_note=checkpoint.note, progress=seen.append, every=1
        )
        report = verify_export(lines, checkpoint_note=checkpoint.note, public_key=KEY.public_key())
        assert report == expected
        assert (report.first_bad_seq, report.problem) == (11, OUT_OF_ORDER)
