"""Fixtures for the schemas tests: the packaged schema set on a fixed clock."""

from __future__ import annotations

import pytest

from schemas import SchemaSet
from tests.schemas.samples import TODAY


@pytest.fixture(scope="session")
def schema_set() -> SchemaSet:
    """The packaged schemas, with identifier dates checked against :data:`TODAY`."""
    return SchemaSet.load(today=lambda: TODAY)
