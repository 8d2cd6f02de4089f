"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The shared corpus of real books (../shared/corpus next to the repository); skip without it."""
    path = Path(__file__).resolve().parents[2] / "shared" / "corpus"
    if not path.is_dir():
        pytest.skip(f"test corpus not found at {path}")
    return path
