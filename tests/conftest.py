"""Shared fixtures: the ../shared folder (reference vectors and real DAVIS data)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_VARIABLE = "GEOMOTION_SHARED"
DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def _require(path: Path, what: str) -> Path:
    if path.exists():
        return path
    message = f"{what} not found at {path} (set {SHARED_VARIABLE} to the shared folder)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared folder: ``$GEOMOTION_SHARED`` or ``../shared`` beside the checkout."""
    return _require(Path(os.environ.get(SHARED_VARIABLE, DEFAULT_SHARED)), "shared folder")


@pytest.fixture(scope="session")
def reference_dir(shared_dir: Path) -> Path:
    """``shared/reference``: architecture facts and conformance vectors."""
    return _require(shared_dir / "reference", "reference vectors")


@pytest.fixture(scope="session")
def davis_root(shared_dir: Path) -> Path:
    """``shared/data/DAVIS2016``: four real DAVIS 2016 sequences with ground truth."""
    return _require(shared_dir / "data" / "DAVIS2016", "DAVIS 2016 data")
