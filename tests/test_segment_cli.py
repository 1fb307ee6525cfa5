"""`geomotion segment` end to end on rendered 854x480 frames with the small reference network and DIS flow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from geomotion_core.cli import main
from geomotion_core.demo.clip import DemoClipConfig, render_clip
from geomotion_core.io.pointcloud import read_ply
from geomotion_core.io.trajectory import read_tum
from geomotion_core.pipeline import SegmentOptions, segment_to_folder

FRAMES = 6
HEIGHT, WIDTH = 480, 854


@pytest.fixture(scope="module")
def frames_glob(tmp_path_factory) -> str:
    """Six JPEG frames of the demo clip (textured world, moving camera, moving objects) at DAVIS size."""
    folder = tmp_path_factory.mktemp("frames")
    for index, frame in enumerate(render_clip(DemoClipConfig(frames=FRAMES, width=WIDTH, height=HEIGHT)).frames):
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return str(folder / "0000[0-5].jpg")


@pytest.fixture(scope="module")
def small_model(small_reference) -> list[str]:
    return [*small_reference.cli_arguments(), "--flow", "dis", "--size", "56", "--device", "cpu", "--no-progress"]


def _read_pngs(folder: Path) -> tuple[list[str], np.ndarray]:
    paths = sorted(folder.glob("*.png"))
    return [p.stem for p in paths], np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in paths])


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomotion_core.cli", "segment", *args],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def segmented(tmp_path_factory, frames_glob: str, small_model: list[str]) -> Path:
    out = tmp_path_factory.mktemp("segment")
    assert main(["segment", frames_glob, "-o", str(out), "--chunk-size", "4", "--points", *small_model]) == 0
    return out


def test_masks_are_binary_at_input_size_with_frame_stems(segmented: Path) -> None:
    names, masks = _read_pngs(segmented / "masks")
    assert names == [f"{i:05d}" for i in range(FRAMES)]
    assert masks.shape == (FRAMES, HEIGHT, WIDTH) and masks.dtype == np.uint8
    assert set(np.unique(masks)) <= {0, 255}


def test_masks_are_the_thresholded_probability(segmented: Path) -> None:
    _, probability = _read_pngs(segmented / "probability")
    _, masks = _read_pngs(segmented / "masks")
    assert probability.shape == (FRAMES, HEIGHT, WIDTH) and probability.dtype == np.uint8
    assert probability.std() > 0  # a real network output, not a constant
    agreement = ((probability > 127.5) == (masks > 0)).mean()  # official threshold 0.5, 8-bit rounding
    assert agreement > 0.999


def test_trajectory_has_one_tum_line_per_frame(segmented: Path) -> None:
    rows = read_tum(segmented / "trajectory.txt")
    assert rows.shape == (FRAMES, 8)
    np.testing.assert_allclose(rows[:, 0], np.arange(FRAMES) / 30.0)
    np.testing.assert_allclose(np.linalg.norm(rows[:, 4:], axis=1), 1.0, atol=1e-6)


def test_poses_json_matches_the_trajectory(segmented: Path) -> None:
    document = json.loads((segmented / "poses.json").read_text())
    poses = np.array([record["pose"] for record in document["frames"]])
    assert [record["frame"] for record in document["frames"]] == [f"{i:05d}" for i in range(FRAMES)]
    assert poses.shape == (FRAMES, 4, 4)
    np.testing.assert_allclose(poses[:, 3], np.tile([0, 0, 0, 1], (FRAMES, 1)), atol=1e-6)
    np.testing.assert_allclose(poses[:, :3, 3], read_tum(segmented / "trajectory.txt")[:, 1:4], atol=1e-6)
    # chunks of 4: frames 0-3 share the first pass's world frame, 4-5 the second's
    assert [record["world"] for record in document["frames"]] == [0, 0, 0, 0, 1, 1]


def test_overlay_video_and_static_points(segmented: Path) -> None:
    capture = cv2.VideoCapture(str(segmented / "overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (WIDTH, HEIGHT)
    capture.release()
    points, colors = read_ply(segmented / "static_points.ply")
    _, masks = _read_pngs(segmented / "masks")
    # stride-4 samples of the static pixels of the first chunk's 4 frames
    static = (masks[:4, ::4, ::4] == 0).sum()
    assert len(points) == static and np.isfinite(points).all() and colors.dtype == np.uint8


def test_eval_protocol_and_python_api(tmp_path: Path, frames_glob: str, small_reference) -> None:
    options = SegmentOptions(backend=small_reference.backend_options(size=56), protocol="eval", chunk_size=2,
                             overlay=False, progress=False)
    summary = segment_to_folder(frames_glob, tmp_path, options)
    assert summary.frames == FRAMES and len(summary.frame_timings) == FRAMES
    assert {"read", "preprocess", "flow", "network", "write"} <= set(summary.stage_seconds)
    assert not (tmp_path / "overlay.mp4").exists()
    _, probability = _read_pngs(summary.outputs["probability"])
    _, masks = _read_pngs(summary.outputs["masks"])
    assert ((probability > 0.1 * 255) == (masks > 0)).mean() > 0.999  # eval threshold 0.1
    worlds = [record["world"] for record in json.loads(summary.outputs["poses"].read_text())["frames"]]
    assert worlds == [0, 1, 2, 3, 0, 1]  # 4 interleaved groups, one pass each (chunks of 2)


def test_video_input_names_masks_by_index(tmp_path: Path, frames_glob: str, small_model: list[str]) -> None:
    video = tmp_path / "clip.mp4"
    paths = sorted(Path(frames_glob).parent.glob("0000[0-2].jpg"))
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (WIDTH, HEIGHT))
    for path in paths:
        writer.write(cv2.imread(str(path)))
    writer.release()
    assert main(["segment", str(video), "-o", str(tmp_path / "out"), "--no-overlay", *small_model]) == 0
    names, masks = _read_pngs(tmp_path / "out" / "masks")
    assert names == ["00000", "00001", "00002"] and masks.shape == (3, HEIGHT, WIDTH)
    np.testing.assert_allclose(read_tum(tmp_path / "out" / "trajectory.txt")[:, 0], [0.0, 0.1, 0.2])


def _assert_clean_failure(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("geomotion segment: error:")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0]


def test_missing_input_fails_cleanly(tmp_path: Path) -> None:
    _assert_clean_failure(_run_cli(str(tmp_path / "absent.mp4"), "-o", str(tmp_path / "out")), "absent.mp4 does not exist")


@pytest.mark.parametrize("kind", ["garbage", "zero_frames"])
def test_unreadable_video_fails_cleanly(tmp_path: Path, kind: str) -> None:
    video = tmp_path / "clip.mp4"
    if kind == "garbage":
        video.write_bytes(np.random.default_rng(3).bytes(10_000))
    else:
        cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48)).release()
    _assert_clean_failure(_run_cli(str(video), "-o", str(tmp_path / "out")), "cannot read any frame")


@pytest.mark.parametrize("kind", ["truncated_safetensors", "garbage_pth"])
def test_corrupt_checkpoint_fails_cleanly(tmp_path: Path, frames_glob: str, small_reference, kind: str) -> None:
    if kind == "truncated_safetensors":
        checkpoint = tmp_path / "weights.safetensors"
        checkpoint.write_bytes(small_reference.weights_path.read_bytes()[:5000])
    else:
        checkpoint = tmp_path / "best_model.pth"
        checkpoint.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    result = _run_cli(frames_glob, "-o", str(tmp_path / "out"), "--model-config", str(small_reference.config_path),
                      "--checkpoint", str(checkpoint), "--flow", "dis", "--size", "56", "--device", "cpu")
    _assert_clean_failure(result, str(checkpoint))


def test_missing_checkpoint_fails_cleanly(tmp_path: Path, frames_glob: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "geomotion_core.cli", "segment", frames_glob, "-o", str(tmp_path / "out"),
         "--flow", "dis", "--device", "cpu"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "GEOMOTION_HOME": str(tmp_path / "home")},
    )
    _assert_clean_failure(result, "no GeoMotion checkpoint")
    assert "(options: --checkpoint, --backend)" in result.stderr  # the core names options, the CLI words them


def test_streaming_gives_one_continuous_world(tmp_path: Path, frames_glob: str, small_model: list[str]) -> None:
    out = tmp_path / "out"
    assert main(["segment", frames_glob, "-o", str(out), "--streaming", "--window", "4", "--no-overlay", *small_model]) == 0
    rows = read_tum(out / "trajectory.txt")
    np.testing.assert_allclose(rows[:, 0], np.arange(FRAMES) / 30.0)
    records = json.loads((out / "poses.json").read_text())["frames"]
    assert [r["frame"] for r in records] == [f"{i:05d}" for i in range(FRAMES)]
    assert {r["world"] for r in records} == {0}
    names, masks = _read_pngs(out / "masks")
    assert len(names) == FRAMES and set(np.unique(masks)) <= {0, 255}


def test_streaming_refuses_sam2(tmp_path: Path, frames_glob: str) -> None:
    result = _run_cli(frames_glob, "-o", str(tmp_path / "out"), "--streaming", "--sam2")
    _assert_clean_failure(result, "--streaming")

