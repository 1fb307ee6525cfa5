# SPDX-License-Identifier: Apache-2.0
"""Readers that turn a dataset folder into a list of (frames, masks) sequences.

Every reader pairs each frame with the mask of the same file stem and raises ``InputError`` when a
mask is missing or left over, so a broken dataset fails before training starts (the official
loaders silently drop such frames). Layouts (``<seq>`` is one video):

- ``hoi4d``            ``<root>/images/<seq>/*.jpg|png`` and ``<root>/dynamic_masks/<seq>/*.png``
- ``dynamic_replica``  ``<root>/<split>/<seq>/images/*.png`` and ``<root>/<split>/<seq>/dynamic_masks/*.png``
                       (``split`` defaults to ``train``)
- ``ytvos_motion``     ``<root>/JPEGImages/<seq>/*.jpg`` and ``<root>/Annotations/<seq>/*.png``
                       (YouTube-VOS 2018 with motion annotations)
- ``omniworld``        ``<root>/<scene>/color/*.png`` and ``<root>/<scene>/gdino_mask/*.png``
- ``got_motion``       any ``<root>/**/<video>/`` holding frames and a ``masks/`` folder of
                       ``*.png`` or ``*.npz`` (first array of the archive) masks
- ``davis``            ``<root>/JPEGImages/<res>/<seq>/*.jpg`` and ``<root>/Annotations/<res>/<seq>/*.png``
                       (``res`` = 480p); ``split`` names a list under ``<root>/ImageSets/`` (e.g. ``dev``
                       for ``ImageSets/dev.txt``), otherwise every sequence folder is used
- ``frames_masks``     ``<root>/<seq>/images/*`` and ``<root>/<seq>/masks/*`` (the generic layout for
                       your own data)

Masks are binary: any non-zero pixel (in any channel) is "moving".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from geomotion_core.errors import InputError
from geomotion_core.train.config import DatasetConfig

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
MASK_SUFFIXES = (".png", ".npz", ".jpg", ".jpeg")
DAVIS_RESOLUTION = "480p"


@dataclass(frozen=True)
class VideoSequence:
    """One video: frame and mask files of equal length, in temporal order."""

    dataset: str
    name: str
    frames: tuple[Path, ...]
    masks: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def key(self) -> str:
        """A stable identifier (dataset/sequence) for caches and logs."""
        return f"{self.dataset}/{self.name}"


def list_images(folder: Path, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> list[Path]:
    """Files in ``folder`` with one of ``suffixes`` (any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def pair_frames_and_masks(dataset: str, name: str, frame_dir: Path, mask_dir: Path) -> VideoSequence:
    """Pair every frame with the mask of the same stem; any mismatch is an ``InputError``."""
    if not frame_dir.is_dir():
        raise InputError(f"{dataset}/{name}: frame folder {frame_dir} does not exist")
    if not mask_dir.is_dir():
        raise InputError(f"{dataset}/{name}: mask folder {mask_dir} does not exist (missing masks)")
    frames = list_images(frame_dir)
    masks = {p.stem: p for p in list_images(mask_dir, MASK_SUFFIXES)}
    if not frames:
        raise InputError(f"{dataset}/{name}: no frames in {frame_dir}")
    missing = [p.name for p in frames if p.stem not in masks]
    extra = sorted(set(masks) - {p.stem for p in frames})
    if missing or extra:
        details = []
        if missing:
            details.append(f"{len(missing)} frame(s) without a mask, first {missing[0]}")
        if extra:
            details.append(f"{len(extra)} mask(s) without a frame, first {extra[0]}")
        raise InputError(
            f"{dataset}/{name}: {len(frames)} frames in {frame_dir} but {len(masks)} masks in "
            f"{mask_dir} ({'; '.join(details)})"
        )
    return VideoSequence(dataset, name, tuple(frames), tuple(masks[p.stem] for p in frames))


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"dataset folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _pair_subfolders(
    config: DatasetConfig, folder: Path, frame_dir: Callable[[Path], Path], mask_dir: Callable[[Path], Path]
) -> list[VideoSequence]:
    """One sequence per subfolder ``seq`` of ``folder``: frames in ``frame_dir(seq)``, masks in ``mask_dir(seq)``."""
    return [
        pair_frames_and_masks(config.label, seq.name, frame_dir(seq), mask_dir(seq)) for seq in _subfolders(folder)
    ]


def _read_hoi4d(config: DatasetConfig) -> list[VideoSequence]:
    root = Path(config.root)
    return _pair_subfolders(config, root / "images", lambda seq: seq, lambda seq: root / "dynamic_masks" / seq.name)


def _read_dynamic_replica(config: DatasetConfig) -> list[VideoSequence]:
    split = Path(config.root) / (config.split or "train")
    return _pair_subfolders(config, split, lambda seq: seq / "images", lambda seq: seq / "dynamic_masks")


def _read_ytvos_motion(config: DatasetConfig) -> list[VideoSequence]:
    root = Path(config.root)
    return _pair_subfolders(config, root / "JPEGImages", lambda seq: seq, lambda seq: root / "Annotations" / seq.name)


def _read_omniworld(config: DatasetConfig) -> list[VideoSequence]:
    return _pair_subfolders(config, Path(config.root), lambda scene: scene / "color", lambda scene: scene / "gdino_mask")


def _read_got_motion(config: DatasetConfig) -> list[VideoSequence]:
    root = Path(config.root)
    if not root.is_dir():
        raise InputError(f"dataset folder {root} does not exist")
    videos = sorted(mask_dir.parent for mask_dir in root.rglob("masks") if mask_dir.is_dir())
    return [
        pair_frames_and_masks(config.label, video.relative_to(root).as_posix(), video, video / "masks")
        for video in videos
    ]


def _read_davis(config: DatasetConfig) -> list[VideoSequence]:
    root = Path(config.root)
    frame_root = root / "JPEGImages" / DAVIS_RESOLUTION
    if config.split:
        names = _read_davis_list(root / "ImageSets" / f"{config.split}.txt")
    else:
        names = [p.name for p in _subfolders(frame_root)]
    return [
        pair_frames_and_masks(config.label, name, frame_root / name, root / "Annotations" / DAVIS_RESOLUTION / name)
        for name in names
    ]


def _read_davis_list(path: Path) -> list[str]:
    """Sequence names from a DAVIS ImageSets file: one name per line, or DAVIS 2016's
    ``/JPEGImages/480p/<seq>/00000.jpg /Annotations/...`` frame lines."""
    try:
        lines = path.read_text().split("\n")
    except OSError as exc:
        raise InputError(f"cannot read DAVIS sequence list {path}: {exc.strerror}") from exc
    tokens = [line.split()[0] for line in lines if line.strip()]
    names = [token.strip("/").split("/")[-2] if "/" in token else token for token in tokens]
    return list(dict.fromkeys(names))


def _read_frames_masks(config: DatasetConfig) -> list[VideoSequence]:
    return _pair_subfolders(config, Path(config.root), lambda seq: seq / "images", lambda seq: seq / "masks")


READERS: dict[str, Callable[[DatasetConfig], list[VideoSequence]]] = {
    "hoi4d": _read_hoi4d,
    "dynamic_replica": _read_dynamic_replica,
    "ytvos_motion": _read_ytvos_motion,
    "omniworld": _read_omniworld,
    "got_motion": _read_got_motion,
    "davis": _read_davis,
    "frames_masks": _read_frames_masks,
}


def read_sequences(config: DatasetConfig, min_length: int = 1) -> list[VideoSequence]:
    """All usable sequences of one dataset.

    Sequences shorter than ``min_length`` frames are skipped with a warning (as the official
    loaders do); a dataset left without any sequence is an ``InputError``.
    """
    sequences = READERS[config.layout](config)
    if config.sequences is not None:
        wanted = set(config.sequences)
        unknown = wanted - {s.name for s in sequences}
        if unknown:
            raise InputError(f"{config.label}: sequences not found: {', '.join(sorted(unknown))}")
        sequences = [s for s in sequences if s.name in wanted]
    usable = [s for s in sequences if len(s) >= min_length]
    if len(usable) < len(sequences):
        LOGGER.warning(
            "%s: skipped %d of %d sequences with fewer than %d frames",
            config.label, len(sequences) - len(usable), len(sequences), min_length,
        )
    if not usable:
        raise InputError(f"{config.label}: no sequence with at least {min_length} frames under {config.root}")
    return usable
