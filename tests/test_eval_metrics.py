"""Per-frame J and F against the official DAVIS definitions (EVAL_PROTOCOL.md sections 1 and 7)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from geomotion_core.eval import batch_scores, frame_scores
from geomotion_core.eval.metrics import boundary_radius, disk, seg2bmap

DISK_SHIFTS = (0, 4, 8, 16, 32, 64)
# Official per-frame values of the synthetic disk sequence (EVAL_PROTOCOL.md section 7).
DISK_J = (1.0, 0.918756, 0.844156, 0.711103, 0.497711, 0.215374)
DISK_F = (1.0, 1.0, 1.0, 0.347107, 0.177686, 0.107438)


def disk_mask(dx: int = 0, height: int = 480, width: int = 854) -> np.ndarray:
    """A filled radius-60 disk centred at (427 + dx, 240), drawn like the reference."""
    mask = np.zeros((height, width), np.uint8)
    cv2.circle(mask, (427 + dx, 240), 60, 255, -1)
    return mask > 0


@pytest.mark.parametrize(
    ("height", "width", "radius"),
    [(480, 854, 8), (288, 512, 5), (518, 518, 6), (480, 640, 7), (360, 640, 6), (240, 320, 4), (1080, 1920, 18)],
)
def test_boundary_radius_is_ceil_of_diagonal_fraction(height, width, radius):
    assert boundary_radius(height, width) == radius


def test_disk_is_the_euclidean_disk_not_opencv_ellipse():
    assert disk(8).sum() == 197
    ellipse = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (17, 17))
    assert ellipse.sum() != disk(8).sum()


def test_synthetic_disk_sequence_matches_official_values():
    gt = np.stack([disk_mask()] * len(DISK_SHIFTS))
    pred = np.stack([disk_mask(dx) for dx in DISK_SHIFTS])
    j_values, f_values = batch_scores(pred, gt)
    np.testing.assert_allclose(j_values, DISK_J, atol=5e-7)
    np.testing.assert_allclose(f_values, DISK_F, atol=5e-7)


def test_batched_scores_equal_frame_by_frame_scores():
    gt = np.stack([disk_mask()] * len(DISK_SHIFTS))
    pred = np.stack([disk_mask(dx) for dx in DISK_SHIFTS])
    j_values, f_values = batch_scores(pred, gt)
    singles = np.array([frame_scores(p, g) for p, g in zip(pred, gt)])
    np.testing.assert_array_equal(singles[:, 0], j_values)
    np.testing.assert_array_equal(singles[:, 1], f_values)


def test_scores_are_symmetric():
    first, second = disk_mask(16), disk_mask(-5)
    assert frame_scores(first, second) == frame_scores(second, first)


def _half(height: int = 48, width: int = 64) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[:, : width // 2] = True
    return mask


EMPTY = np.zeros((48, 64), bool)
FULL = np.ones((48, 64), bool)
OBJECT = np.zeros((48, 64), bool)
OBJECT[10:30, 20:40] = True


@pytest.mark.parametrize(
    ("gt", "pred", "expected"),
    [
        (EMPTY, EMPTY, (1.0, 1.0)),  # both empty
        (EMPTY, OBJECT, (0.0, 0.0)),  # false positive: P = 0, R = 1
        (OBJECT, EMPTY, (0.0, 0.0)),  # miss: P = 1, R = 0
        (FULL, FULL, (1.0, 1.0)),  # full frames have no boundary at all
        (FULL, _half(), (0.5, 0.0)),  # GT without boundary against a half: P = 0, R = 1
    ],
    ids=["both-empty", "false-positive", "miss", "full-frame", "full-vs-half"],
)
def test_official_edge_cases(gt, pred, expected):
    assert frame_scores(pred, gt) == pytest.approx(expected)


def test_one_pixel_line_shifted_by_one_pixel_has_no_overlap_but_full_contour_score():
    gt, pred = np.zeros((60, 80), bool), np.zeros((60, 80), bool)
    gt[20:40, 30] = True
    pred[20:40, 31] = True
    assert frame_scores(pred, gt) == pytest.approx((0.0, 1.0))


def test_seg2bmap_marks_outside_top_left_and_inside_bottom_right():
    mask = np.zeros((10, 10), bool)
    mask[3:6, 4:8] = True
    boundary = seg2bmap(mask[None])[0]
    rows, cols = np.nonzero(boundary)
    assert rows.min() == 2 and rows.max() == 5  # background row above, last object row
    assert cols.min() == 3 and cols.max() == 7  # background column left, last object column
    assert not boundary[4, 5]  # interior pixel


def test_no_boundary_along_the_image_border():
    touching = np.zeros((40, 50), bool)
    touching[:, :20] = True  # touches the top, bottom and left borders
    boundary = seg2bmap(touching[None])[0]
    assert boundary[:, 19].all()  # the object's last column, on every row
    assert boundary.sum() == 40  # and nothing along the borders
    assert not seg2bmap(np.ones((1, 40, 50), bool)).any()


def test_border_touching_object_scored_only_on_its_inner_edge():
    gt = np.zeros((120, 160), bool)
    gt[:, :60] = True  # an object touching three borders
    within, beyond = np.zeros_like(gt), np.zeros_like(gt)
    within[:, :61] = True  # inner edge 1 px away
    beyond[:, :64] = True  # inner edge 4 px away
    assert boundary_radius(*gt.shape) == 2
    assert frame_scores(within, gt)[1] == pytest.approx(1.0)
    assert frame_scores(beyond, gt)[1] == pytest.approx(0.0)


def test_void_pixels_are_ignored_in_both_metrics():
    gt, pred = OBJECT.copy(), OBJECT.copy()
    pred[30:35, 20:40] = True  # extra prediction entirely inside the void band
    void = np.zeros_like(gt)
    void[30:36, :] = True
    j_with, f_with = batch_scores(pred, gt, void[None])
    assert j_with[0] == pytest.approx(1.0)
    assert frame_scores(pred, gt)[0] < 1.0


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="differ in shape"):
        batch_scores(np.zeros((2, 10, 10), bool), np.zeros((2, 10, 12), bool))
