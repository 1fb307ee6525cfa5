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
    bag = tmp_path / "recording"
    write_sequence_bag(frames[:5], bag, masks[:5])
    database = next(bag.glob("*.db3"))
    database.write_bytes(database.read_bytes()[: database.stat().st_size // 3])
    # the reader's own wording for a bag it cannot open or read to the end
    with pytest.raises(InputError, match=r"cannot open bag|is truncated or corrupt|cannot be decoded") as error:
        evaluate_bag(_options(bag, offline=True))
    assert str(bag) in str(error.value)
    result = _run_cli("eval", str(bag), "--offline", "--backend", "geometric")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(bag) in result.stderr


@pytest.mark.slow  # two CLI processes: make a bag, then replay it through the node
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


# -- issue 18: termination by counting, bad messages skipped alike, bag make refusals ---------------

def _small_frames(davis_root: Path, folder: Path, count: int, size: tuple[int, int]) -> tuple[list[Path], list[Path]]:
    """The first ``count`` car-shadow frames and masks resized to ``size`` (width, height), as PNG files."""
    frames = sorted((davis_root / "JPEGImages" / "480p" / SEQUENCE).glob("*.jpg"))[:count]
    masks = sorted((davis_root / "Annotations" / "480p" / SEQUENCE).glob("*.png"))[:count]
    written: tuple[list[Path], list[Path]] = ([], [])
    for kind, paths, out in (("frames", frames, written[0]), ("masks", masks, written[1])):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for path in paths:
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            image = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
            out.append(folder / kind / f"{path.stem}.png")
            cv2.imwrite(str(out[-1]), image)
    return written


HANG_BOUND_S = 120  # the replay used to stall 600 s before giving up; only a hang trips this


@pytest.mark.parametrize("count,size", [(6, (213, 120)), (10, (213, 120)), (12, (64, 48))],
                         ids=["6-frames", "10-frames", "64x48"])
def test_dds_replay_ends_by_counting_with_every_frame_processed(davis_root, tmp_path, ros_domain, count, size):
    """Frames left after the last full window stalled the replay 600 s (item 3); frames still in
    transit were not counted, and a 64x48 bag got 0/12 processed with "0 dropped" (item 4)."""
    frames, masks = _small_frames(davis_root, tmp_path, count, size)
    write_sequence_bag(frames, tmp_path / "bag", masks, fps=10.0)
    options = BagEvalOptions(bag=tmp_path / "bag", backend=BackendOptions(backend="geometric", device="cpu"))
    report = evaluate_bag(options)  # default window 8, stride 4: 6 frames never fill a window
    document = report.to_dict()
    assert (document["frames"], document["processed"], document["dropped"]) == (count, count, 0)
    assert document["missing_masks"] == 0
    assert report.replay.wall_s < HANG_BOUND_S
    assert max(o.latency_s for o in report.replay.outcomes) < report.replay.wall_s


def _bag_with_a_bad_message(frames: list[Path], masks: list[Path], output: Path, bad: int) -> None:
    """A bag like `bag make` writes, whose image ``bad`` has half its pixel data."""
    from rosbags.rosbag2 import Writer

    from geomotion_ros.bag.make import DEFAULT_START_NS, image_message, stamp_header
    from geomotion_ros.bag.schema import IMAGE_TYPE, typestore

    store = typestore()
    with Writer(output, version=9) as writer:
        images = writer.add_connection("/image", IMAGE_TYPE, typestore=store)
        truth = writer.add_connection("/ground_truth/motion_mask", IMAGE_TYPE, typestore=store)
        for index, (frame, mask) in enumerate(zip(frames, masks)):
            stamp = DEFAULT_START_NS + index * 100_000_000
            header = stamp_header(stamp, "camera")
            message = image_message(cv2.imread(str(frame)), "bgr8", header)
            if index == bad:
                message.data = message.data[: len(message.data) // 2]
            writer.write(images, stamp, store.serialize_cdr(message, IMAGE_TYPE))
            gt = (cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE) > 0).astype(np.uint8) * 255
            writer.write(truth, stamp, store.serialize_cdr(image_message(gt, "mono8", header), IMAGE_TYPE))


def test_offline_and_dds_skip_the_same_bad_message(davis_root, tmp_path, ros_domain):
    """`bag eval --offline` aborted the whole replay on a message the node skips (item 12)."""
    frames, masks = _small_frames(davis_root, tmp_path, 8, (213, 120))
    _bag_with_a_bad_message(frames, masks, tmp_path / "bag", bad=3)
    reports = {}
    for offline in (True, False):
        reports[offline] = evaluate_bag(BagEvalOptions(bag=tmp_path / "bag", offline=offline, window=4, stride=1,
                                                       backend=BackendOptions(backend="geometric", device="cpu")))
    stamps = {mode: sorted(o.stamp_ns for o in report.replay.outcomes) for mode, report in reports.items()}
    assert stamps[True] == stamps[False] and len(stamps[True]) == 7
    for report in reports.values():
        document = report.to_dict()
        assert (document["frames"], document["processed"], document["dropped"]) == (8, 7, 1)
        assert document["missing_masks"] == 1


@pytest.mark.parametrize("fps", [float("nan"), float("inf"), 1e-9, 0.0, -1.0, 1e9])
def test_bag_make_refuses_bad_rates_and_leaves_nothing(davis_root, tmp_path, fps):
    """nan and 1e-9 gave tracebacks and a half-written bag that blocked the rerun (item 11)."""
    frames, masks = _sequence_files(davis_root)
    with pytest.raises(InputError, match="fps must be in"):
        write_sequence_bag(frames[:3], tmp_path / "bag", masks[:3], fps=fps)
    assert list(tmp_path.iterdir()) == []
    assert write_sequence_bag(frames[:3], tmp_path / "bag", masks[:3], fps=10.0).frames == 3


def test_bag_make_failure_midway_leaves_no_bag(davis_root, tmp_path):
    frames, masks = _sequence_files(davis_root)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"")
    with pytest.raises(InputError, match="cannot read image"):
        write_sequence_bag([frames[0], broken], tmp_path / "bag", fps=10.0)
    assert [path.name for path in tmp_path.iterdir()] == ["broken.jpg"]


def test_an_unusable_bag_creates_no_output_folder(tmp_path):
    (tmp_path / "not_a_bag").mkdir()
    with pytest.raises(InputError, match="cannot open bag"):
        evaluate_bag(_options(tmp_path / "not_a_bag", offline=True, output=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes,match", [({"rate": -1.0}, "rate must be"), ({"rate": float("nan")}, "rate must be"),
                                           ({"protocol": "nope"}, "protocol must be one of")])
def test_bag_eval_refuses_bad_settings_before_replaying(sequence_bag, tmp_path, changes, match):
    from geomotion_core.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        evaluate_bag(_options(sequence_bag, output=tmp_path / "out", **changes))
    assert not (tmp_path / "out").exists()


def test_bag_make_on_a_full_disk_is_one_clear_error_and_leaves_nothing(davis_root, tmp_path, monkeypatch):
    import sqlite3

    from rosbags.rosbag2 import Writer

    from geomotion_core.errors import GeoMotionError

    frames, masks = _sequence_files(davis_root)
    real_write, calls = Writer.write, []

    def fill_disk(self, *args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise sqlite3.OperationalError("database or disk is full")
        return real_write(self, *args, **kwargs)

    monkeypatch.setattr(Writer, "write", fill_disk)
    with pytest.raises(GeoMotionError, match="cannot write bag .*disk is full"):
        write_sequence_bag(frames[:4], tmp_path / "bag", masks[:4], fps=10.0)
    assert list(tmp_path.iterdir()) == []


def test_a_failed_replay_leaves_its_output_bag_marked_partial(sequence_bag, tmp_path, monkeypatch):
    """Only a complete recording sits at OUT/outputs; a failed one is kept as OUT/outputs.partial."""
    import geomotion_ros.bag.offline as offline

    from geomotion_ros.bag.evaluate import OUTPUT_BAG_NAME

    real_segmenter, pushed = offline.StreamingSegmenter, []

    class FailingSegmenter(real_segmenter):
        def push(self, frame, stamp, intrinsics=None):
            pushed.append(stamp)
            if len(pushed) == 6:
                raise RuntimeError("the backend broke")
            return super().push(frame, stamp, intrinsics)

    monkeypatch.setattr(offline, "StreamingSegmenter", FailingSegmenter)
    with pytest.raises(RuntimeError, match="backend broke"):
        evaluate_bag(_options(sequence_bag, offline=True, output=tmp_path / "out"))
    assert not (tmp_path / "out" / OUTPUT_BAG_NAME).exists()
    with BagReader(tmp_path / "out" / f"{OUTPUT_BAG_NAME}.partial") as recorded:
        assert 0 < len(recorded.masks_by_stamp(recorded.optional_connection("/motion_mask/image"))) < FRAMES
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [f"{OUTPUT_BAG_NAME}.partial"]
