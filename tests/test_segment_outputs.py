"""The output folder of `geomotion segment`: locked, staged, complete or clearly partial, never mixed
(issue 18, items 6-9, 13, 14), on small real-looking frames with the weight-free backend."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from geomotion_core.backend import BackendOptions
from geomotion_core.errors import GeoMotionError
from geomotion_core.pipeline import SegmentOptions, segment_to_folder
from geomotion_core.pipeline import outputs as outputs_module
from geomotion_core.pipeline.outputs import OutputFolder

HEIGHT, WIDTH = 96, 128


def _frames(folder: Path, count: int, height: int = HEIGHT, width: int = WIDTH) -> Path:
    """A textured background panning right with a bright square moving faster."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), np.uint8), (0, 0), 2)
    for index in range(count):
        frame = np.roll(background, index, axis=1).copy()
        top, left = height // 3, width // 6 + 3 * index
        frame[top: top + height // 5, left: left + width // 6] = 255
        cv2.imwrite(str(folder / f"{index:03d}.png"), frame)
    return folder


def _options(**changes) -> SegmentOptions:
    return SegmentOptions(backend=BackendOptions(backend="geometric", device="cpu"), progress=False, **changes)


def _geomotion(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomotion_core.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if ": error:" in line]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_complete_run_is_marked_and_a_second_run_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = segment_to_folder(_frames(tmp_path / "f", 6), out, _options())
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    assert summary.outputs["masks"] == out / "masks" and len(list((out / "masks").glob("*.png"))) == 6
    assert not (out / ".geomotion-staging").exists()
    before = (out / "trajectory.txt").read_bytes()
    with pytest.raises(GeoMotionError, match="already holds results.*--overwrite"):
        segment_to_folder(tmp_path / "f", out, _options())
    assert (out / "trajectory.txt").read_bytes() == before


def test_overwrite_with_a_shorter_input_leaves_no_stale_masks(tmp_path: Path) -> None:
    """A rerun kept the earlier run's extra masks without a word (issue 18, item 8)."""
    out = tmp_path / "out"
    segment_to_folder(_frames(tmp_path / "long", 8), out, _options())
    segment_to_folder(_frames(tmp_path / "short", 4), out, _options(overwrite=True))
    assert sorted(p.stem for p in (out / "masks").glob("*.png")) == ["000", "001", "002", "003"]
    assert len((out / "trajectory.txt").read_text().splitlines()) == 1 + 4
    assert json.loads((out / "run.json").read_text())["frames"] == 4


def test_a_folder_being_written_is_locked(tmp_path: Path) -> None:
    """Two runs into one folder garbled the trajectory (issue 18, item 8)."""
    frames = _frames(tmp_path / "f", 4)
    holder = OutputFolder(tmp_path / "out")
    holder.open()
    try:
        with pytest.raises(GeoMotionError, match="being written by another geomotion run"):
            segment_to_folder(frames, tmp_path / "out", _options())
        result = _geomotion("segment", str(frames), "-o", str(tmp_path / "out"), "--backend", "geometric",
                            "--no-progress")
        assert "being written by another" in _error_line(result)
    finally:
        holder.abandon({"frames": 0}, RuntimeError("test"))
    assert not (tmp_path / "out").exists()


def test_failure_mid_run_keeps_a_marked_partial_and_the_old_results(tmp_path: Path, monkeypatch) -> None:
    """A full disk left a 0-byte poses.json and an unplayable overlay presented as results (item 9)."""
    out = tmp_path / "out"
    frames = _frames(tmp_path / "f", 6)
    segment_to_folder(frames, out, _options())
    complete = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    written = []
    real_write_png = outputs_module.write_png

    def fill_disk(path, image, compression=1):
        if len(written) >= 6:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        real_write_png(path, image, compression)

    monkeypatch.setattr(outputs_module, "write_png", fill_disk)
    with pytest.raises(GeoMotionError, match="No space left on device.*frames done are kept in .*partial"):
        segment_to_folder(frames, out, _options(overwrite=True))
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.name != "partial"} == complete
    assert json.loads((out / "run.json").read_text())["status"] == "complete"
    record = json.loads((out / "partial" / "run.json").read_text())
    assert record["status"] == "partial" and "No space left" in record["error"] and record["frames"] >= 1
    assert not (out / ".geomotion-staging").exists()


def test_full_disk_in_the_cli_is_one_line_and_nothing_looks_complete(tmp_path: Path) -> None:
    frames = _frames(tmp_path / "f", 5)
    out = tmp_path / "out"
    script = (
        "import errno, sys\n"
        "import geomotion_core.pipeline.outputs as o\n"
        "from geomotion_core.cli import main\n"
        "def full(path, *a, **k):\n"
        "    raise OSError(errno.ENOSPC, 'No space left on device', str(path))\n"
        "o.write_png = full\n"
        f"sys.exit(main(['segment', {str(frames)!r}, '-o', {str(out)!r}, '--backend', 'geometric', '--no-progress']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    line = _error_line(result)
    assert result.stderr.count("\n") == 1, result.stderr  # one line says what failed and what is kept
    assert "No space left on device" in line and f"kept in {out / 'partial'}" in line
    assert not (out / "run.json").exists() and not (out / "poses.json").exists()
    assert json.loads((out / "partial" / "run.json").read_text())["status"] == "partial"


def test_failure_before_the_first_frame_leaves_nothing(tmp_path: Path) -> None:
    """1x1 frames blamed overlay.mp4 (item 14); nothing may be left behind."""
    frames = _frames(tmp_path / "tiny", 3, height=1, width=1)
    result = _geomotion("segment", str(frames), "-o", str(tmp_path / "out"), "--backend", "geometric")
    line = _error_line(result)
    assert "1x1 pixels are too small" in line and "overlay" not in line
    assert not (tmp_path / "out").exists()


def test_16_pixel_frames_are_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    """16x16 frames passed the size check, then DIS failed on the half-size frames (item 13)."""
    frames = _frames(tmp_path / "small", 4, height=16, width=16)
    line = _error_line(_geomotion("segment", str(frames), "-o", str(tmp_path / "out"), "--backend", "geometric",
                                  "--no-progress"))
    assert "too small for DIS optical flow" in line
    assert not (tmp_path / "out").exists()


def test_flat_frames_with_the_network_do_not_crash_dis(tmp_path: Path, small_reference) -> None:
    """1000x40 frames at --size 56 --keep-aspect give DIS 14-pixel-high frames: a segmentation fault
    before (item 6), now one line."""
    frames = _frames(tmp_path / "flat", 4, height=40, width=1000)
    result = _geomotion("segment", str(frames), "-o", str(tmp_path / "out"), *small_reference.cli_arguments(),
                        "--flow", "dis", "--size", "56", "--keep-aspect", "--device", "cpu", "--no-progress")
    assert "too small for DIS optical flow" in _error_line(result)
    assert not (tmp_path / "out").exists()


def test_no_overlay_stamps_follow_the_frame_rate(tmp_path: Path) -> None:
    """With --fps inf every stamp was 0 (item 7); a finite rate gives index / fps."""
    out = tmp_path / "out"
    segment_to_folder(_frames(tmp_path / "f", 4), out, _options(overlay=False, fps=4.0))
    stamps = [float(line.split()[0]) for line in (out / "trajectory.txt").read_text().splitlines()[1:]]
    assert stamps == [0.0, 0.25, 0.5, 0.75]
    with pytest.raises(GeoMotionError, match="fps must be in"):
        segment_to_folder(tmp_path / "f", tmp_path / "other", _options(overlay=False, fps=float("inf")))
