"""Statistics and protocols against EVAL_PROTOCOL.md sections 2, 4 and 7 (synthetic disk case)."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from PIL import Image

from geomotion_core.errors import ConfigError, InputError
from geomotion_core.eval import EvalReport, Statistics, binarize_probability, evaluate_sequences, score_sequence
from geomotion_core.eval.aggregate import decay

SHIFTS = (0, 4, 8, 16, 32, 64)
# Official aggregates of the disk sequence: J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay, J&F.
OFFICIAL = {
    "davis": (0.697850, 0.666667, 0.602835, 0.605372, 0.5, 0.857438, 0.651611),
    "davis2016": (0.742931, 0.75, 0.277049, 0.631198, 0.5, 0.737603, 0.687065),
}
EASI3R_POOLED = (0.697429, 0.666667, 0.617654, 0.5, 0.657541)  # J-Mean, J-Recall, F-Mean, F-Recall, J&F
EASI3R_J = (1, 0.916765, 0.845419, 0.710133, 0.497508, 0.214746)
EASI3R_F = (1, 1, 1, 0.387492, 0.201997, 0.116438)
METRICS = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "J&F-Mean")


def disk_sequence() -> tuple[np.ndarray, np.ndarray]:
    """The reference's synthetic sequence: 0/255 'L' disks, prediction shifted right."""
    gt = np.zeros((len(SHIFTS), 480, 854), np.uint8)
    pred = np.zeros_like(gt)
    for frame, dx in enumerate(SHIFTS):
        cv2.circle(gt[frame], (427, 240), 60, 255, -1)
        cv2.circle(pred[frame], (427 + dx, 240), 60, 255, -1)
    return pred, gt


@pytest.fixture(scope="module")
def disk_pair():
    return disk_sequence()


@pytest.mark.parametrize("protocol", sorted(OFFICIAL))
def test_disk_aggregates_match_the_official_toolkit(disk_pair, protocol):
    report = evaluate_sequences({"disk": disk_pair}, protocol)
    got = report.to_dict()["per_sequence"]["disk"]
    assert [got[name] for name in METRICS] == pytest.approx(OFFICIAL[protocol], abs=5e-7)
    pooled = report.to_dict()["dataset"]["pooled_over_frames"]  # one sequence: pooled = official
    assert pooled["J-Mean"] == pytest.approx(OFFICIAL[protocol][0], abs=5e-7)


def test_disk_easi3r_crop_matches_easi3r_values(disk_pair):
    report = evaluate_sequences({"disk": disk_pair}, "easi3r")
    (unit,) = report.units
    np.testing.assert_allclose(unit.J, EASI3R_J, atol=5e-7)
    np.testing.assert_allclose(unit.F, EASI3R_F, atol=5e-7)
    pooled = report.to_dict()["dataset"]["pooled_over_frames"]
    assert [pooled[n] for n in ("J-Mean", "J-Recall", "F-Mean", "F-Recall", "J&F-Mean")] == pytest.approx(
        EASI3R_POOLED, abs=5e-7
    )


def test_easi3r_accepts_predictions_already_cropped(disk_pair):
    pred, gt = disk_pair
    from geomotion_core.eval.masks import easi3r_crop

    cropped = np.stack([easi3r_crop(mask > 0) for mask in pred])
    assert cropped.shape[1:] == (288, 512)
    (unit,) = score_sequence("easi3r", "disk", cropped, gt)
    np.testing.assert_allclose(unit.J, EASI3R_J, atol=5e-7)
    with pytest.raises(InputError, match="Easi3R crop"):
        score_sequence("easi3r", "disk", pred[:, :300, :300], gt)


def test_davis2016_accepts_predictions_without_first_and_last_frame(disk_pair):
    pred, gt = disk_pair
    full = score_sequence("davis2016", "disk", pred, gt)[0]
    inner = score_sequence("davis2016", "disk", pred[1:-1], gt)[0]
    assert full.frames == inner.frames == ["00001", "00002", "00003", "00004"]
    np.testing.assert_array_equal(full.J, inner.J)
    with pytest.raises(InputError, match="5 predicted frames for 6 GT frames"):
        score_sequence("davis2016", "disk", pred[1:], gt)


def test_davis2016_sequence_too_short_is_reported_not_crashed(disk_pair):
    pred, gt = disk_pair
    report = evaluate_sequences({"short": (pred[:2], gt[:2]), "disk": (pred, gt)}, "davis2016")
    data = report.to_dict()
    assert data["per_sequence"]["short"]["J-Mean"] is None
    assert data["dataset"]["mean_over_sequences"]["J-Mean"] == pytest.approx(OFFICIAL["davis2016"][0], abs=5e-7)
    assert data["frames"] == 4


def test_per_sequence_mean_and_frame_pooling_differ_as_documented():
    """Two frames at J = 1 and eight at J = 0: 0.5 per sequence, 0.2 pooled (section 3)."""
    full = np.zeros((10, 20, 20), np.uint8)
    full[:, 5:15, 5:15] = 255
    empty = np.zeros_like(full)
    report = evaluate_sequences({"a": (full[:2], full[:2]), "b": (empty[:8], full[:8])})
    assert report.aggregates["mean_over_sequences"].J.mean == pytest.approx(0.5)
    assert report.aggregates["pooled_over_frames"].J.mean == pytest.approx(0.2)
    assert report.aggregates["pooled_over_frames"].J.recall == pytest.approx(0.2)


def test_recall_is_strict_and_counts_nan_as_miss():
    assert Statistics.of(np.array([0.5, 0.5000001, math.nan, 1.0])).recall == pytest.approx(0.5)
    assert Statistics.of(np.array([0.5, 0.5000001, math.nan, 1.0])).mean == pytest.approx(2.0000001 / 3)


def test_decay_bins_share_edges_and_stay_correct_past_256_frames():
    values = np.arange(7, dtype=float)  # ids = [0, 2, 3, 5, 6] (2.5 rounds up): bins [0..2], [5..6]
    assert decay(values) == pytest.approx(1.0 - 5.5)
    long = np.linspace(1.0, 0.0, 300)  # official uint8 ids would wrap here
    ids = np.round(np.linspace(1, 300, 5) + 1e-10).astype(int) - 1
    expected = long[ids[0] : ids[1] + 1].mean() - long[ids[3] : ids[4] + 1].mean()
    assert decay(long) == pytest.approx(expected)
    assert expected > 0.7


def _objects(ids_per_frame: list[dict[int, tuple[slice, slice]]], shape=(60, 80)) -> np.ndarray:
    labels = np.zeros((len(ids_per_frame), *shape), np.uint8)
    for frame, objects in enumerate(ids_per_frame):
        for object_id, region in objects.items():
            labels[frame][region] = object_id
    return labels


LEFT = (slice(10, 30), slice(5, 25))
RIGHT = (slice(20, 45), slice(45, 70))
SMALL = (slice(50, 55), slice(30, 35))


def test_multi_object_hungarian_matching_pairs_swapped_ids():
    gt = _objects([{1: LEFT, 2: RIGHT}] * 3)
    pred = _objects([{2: LEFT, 1: RIGHT, 3: SMALL}] * 3)  # ids swapped, one extra proposal
    report = evaluate_sequences({"seq": (pred, gt)}, "davis2017-multi")
    assert [unit.name for unit in report.units] == ["seq_1", "seq_2"]
    assert all(unit.J.tolist() == [1.0, 1.0, 1.0] for unit in report.units)  # extra proposal not penalised
    data = report.to_dict()
    assert set(data["per_object"]) == {"seq_1", "seq_2"}
    assert data["dataset"]["mean_over_objects"]["J&F-Mean"] == pytest.approx(1.0)


def test_multi_object_counts_objects_of_the_first_frame_and_ignores_void():
    gt = _objects([{1: LEFT}, {1: LEFT, 2: RIGHT}])  # object 2 appears later: ignored
    gt[:, 0:5, :] = 255  # void band
    pred = _objects([{1: LEFT}, {1: LEFT}])
    pred[:, 0:5, :] = 1  # predicted pixels inside the void do not count
    (unit,) = score_sequence("davis2017-multi", "seq", pred, gt)
    assert unit.J.tolist() == [1.0, 1.0]
    assert unit.F.tolist() == [1.0, 1.0]


def test_multi_object_sequence_without_object_in_first_frame_is_reported_unscored():
    gt = _objects([{}, {1: LEFT}])  # the DAVIS-2017 toolkit takes the object count from frame 0
    data = evaluate_sequences({"late": (gt, gt), "seq": (gt[::-1], gt[::-1])}, "davis2017-multi").to_dict()
    assert data["unscored_sequences"] == ["late"]
    assert list(data["per_object"]) == ["seq_1"] and data["sequences"] == 2


def test_multi_object_pads_missing_proposals_with_empty_masks():
    gt = _objects([{1: LEFT, 2: RIGHT}] * 2)
    pred = _objects([{1: RIGHT}] * 2)
    units = score_sequence("davis2017-multi", "seq", pred, gt)
    assert sorted(unit.J.mean() for unit in units) == [0.0, 1.0]


def test_multi_object_reads_a_binary_mask_as_one_proposal_and_limits_ids():
    gt = _objects([{1: LEFT}] * 2)
    binary = np.where(gt > 0, 255, 0).astype(np.uint8)
    (unit,) = score_sequence("davis2017-multi", "seq", binary, gt)
    assert unit.J.tolist() == [1.0, 1.0]
    many = np.arange(60 * 80).reshape(1, 60, 80) % 30
    with pytest.raises(InputError, match="more than 20"):
        score_sequence("davis2017-multi", "seq", np.repeat(many, 2, 0).astype(np.uint8), gt)


def test_multi_object_with_single_object_reduces_to_binary_davis(disk_pair):
    pred, gt = disk_pair
    ids_gt, ids_pred = (gt > 0).astype(np.uint8), (pred > 0).astype(np.uint8)
    multi = evaluate_sequences({"disk": (ids_pred, ids_gt)}, "davis2017-multi").to_dict()
    binary = evaluate_sequences({"disk": (pred, gt)}, "davis").to_dict()
    assert multi["dataset"]["mean_over_objects"] == pytest.approx(binary["dataset"]["mean_over_sequences"])


def test_prediction_threshold_applies_to_grey_level_masks(disk_pair):
    pred, gt = disk_pair
    soft = np.where(pred > 0, 26, 20).astype(np.uint8)  # GeoMotion's saved soft masks
    assert score_sequence("davis", "disk", soft, gt, pred_threshold=25)[0].J == pytest.approx(
        score_sequence("davis", "disk", pred, gt)[0].J
    )


def test_count_and_size_mismatches_are_errors(disk_pair):
    pred, gt = disk_pair
    with pytest.raises(InputError, match="5 predicted frames for 6 GT frames"):
        score_sequence("davis", "disk", pred[:5], gt)
    with pytest.raises(InputError, match="differs from GT size"):
        score_sequence("davis", "disk", pred[:, :240], gt)
    with pytest.raises(ConfigError, match="unknown protocol"):
        score_sequence("davis2019", "disk", pred, gt)


def test_report_dict_has_the_issue_keys(disk_pair):
    report = evaluate_sequences({"disk": disk_pair})
    assert isinstance(report, EvalReport)
    data = report.to_dict(per_frame=True)
    entry = data["per_sequence"]["disk"]
    assert set(METRICS) <= set(entry)
    assert entry["frames"] == [f"{i:05d}" for i in range(6)] and len(entry["J"]) == len(entry["F"]) == 6
    assert set(data["dataset"]) == {"mean_over_sequences", "pooled_over_frames"}
    assert "J-Decay" not in data["dataset"]["pooled_over_frames"]


def test_binarize_probability_matches_pillow_bilinear_then_threshold():
    rng = np.random.default_rng(0)
    blobs = cv2.GaussianBlur(rng.random((3, 130, 130)).astype(np.float32).transpose(1, 2, 0), (0, 0), 6)
    probability = np.clip((blobs.transpose(2, 0, 1) - 0.45) * 8, 0, 1)
    masks = binarize_probability(probability, (480, 854))
    for frame, mask in zip(probability, masks):
        levels = Image.fromarray(np.rint(frame * 255).astype(np.uint8)).resize((854, 480), Image.Resampling.BILINEAR)
        reference = np.asarray(levels) / 255.0 > 0.1
        assert mask.shape == reference.shape
        assert np.mean(mask != reference) < 1e-3
