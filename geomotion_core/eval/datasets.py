# SPDX-License-Identifier: Apache-2.0
"""Benchmark readers: which sequences and frames each benchmark scores, and where their files are.

Every reader checks the layout instead of trusting it: a missing sequence, a frame without its
image or prediction, extra frames, or GT frames of different sizes raise ``InputError`` naming
the files, never a silent truncation. Sequence lists are the published ones (see
``docs/evaluation.md`` for their sources).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.io.frames import natural_sort_key

MASK_SUFFIXES = (".png", ".bmp")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
PREDICTION_SUBFOLDER = "masks"  # where `geomotion segment` writes a sequence's masks
INSTANCE_SUBFOLDER = "instances"  # ... and, with --instances, its object ids (multi-object protocols read these)

DAVIS2016_VAL = (
    "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows",
    "dance-twirl", "dog", "drift-chicane", "drift-straight", "goat", "horsejump-high", "kite-surf",
    "libby", "motocross-jump", "paragliding-launch", "parkour", "scooter-black", "soapbox",
)  # fmt: skip
DAVIS2017_VAL = (
    "bike-packing", "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow",
    "cows", "dance-twirl", "dog", "dogs-jump", "drift-chicane", "drift-straight", "goat", "gold-fish",
    "horsejump-high", "india", "judo", "kite-surf", "lab-coat", "libby", "loading", "mbike-trick",
    "motocross-jump", "paragliding-launch", "parkour", "pigs", "scooter-black", "shooting", "soapbox",
)  # fmt: skip
# The moving-object list of Dave et al. 2019 (segment-any-moving), shipped again by SegAnyMotion;
# 16 of its sequences are DAVIS-2016 val, 6 exist only in DAVIS 2017.
DAVIS_MOVING = (
    "bike-packing", "blackswan", "bmx-trees", "car-shadow", "cows", "dance-twirl", "dog", "dogs-jump",
    "drift-chicane", "drift-straight", "goat", "horsejump-high", "judo", "kite-surf", "libby",
    "mbike-trick", "motocross-jump", "paragliding-launch", "parkour", "pigs", "shooting", "soapbox",
)  # fmt: skip
DAVIS_MOVING_2016 = tuple(name for name in DAVIS_MOVING if name in DAVIS2016_VAL)
SEGTRACK_V2 = (
    "birdfall", "bird_of_paradise", "bmx", "cheetah", "drift", "frog", "girl", "hummingbird",
    "monkey", "monkeydog", "parachute", "penguin", "soldier", "worm",
)  # fmt: skip
FBMS_TEST = (
    "camel01", "cars1", "cars10", "cars4", "cars5", "cats01", "cats03", "cats06", "dogs01", "dogs02",
    "farm01", "giraffes01", "goats01", "horses02", "horses04", "horses05", "lion01", "marple12",
    "marple2", "marple4", "marple6", "marple7", "marple9", "people03", "people1", "people2",
    "rabbits02", "rabbits03", "rabbits04", "tennis",
)  # fmt: skip

ALL_FOLDERS = "all"  # the list name meaning "every sequence folder under the GT folder"


@dataclass(frozen=True)
class Benchmark:
    """Layout and sequence lists of one benchmark, relative to its root folder."""

    name: str
    image_dirs: tuple[str, ...]  # candidates, the first that exists is used
    gt_dirs: tuple[str, ...]
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)  # plus ALL_FOLDERS, always
    default_list: str = ALL_FOLDERS
    default_protocol: str = "davis"
    annotated_only: bool = False  # sparse GT: only annotated frames are segmented and scored

    def list_names(self) -> list[str]:
        """The sequence lists this benchmark offers."""
        return [*self.lists, ALL_FOLDERS]


_DAVIS = {"image_dirs": ("JPEGImages/480p",), "gt_dirs": ("Annotations/480p",)}
BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in (
        # GeoMotion scores DAVIS-2016 on the DAVIS-2017 trainval release, objects merged to binary
        Benchmark("davis2016", **_DAVIS, lists={"val": DAVIS2016_VAL}, default_list="val"),
        Benchmark("davis2017", **_DAVIS, lists={"val": DAVIS2017_VAL}, default_list="val"),
        # OCLR's DAVIS2017-motion annotations; DAVIS2016-Moving is GeoMotion's DAVIS-16 list on them
        Benchmark(
            "davis2016-m",
            **_DAVIS,
            lists={"geomotion": DAVIS2016_VAL, "moving22": DAVIS_MOVING, "moving16": DAVIS_MOVING_2016},
            default_list="geomotion",
        ),
        Benchmark("davis2017-m", **_DAVIS, lists={"val": DAVIS2017_VAL}, default_list="val"),
        Benchmark(
            "segtrack-v2",
            image_dirs=("JPEGImages", "JPEGImages_jpg_standardized"),
            gt_dirs=("Annotations", "GroundTruth"),
            lists={"all14": SEGTRACK_V2},
            default_list="all14",
        ),
        Benchmark(
            "fbms-59",
            image_dirs=("JPEGImages",),
            gt_dirs=("Annotations",),
            lists={"test": FBMS_TEST},
            default_list="test",
            annotated_only=True,
        ),
    )
}


def get_benchmark(name: str) -> Benchmark:
    """The benchmark called ``name``; ConfigError for an unknown name."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}") from None


@dataclass(frozen=True)
class SequenceFiles:
    """The files of one sequence: per frame, its GT file(s) and, if known, its image."""

    name: str
    frames: tuple[str, ...]  # frame names (file stems) in natural order
    gt: tuple[tuple[Path, ...], ...]  # per frame: one label map, or per-object masks to merge
    images: tuple[Path, ...] | None = None


@dataclass(frozen=True)
class SequenceSet:
    """The sequences to score and where they came from."""

    sequences: tuple[SequenceFiles, ...]
    benchmark: str | None
    sequence_list: str  # the list's name, ``all``, ``custom`` or ``file:<name>``
    annotated_only: bool = False


def _files_by_stem(folder: Path, suffixes: Sequence[str], what: str) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir(), key=natural_sort_key):
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        if path.stem in files:
            raise InputError(
                f"{what} {folder} has two files for frame {path.stem}: {files[path.stem].name}, {path.name}"
            )
        files[path.stem] = path
    return files


def _sorted_stems(stems) -> tuple[str, ...]:
    return tuple(sorted(stems, key=lambda stem: natural_sort_key(Path(stem))))


def _gt_frames(folder: Path) -> dict[str, tuple[Path, ...]]:
    """GT files of one sequence folder by frame; per-object subfolders (``1/``, ``2/``) are merged."""
    files = _files_by_stem(folder, MASK_SUFFIXES, "GT folder")
    object_dirs = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=natural_sort_key)
    if files and object_dirs:
        raise InputError(f"GT folder {folder} mixes frame files and per-object folders")
    if not object_dirs:
        return {stem: (path,) for stem, path in files.items()}
    per_object = [_files_by_stem(d, MASK_SUFFIXES, "GT object folder") for d in object_dirs]
    stems = set(per_object[0])
    for directory, frames in zip(object_dirs[1:], per_object[1:]):
        if set(frames) != stems:
            raise InputError(
                f"GT object folders of {folder} disagree on frames: {object_dirs[0].name}/ has "
                f"{len(stems)}, {directory.name}/ has {len(frames)} (differing: {_sample(stems ^ set(frames))})"
            )
    return {stem: tuple(frames[stem] for frames in per_object) for stem in stems}


def _sample(names, limit: int = 5) -> str:
    names = _sorted_stems(names)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _existing(root: Path, candidates: Sequence[str], what: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    raise InputError(f"{root} has no {what} folder (looked for {', '.join(candidates)})")


def _folders(parent: Path) -> list[str]:
    return sorted((p.name for p in parent.iterdir() if p.is_dir()), key=lambda n: natural_sort_key(Path(n)))


def _choose(parent: Path, names: Sequence[str] | None, hint: str = "") -> list[str]:
    available = _folders(parent)
    if names is None:
        if not available:
            raise InputError(f"{parent} has no sequence folders")
        return available
    missing = [name for name in names if name not in available]
    if missing:
        raise InputError(f"{parent} lacks {len(missing)} of the {len(names)} sequences: {_sample(missing)}{hint}")
    return list(names)


def read_sequence_names(spec: str) -> tuple[list[str], str]:
    """Sequence names from ``a,b,c`` or ``@FILE`` (one name per line); also the list's label."""
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            lines = path.read_text().split()
        except OSError as exc:
            raise InputError(f"cannot read the sequence list {path}: {exc}") from exc
        return [line.strip() for line in lines if line.strip()], f"file:{path.name}"
    return [name.strip() for name in spec.split(",") if name.strip()], "custom"


def folder_sequences(
    gt_root: str | Path, sequences: Sequence[str] | None = None, list_label: str | None = None
) -> SequenceSet:
    """Every sequence folder under ``gt_root`` (``<seq>/<frame>.png``), or the named ones."""
    gt_root = Path(gt_root)
    if not gt_root.is_dir():
        raise InputError(f"GT folder {gt_root} does not exist")
    names = _choose(gt_root, sequences)
    files = []
    for name in names:
        frames = _gt_frames(gt_root / name)
        if not frames:
            raise InputError(f"GT folder {gt_root / name} has no mask files")
        order = _sorted_stems(frames)
        files.append(SequenceFiles(name, order, tuple(frames[stem] for stem in order)))
    return SequenceSet(tuple(files), None, ALL_FOLDERS if sequences is None else list_label or "custom")


def benchmark_sequences(
    benchmark: str | Benchmark,
    root: str | Path,
    sequence_list: str | None = None,
    sequences: Sequence[str] | None = None,
    list_label: str | None = None,
) -> SequenceSet:
    """The sequences of a benchmark under ``root``, checked against its layout.

    Args:
        benchmark: a name from ``BENCHMARKS`` or a ``Benchmark``.
        root: the benchmark's root folder (the one holding its image and GT folders).
        sequence_list: one of the benchmark's lists (default: its default list) or ``all``.
        sequences: explicit sequence names; they replace the list.
        list_label: how the report names explicit sequences (default ``custom``).
    """
    spec = benchmark if isinstance(benchmark, Benchmark) else get_benchmark(benchmark)
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"benchmark root {root} does not exist")
    gt_dir = _existing(root, spec.gt_dirs, "GT")
    image_dir = _existing(root, spec.image_dirs, "image")
    if sequences is not None:
        names, label = list(sequences), list_label or "custom"
    else:
        label = sequence_list or spec.default_list
        if label != ALL_FOLDERS and label not in spec.lists:
            choices = ", ".join(spec.list_names())
            raise ConfigError(f"{spec.name} has no sequence list {label!r}; choose one of {choices}")
        names = None if label == ALL_FOLDERS else list(spec.lists[label])
    hint = f" (list {label}; another list, 'all' or explicit sequences score a subset)" if sequences is None else ""
    names = _choose(gt_dir, names, hint)
    files = tuple(_benchmark_sequence(spec, gt_dir, image_dir, name) for name in names)
    return SequenceSet(files, spec.name, label, spec.annotated_only)


def _benchmark_sequence(spec: Benchmark, gt_dir: Path, image_dir: Path, name: str) -> SequenceFiles:
    gt = _gt_frames(gt_dir / name)
    if not gt:
        raise InputError(f"GT folder {gt_dir / name} has no mask files")
    if not (image_dir / name).is_dir():
        raise InputError(f"image folder {image_dir / name} is missing")
    images = _files_by_stem(image_dir / name, IMAGE_SUFFIXES, "image folder")
    without_image = set(gt) - set(images)
    if without_image:
        raise InputError(f"{spec.name} sequence {name}: GT frames without an image: {_sample(without_image)}")
    if not spec.annotated_only and set(images) != set(gt):
        raise InputError(
            f"{spec.name} sequence {name}: {len(images)} images but {len(gt)} GT frames "
            f"(frames without GT: {_sample(set(images) - set(gt))})"
        )
    order = _sorted_stems(gt)
    return SequenceFiles(name, order, tuple(gt[stem] for stem in order), tuple(images[stem] for stem in order))


def prediction_files(
    pred_root: str | Path, sequence: SequenceFiles, extra_allowed: bool = False, inner_only_allowed: bool = False,
    subfolder: str = PREDICTION_SUBFOLDER,
) -> tuple[Path, ...]:
    """The predicted mask file of every GT frame of ``sequence`` under ``pred_root/<seq>/``.

    A sequence folder written by ``geomotion segment`` is accepted too: its ``subfolder``
    (``masks/`` or ``instances/``), else its ``masks/``.
    Missing predictions are an error; so are predictions for frames without GT, unless
    ``extra_allowed`` (sparse GT). With ``inner_only_allowed`` (DAVIS-2016) a prediction may
    leave out exactly the first and last frame. Returns the files in frame order.
    """
    folder = Path(pred_root) / sequence.name
    if not folder.is_dir():
        raise InputError(f"prediction folder {folder} is missing")
    predicted = _files_by_stem(folder, (".png",), "prediction folder")
    for name in (subfolder, PREDICTION_SUBFOLDER):  # a folder without instances: its masks, one object
        if not predicted and (folder / name).is_dir():
            folder = folder / name
            predicted = _files_by_stem(folder, (".png",), "prediction folder")
    frames = sequence.frames
    if inner_only_allowed and len(frames) > 2 and set(predicted) == set(frames[1:-1]):
        frames = frames[1:-1]
    missing = [stem for stem in frames if stem not in predicted]
    if missing:
        raise InputError(f"{folder}: no prediction for {len(missing)} of {len(frames)} GT frames: {_sample(missing)}")
    extra = set(predicted) - set(frames)
    if extra and not extra_allowed:
        raise InputError(f"{folder}: {len(extra)} predicted frames have no GT frame: {_sample(extra)}")
    return tuple(predicted[stem] for stem in frames)
