"""The DAVIS sequences the tests and benchmarks use: where they are, and their frames and masks.

The sequences stay outside the repository (``docs/testing.md`` says how to get them). One setting
finds them: ``$GEOMOTION_TEST_DATA`` names the folder holding ``DAVIS2016/`` (and, for the
benchmarks' validate split, ``DAVIS2016_extra/``); without it, ``../shared/data`` beside the
checkout. Frames and masks are read through the package's own readers (``open_frames`` and the
DAVIS 2016 benchmark layout of ``geomotion_core.eval.datasets``). The reference vectors are part
of the repository: ``REFERENCE_DIR``.
"""
from __future__ import annotations

import os
from itertools import islice
from pathlib import Path

import numpy as np

DATA_VARIABLE = "GEOMOTION_TEST_DATA"
REPOSITORY = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPOSITORY.parent / "shared" / "data"
REFERENCE_DIR = REPOSITORY / "tests" / "data" / "reference"
DAVIS = "DAVIS2016"
DAVIS_EXTRA = "DAVIS2016_extra"
GUIDE = "docs/testing.md"


def data_root() -> Path:
    """``$GEOMOTION_TEST_DATA``, else ``../shared/data`` beside the checkout."""
    value = os.environ.get(DATA_VARIABLE)
    return Path(value).expanduser() if value else DEFAULT_DATA


def davis_root(name: str = DAVIS) -> Path:
    """A DAVIS-layout folder (``DAVIS2016`` or ``DAVIS2016_extra``) of the data folder; may not exist."""
    return data_root() / name


def missing_davis_message(name: str = DAVIS) -> str:
    """One line saying where the DAVIS sequences were looked for and how to provide them."""
    return (f"DAVIS 2016 sequences not found at {davis_root(name)}: set {DATA_VARIABLE} to the folder "
            f"holding {name}/ ({GUIDE})")


def require_davis(name: str = DAVIS) -> Path:
    """``davis_root(name)`` for a benchmark; exits with ``missing_davis_message`` when absent."""
    root = davis_root(name)
    if not root.is_dir():
        raise SystemExit(missing_davis_message(name))
    return root


def read_frames(
    root: Path, sequence: str, count: int | None = None, start: int = 0, size: tuple[int, int] | None = None
) -> np.ndarray:
    """Frames ``start .. start + count - 1`` (default: to the end) of a DAVIS sequence, ``[N, H, W, 3]``
    uint8 RGB; ``size`` is ``(width, height)`` to resize to (area interpolation).

    Raises ValueError when the sequence has fewer frames than asked for.
    """
    import cv2

    from geomotion_core.io import open_frames

    stop = None if count is None else start + count
    frames = [frame.image for frame in islice(open_frames(root / "JPEGImages" / "480p" / sequence), start, stop)]
    if not frames or (count is not None and len(frames) < count):
        raise ValueError(f"{sequence} under {root} has {len(frames)} frames from {start}, {count} asked for")
    if size is not None:
        frames = [cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames]
    return np.stack(frames)


def read_masks(root: Path, sequence: str, count: int | None = None, start: int = 0) -> np.ndarray:
    """Ground-truth masks of the same frames as ``read_frames``, ``[N, H, W]`` bool (any label is moving)."""
    from geomotion_core.eval.datasets import benchmark_sequences
    from geomotion_core.eval.masks import read_merged

    files = benchmark_sequences("davis2016", root, sequences=[sequence]).sequences[0]
    stop = None if count is None else start + count
    masks = [read_merged(paths) > 0 for paths in files.gt[start:stop]]
    if not masks or (count is not None and len(masks) < count):
        raise ValueError(f"{sequence} under {root} has {len(masks)} masks from {start}, {count} asked for")
    return np.stack(masks)


def frame_files(root: Path, sequence: str) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """The image file and the (single) mask file of every frame of a DAVIS sequence, in frame order."""
    from geomotion_core.eval.datasets import benchmark_sequences

    files = benchmark_sequences("davis2016", root, sequences=[sequence]).sequences[0]
    return files.images, tuple(paths[0] for paths in files.gt)
