"""Rosbag replay evaluation on a real DAVIS sequence converted to a bag inside the test."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("rclpy", reason="bag replay needs the ROS 2 client library (pip install '.[ros]')")

from geomotion_core.backend import BackendOptions  # noqa: E402
from geomotion_core.errors import InputError  # noqa: E402
from geomotion_core.eval import evaluate_folders  # noqa: E402
from geomotion_ros.bag.evaluate import BagEvalOptions, evaluate_bag  # noqa: E402
from geomotion_ros.bag.make import write_sequence_bag  # noqa: E402
from geomotion_ros.bag.read import BagReader  # noqa: E402
from geomotion_ros.bag.schema import BagTopics  # noqa: E402

SEQUENCE = "car-shadow"
FRAMES = 10
REPO = Path(__file__).resolve().parents[1]


def _sequence_files(davis_root: Path) -> tuple[list[Path], list[Path]]:
    frames = sorted((davis_root / "JPEGImages" / "480p" / SEQUENCE).glob("*.jpg"))[:FRAMES]
    masks = sorted((davis_root / "Annotations" / "480p" / SEQUENCE).glob("*.png"))[:FRAMES]
    return frames, masks


@pytest.fixture(scope="module")
def sequence_bag(davis_root: Path, tmp_path_factory) -> Path:
    frames, masks = _sequence_files(davis_root)
    bag = tmp_path_factory.mktemp("bags") / SEQUENCE
    summary = write_sequence_bag(frames, bag, masks, fps=10.0)
    assert (summary.frames, summary.ground_truth) == (FRAMES, FRAMES)
    return bag


def _options(bag: Path, **changes) -> BagEvalOptions:
    backend = BackendOptions(backend="geometric", device="cpu")
    return BagEvalOptions(bag=bag, window=4, stride=1, backend=backend, **changes)


def _write_masks_like_gt(report, davis_root: Path, folder: Path) -> tuple[Path, Path]:
    """The replay's masks and the matching GT files in `<seq>/<frame>.png` folders."""
    pred, gt = folder / "pred" / SEQUENCE, folder / "gt" / SEQUENCE
    pred.mkdir(parents=True)
    gt.mkdir(parents=True)
    masks = {o.stamp_ns: o.mask for o in report.replay.outcomes}
    _, gt_files = _sequence_files(davis_root)
    for stamp, gt_file in zip(report.frame_stamps, gt_files):
        cv2.imwrite(str(pred / gt_file.name), masks[stamp].astype(np.uint8) * 255)
        shutil.copy2(gt_file, gt / gt_file.name)
    return folder / "gt", folder / "pred"


def test_bag_round_trip_keeps_frames_masks_and_stamps(sequence_bag: Path, davis_root: Path):
    frames, masks = _sequence_files(davis_root)
    with BagReader(sequence_bag) as reader:
        assert reader.topics()["/image"] == "sensor_msgs/msg/Image"
        images = list(reader.images(reader.image_connection(exclude=("/ground_truth/motion_mask",))))
        gt = reader.masks_by_stamp(reader.optional_connection("/ground_truth/motion_mask"))
    assert [image.stamp_ns for image in images] == sorted(gt)
    assert np.array_equal(images[3].rgb(), cv2.cvtColor(cv2.imread(str(frames[3])), cv2.COLOR_BGR2RGB))
    assert np.array_equal(gt[images[3].stamp_ns], cv2.imread(str(masks[3]), cv2.IMREAD_GRAYSCALE) > 0)
    assert np.diff([image.stamp_ns for image in images]).tolist() == [100_000_000] * (FRAMES - 1)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "dds"])
def test_replay_scores_every_frame_and_matches_geomotion_eval(sequence_bag, davis_root, tmp_path, offline,
                                                              ros_domain):
    report = evaluate_bag(_options(sequence_bag, offline=offline, output=tmp_path / "out"))
    document = report.to_dict()
    assert document["frames"] == FRAMES
    assert document["processed"] == FRAMES
    assert document["dropped"] == 0 and document["missing_masks"] == 0
    assert sorted(o.stamp_ns for o in report.replay.outcomes) == report.frame_stamps
    assert all(o.latency_s > 0 for o in report.replay.outcomes)
    assert document["latency_ms"]["p50"] > 0

    gt_root, pred_root = _write_masks_like_gt(report, davis_root, tmp_path / "folders")
    reference = evaluate_folders(gt_root, pred_root).to_dict()["per_sequence"][SEQUENCE]
    scored = document["per_sequence"][SEQUENCE]
    assert scored["J-Mean"] == pytest.approx(reference["J-Mean"], abs=1e-12)
    assert scored["F-Mean"] == pytest.approx(reference["F-Mean"], abs=1e-12)
    assert scored["J-Mean"] > 0.2  # the geometric backend finds the moving car
    assert (tmp_path / "out" / "latency.png").stat().st_size > 0
    assert (tmp_path / "out" / "per_frame_j.png").stat().st_size > 0
    with BagReader(tmp_path / "out" / "outputs") as recorded:
        assert recorded.topics() == {"/motion_mask/image": "sensor_msgs/msg/Image",
                                     "/camera_pose": "geometry_msgs/msg/PoseStamped"}
        assert len(recorded.masks_by_stamp(recorded.optional_connection("/motion_mask/image"))) == FRAMES


def test_bag_without_ground_truth_reports_latency_only(davis_root, tmp_path):
    frames, _ = _sequence_files(davis_root)
    bag = tmp_path / "no_gt"
    write_sequence_bag(frames[:5], bag, fps=10.0, storage="mcap")
    report = evaluate_bag(_options(bag, offline=True))
    assert report.metrics is None
    assert report.to_dict()["processed"] == 5
    assert "no ground truth" in report.format()


def test_other_image_topic_needs_naming_when_ambiguous(davis_root, tmp_path):
    frames, masks = _sequence_files(davis_root)
    bag = tmp_path / "renamed"
    topics = BagTopics(image="/camera/color/image_raw", ground_truth="/labels/mask")
    write_sequence_bag(frames[:5], bag, masks[:5], topics=topics)
    with pytest.raises(InputError, match="image topics: /camera/color/image_raw, /labels/mask"):
        evaluate_bag(_options(bag, offline=True, gt_topic="/ground_truth/motion_mask"))
    report = evaluate_bag(_options(bag, offline=True, image_topic="/camera/color/image_raw",
                                   gt_topic="/labels/mask"))
    assert report.to_dict()["processed"] == 5 and report.metrics is not None
    with pytest.raises(InputError, match="no topic '/camera/image'"):
        evaluate_bag(_options(bag, offline=True, image_topic="/camera/image"))


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomotion_core.cli", "bag", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_truncated_bag_is_a_clear_error(davis_root, tmp_path):
    frames, masks = _sequence_files(davis_root)
    bag = tmp_path / "cut"
    write_sequence_bag(frames[:5], bag, masks[:5])
    database = next(bag.glob("*.db3"))
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])
    with pytest.raises(InputError, match="cut"):
        evaluate_bag(_options(bag, offline=True))
    result = _run_cli("eval", str(bag), "--offline", "--backend", "geometric")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(bag) in result.stderr


def test_cli_make_then_eval_writes_json(davis_root, tmp_path):
    bag = tmp_path / "cli_bag"
    made = _run_cli("make", "--benchmark", "davis2016", "--data", str(davis_root), "--seq", "libby",
                    "-o", str(bag), "--storage", "mcap")
    assert made.returncode == 0, made.stderr
    with BagReader(bag) as reader:
        assert reader.image_connection("/image").msgcount == 49
    missing = _run_cli("make", "--benchmark", "davis2016", "--data", str(davis_root), "--seq", "nope",
                       "-o", str(tmp_path / "x"))
    assert missing.returncode == 2 and "nope" in missing.stderr and "Traceback" not in missing.stderr
