"""The real DAVIS sequences with the shifted-GT prediction give EVAL_PROTOCOL.md's reported numbers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geomotion_core.eval import evaluate_folders, evaluate_sequences
from geomotion_core.eval.masks import read_labels

SHIFT = 6  # px to the right; frame 0 is predicted empty
# protocol, aggregate -> (frames, J-Mean, J-Recall, F-Mean, F-Recall, J&F-Mean), EVAL_PROTOCOL.md section 7
REPORTED = {
    ("davis", "mean_over_sequences"): (229, 0.814001, 0.975768, 0.980870, 0.980870, 0.897436),
    ("davis", "pooled_over_frames"): (229, 0.812106, 0.978166, 0.982533, 0.982533, 0.897319),
    ("davis2016", "mean_over_sequences"): (221, 0.830755, 0.994681, 1.0, 1.0, 0.915377),
    ("easi3r", "pooled_over_frames"): (229, 0.812056, 0.978166, 0.982504, 0.982533, 0.897280),
}
PER_SEQUENCE_J = {"blackswan": 0.861994, "camel": 0.819026, "car-shadow": 0.890441, "libby": 0.684543}
KEYS = ("J-Mean", "J-Recall", "F-Mean", "F-Recall", "J&F-Mean")


def shifted(gt: np.ndarray) -> np.ndarray:
    """The reference prediction: GT shifted right by 6 px (zero fill), frame 0 empty."""
    pred = np.zeros_like(gt)
    pred[1:, :, SHIFT:] = gt[1:, :, :-SHIFT]
    return pred


@pytest.fixture(scope="module")
def real_pairs(davis_root: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    annotations = davis_root / "Annotations" / "480p"
    pairs = {}
    for folder in sorted(p for p in annotations.iterdir() if p.is_dir()):
        gt = np.stack([read_labels(path) for path in sorted(folder.glob("*.png"))])
        pairs[folder.name] = (shifted(gt), gt)
    return pairs


@pytest.fixture(scope="module")
def real_reports(real_pairs) -> dict[str, dict]:
    """Each protocol's report, computed once for all the checks below."""
    protocols = ("davis", "davis2016", "easi3r")
    return {protocol: evaluate_sequences(real_pairs, protocol).to_dict() for protocol in protocols}


@pytest.mark.slow  # scores 229 real frames under three protocols (a few seconds on 2 cores)
@pytest.mark.parametrize(("protocol", "aggregate"), sorted(REPORTED))
def test_shifted_gt_reproduces_reported_numbers(real_reports, protocol, aggregate):
    data = real_reports[protocol]
    frames, *expected = REPORTED[protocol, aggregate]
    assert data["frames"] == frames
    assert [data["dataset"][aggregate][key] for key in KEYS] == pytest.approx(expected, abs=5e-7)


@pytest.mark.slow
def test_shifted_gt_per_sequence_j_means(real_reports):
    per_sequence = real_reports["davis"]["per_sequence"]
    assert {name: entry["J-Mean"] for name, entry in per_sequence.items()} == pytest.approx(PER_SEQUENCE_J, abs=5e-7)


def test_folders_on_disk_score_like_memory(real_pairs, davis_root, tmp_path):
    from PIL import Image

    pred_root = tmp_path / "pred"
    annotations = davis_root / "Annotations" / "480p"
    for name in ("car-shadow",):
        pred, _ = real_pairs[name]
        (pred_root / name).mkdir(parents=True)
        for path, mask in zip(sorted((annotations / name).glob("*.png")), pred):
            Image.fromarray(mask).save(pred_root / name / path.name)
    report = evaluate_folders(annotations, pred_root, "davis", sequences=["car-shadow"])
    j_mean = report.to_dict()["per_sequence"]["car-shadow"]["J-Mean"]
    assert j_mean == pytest.approx(PER_SEQUENCE_J["car-shadow"], abs=5e-7)
    assert report.units[0].frames[0] == "00000" and len(report.units[0].frames) == 40
