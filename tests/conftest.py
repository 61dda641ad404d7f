"""Shared test fixtures. Test data lives in tests/data (see tests/data/README.md for sources)."""

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA
