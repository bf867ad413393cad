"""Alembic migrations: one script directory per database (state, and the audit log)."""
