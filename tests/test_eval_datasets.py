"""Benchmark readers and folder pairing on layouts built from the real DAVIS frames."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.eval import BENCHMARKS, benchmark_sequences, evaluate_folders, evaluate_set
from geomotion_core.eval.datasets import DAVIS2016_VAL, DAVIS2017_VAL, FBMS_TEST, SEGTRACK_V2, read_sequence_names

SEQUENCE = "car-shadow"
FRAMES = 6


def _copy_frames(source: Path, target: Path, count: int = FRAMES, every: int = 1) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    chosen = sorted(source.iterdir())[: count * every : every]
    return [Path(shutil.copy(path, target / path.name)) for path in chosen]


@pytest.fixture
def davis_layout(davis_root: Path, tmp_path: Path) -> Path:
    """A DAVIS root with the first frames of one real sequence: JPEGImages and Annotations."""
    root = tmp_path / "DAVIS"
    _copy_frames(davis_root / "JPEGImages" / "480p" / SEQUENCE, root / "JPEGImages" / "480p" / SEQUENCE)
    _copy_frames(davis_root / "Annotations" / "480p" / SEQUENCE, root / "Annotations" / "480p" / SEQUENCE)
    return root


def _predict_gt(gt_folder: Path, pred_folder: Path) -> None:
    """Perfect predictions: the GT copied as predictions."""
    pred_folder.mkdir(parents=True, exist_ok=True)
    for path in gt_folder.glob("*.png"):
        shutil.copy(path, pred_folder / path.name)


@pytest.fixture
def perfect_predictions(davis_layout: Path, tmp_path: Path) -> Path:
    """``pred/<SEQUENCE>`` under ``tmp_path``: the GT of ``davis_layout`` copied as predictions."""
    pred = tmp_path / "pred" / SEQUENCE
    _predict_gt(davis_layout / "Annotations" / "480p" / SEQUENCE, pred)
    return pred


def test_published_lists_have_their_sizes():
    assert (len(DAVIS2016_VAL), len(DAVIS2017_VAL), len(SEGTRACK_V2), len(FBMS_TEST)) == (20, 30, 14, 30)
    assert set(DAVIS2016_VAL) <= set(DAVIS2017_VAL)
    assert BENCHMARKS["davis2016-m"].lists["geomotion"] == DAVIS2016_VAL


def test_davis_layout_reads_and_scores_perfect_predictions(davis_layout, tmp_path):
    sequence_set = benchmark_sequences("davis2016", davis_layout, sequences=[SEQUENCE])
    (sequence,) = sequence_set.sequences
    assert sequence.frames == tuple(f"{i:05d}" for i in range(FRAMES))
    assert sequence.images[0].suffix == ".jpg"
    _predict_gt(davis_layout / "Annotations" / "480p" / SEQUENCE, tmp_path / "pred" / SEQUENCE / "masks")
    report = evaluate_set(sequence_set, tmp_path / "pred")  # a `geomotion segment` folder (masks/) works
    assert report.to_dict()["dataset"]["pooled_over_frames"]["J&F-Mean"] == pytest.approx(1.0)
    assert report.sequence_list == "custom"


def test_missing_sequence_of_a_published_list_is_an_error(davis_layout):
    with pytest.raises(InputError, match=r"lacks 19 of the 20 sequences.*list val"):
        benchmark_sequences("davis2016", davis_layout)
    with pytest.raises(ConfigError, match="no sequence list"):
        benchmark_sequences("davis2016", davis_layout, sequence_list="test")
    assert benchmark_sequences("davis2016", davis_layout, sequence_list="all").sequence_list == "all"


def test_image_and_gt_count_mismatch_is_an_error(davis_layout):
    next(iter(sorted((davis_layout / "JPEGImages" / "480p" / SEQUENCE).iterdir()))).unlink()
    with pytest.raises(InputError, match="GT frames without an image: 00000"):
        benchmark_sequences("davis2016", davis_layout, sequence_list="all")


def test_missing_and_extra_predictions_are_errors(davis_layout, perfect_predictions):
    gt_root, pred = davis_layout / "Annotations" / "480p", perfect_predictions
    (pred / "00003.png").unlink()
    with pytest.raises(InputError, match=r"no prediction for 1 of 6 GT frames: 00003"):
        evaluate_folders(gt_root, pred.parent)
    _predict_gt(gt_root / SEQUENCE, pred)
    shutil.copy(pred / "00000.png", pred / "00099.png")
    with pytest.raises(InputError, match="1 predicted frames have no GT frame: 00099"):
        evaluate_folders(gt_root, pred.parent)


def test_davis2016_protocol_accepts_inner_frames_only(davis_layout, perfect_predictions):
    gt_root, pred = davis_layout / "Annotations" / "480p", perfect_predictions
    (pred / "00000.png").unlink()
    (pred / f"{FRAMES - 1:05d}.png").unlink()
    report = evaluate_folders(gt_root, pred.parent, "davis2016")
    assert report.units[0].frames == ["00001", "00002", "00003", "00004"]
    with pytest.raises(InputError, match="no prediction"):
        evaluate_folders(gt_root, pred.parent, "davis")


def test_prediction_of_another_size_is_an_error(davis_layout, perfect_predictions):
    gt_root, pred = davis_layout / "Annotations" / "480p", perfect_predictions
    Image.open(pred / "00002.png").resize((427, 240)).save(pred / "00002.png")
    with pytest.raises(InputError, match="00002.png is 427x240 but .* must share one size"):
        evaluate_folders(gt_root, pred.parent)
    for path in pred.glob("*.png"):
        Image.open(path).resize((427, 240)).save(path)
    with pytest.raises(InputError, match="predictions are 427x240 but the GT is 854x480"):
        evaluate_folders(gt_root, pred.parent)


def test_unreadable_mask_is_an_error_naming_the_file(davis_layout, perfect_predictions):
    gt_root, pred = davis_layout / "Annotations" / "480p", perfect_predictions
    (pred / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(InputError, match="cannot read mask .*00001.png"):
        evaluate_folders(gt_root, pred.parent)


def test_segtrack_object_folders_are_merged(davis_root, tmp_path):
    """Two per-object GT folders (the raw SegTrack-v2 layout) score as their union."""
    root = tmp_path / "SegTrackv2"
    source = davis_root / "Annotations" / "480p" / SEQUENCE
    images = _copy_frames(davis_root / "JPEGImages" / "480p" / SEQUENCE, root / "JPEGImages" / "bmx")
    for object_id, half in (("1", slice(0, 427)), ("2", slice(427, 854))):
        folder = root / "GroundTruth" / "bmx" / object_id
        folder.mkdir(parents=True)
        for path in sorted(source.iterdir())[:FRAMES]:
            labels = np.asarray(Image.open(path)).copy()
            keep = np.zeros_like(labels, bool)
            keep[:, half] = True
            Image.fromarray(np.where(keep, labels, 0).astype(np.uint8)).save(folder / path.name)
    sequence_set = benchmark_sequences("segtrack-v2", root, sequences=["bmx"])
    assert len(sequence_set.sequences[0].gt[0]) == 2 and len(images) == FRAMES
    _predict_gt(source, tmp_path / "pred" / "bmx")
    for path in sorted((tmp_path / "pred" / "bmx").iterdir())[FRAMES:]:
        path.unlink()
    report = evaluate_set(sequence_set, tmp_path / "pred")
    assert report.units[0].J.tolist() == pytest.approx([1.0] * FRAMES)
    (root / "GroundTruth" / "bmx" / "2" / "00003.png").unlink()
    with pytest.raises(InputError, match="disagree on frames"):
        benchmark_sequences("segtrack-v2", root, sequences=["bmx"])


def test_fbms_scores_annotated_frames_only(davis_root, tmp_path):
    root = tmp_path / "FBMS"
    _copy_frames(davis_root / "JPEGImages" / "480p" / SEQUENCE, root / "JPEGImages" / "cars1", count=12)
    annotated = _copy_frames(davis_root / "Annotations" / "480p" / SEQUENCE, root / "Annotations" / "cars1", 4, 3)
    sequence_set = benchmark_sequences("fbms-59", root, sequences=["cars1"])
    assert sequence_set.sequences[0].frames == ("00000", "00003", "00006", "00009")
    assert [p.stem for p in sequence_set.sequences[0].images] == ["00000", "00003", "00006", "00009"]
    _predict_gt(davis_root / "Annotations" / "480p" / SEQUENCE, tmp_path / "pred" / "cars1")  # dense predictions
    report = evaluate_set(sequence_set, tmp_path / "pred")
    assert report.units[0].frames == [p.stem for p in annotated]
    assert report.to_dict()["dataset"]["mean_over_sequences"]["J-Mean"] == pytest.approx(1.0)
    with pytest.raises(InputError, match="lacks 29 of the 30"):
        benchmark_sequences("fbms-59", root)


def test_sequence_names_from_text_or_file(tmp_path):
    assert read_sequence_names("a, b,c") == (["a", "b", "c"], "custom")
    listing = tmp_path / "moving_val_sequences.txt"
    listing.write_text("camel\nlibby\n")
    assert read_sequence_names(f"@{listing}") == (["camel", "libby"], "file:moving_val_sequences.txt")
    with pytest.raises(InputError, match="cannot read the sequence list"):
        read_sequence_names(f"@{tmp_path / 'absent.txt'}")


def _palette_png(labels: np.ndarray, path: Path) -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0, 0, 64] * 253)  # ids 1, 2 and dark ids
    image.save(path)


def test_palette_masks_are_read_as_object_ids_and_matched(davis_layout, tmp_path):
    """Real GT split into two palette objects; predicted ids swapped: both objects match exactly."""
    gt_root, pred_root = tmp_path / "gt", tmp_path / "pred"
    for root in (gt_root, pred_root):
        (root / SEQUENCE).mkdir(parents=True)
    for path in sorted((davis_layout / "Annotations" / "480p" / SEQUENCE).iterdir()):
        foreground = np.asarray(Image.open(path)) > 0
        left = np.zeros_like(foreground)
        left[:, :500] = True
        _palette_png(np.select([foreground & left, foreground], [1, 2], 0), gt_root / SEQUENCE / path.name)
        _palette_png(np.select([foreground & left, foreground], [2, 1], 0), pred_root / SEQUENCE / path.name)
    from geomotion_core.eval.masks import read_labels

    labels = read_labels(gt_root / SEQUENCE / "00000.png")
    assert set(np.unique(labels)) == {0, 1, 2}
    report = evaluate_folders(gt_root, pred_root, "davis2017-multi")
    assert [unit.name for unit in report.units] == [f"{SEQUENCE}_1", f"{SEQUENCE}_2"]
    assert all(np.allclose(unit.J, 1.0) and np.allclose(unit.F, 1.0) for unit in report.units)
    binary = evaluate_folders(gt_root, pred_root, "davis")  # ids merged: also a perfect match
    assert binary.units[0].J == pytest.approx(np.ones(FRAMES))


def test_davis2016_moving_lists_name_the_moving_sequences_only(davis_root):
    from geomotion_core.eval.datasets import BENCHMARKS

    lists = BENCHMARKS["davis2016-m"].lists
    assert len(lists["moving22"]) == 22 and len(lists["moving16"]) == 16
    assert set(lists["moving16"]) <= set(lists["geomotion"]) and "camel" not in lists["moving22"]
    chosen = benchmark_sequences("davis2016-m", davis_root, sequences=["camel", "libby"])
    assert [s.name for s in chosen.sequences] == ["camel", "libby"]
    with pytest.raises(InputError, match="bike-packing"):
        benchmark_sequences("davis2016-m", davis_root, sequence_list="moving22")
