"""Alembic environment for the main database (run through broker.migrate)."""

from broker.migrate import run_environment

run_environment("main")
