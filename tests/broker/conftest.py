"""Fixtures for the broker tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No ``SIMPUL_*`` variable from the shell running the tests reaches ``Settings()``."""
    for name in list(os.environ):
        if name.upper().startswith("SIMPUL_"):
            monkeypatch.delenv(name)
    return monkeypatch
