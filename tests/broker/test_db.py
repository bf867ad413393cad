"""Connection settings the broker relies on, on whichever database this run uses."""

from __future__ import annotations

from sqlalchemy import Engine


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
