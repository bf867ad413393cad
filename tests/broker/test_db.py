"""Connection settings the broker relies on, on whichever database this run uses."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError


class TestConnectionSettings:
    def test_durability_and_fail_closed_settings(self, engine: Engine) -> None:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
                # Negative: a size in KiB, not in pages.
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -512
            else:
                # A writer waiting on a dead peer's lock errors out (503) instead of hanging.
                assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "10s"
                assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "1min"

    def test_a_failed_statement_does_not_carry_its_values(self, engine: Engine) -> None:
        """The error's text reaches the operators' logs; a bound value may be a NIK."""
        nik = "3174011901860001"
        with pytest.raises(DBAPIError) as failed, engine.connect() as conn:
            conn.execute(text("SELECT * FROM no_such_table WHERE nik = :nik"), {"nik": nik})
        assert nik not in str(failed.value)
