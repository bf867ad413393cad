"""Alembic environment for the audit database (run through broker.migrate)."""

from broker.migrate import run_environment

run_environment("audit")
