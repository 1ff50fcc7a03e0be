"""Shared test fixtures. Append new fixtures below; keep each one small and documented."""

from __future__ import annotations

from pathlib import Path

import pytest

# The real-data folder lives beside the repository (../shared/data), never inside it.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data; skips the test when the shared dataset is not beside the repo."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found: real-data tests need the shared dataset beside the repo")
    return SHARED_DATA


@pytest.fixture(scope="session")
def phantom():
    """The default synthetic T2 phantom (straight spine, seed 0), built once; treat it as read-only."""
    from lumbarkit.phantom import make_phantom

    return make_phantom()
