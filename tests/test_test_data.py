"""The suite's data rules: the DAVIS tests are left out with one line when the data is missing (and
fail the run under CI), the shared reader gives matching frames and masks, ROS domains are unique."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import claimed_ros_domain

from benchmarks.data import DATA_VARIABLE, read_frames, read_masks

REPO = Path(__file__).resolve().parents[1]
MIXED_MODULE = "tests/test_eval_datasets.py"  # some of its tests need DAVIS, the others do not


def run_module(data: Path, ci: bool) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    env[DATA_VARIABLE] = str(data)
    if ci:
        env["CI"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", MIXED_MODULE], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)


def notice(output: str) -> list[str]:
    return [line for line in output.splitlines() if "tests need the DAVIS data" in line]


def test_without_the_data_the_davis_tests_are_left_out_with_one_line(tmp_path: Path) -> None:
    result = run_module(tmp_path / "absent", ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (line,) = notice(result.stdout)
    missing = int(re.match(r"(\d+) tests need the DAVIS data \(deselected\); ", line).group(1))
    assert f"{tmp_path / 'absent' / 'DAVIS2016'}" in line and DATA_VARIABLE in line and "docs/testing.md" in line
    passed, deselected = map(int, re.search(r"(\d+) passed, (\d+) deselected", result.stdout).groups())
    assert deselected == missing > 0 and passed > 0  # the tests that need no data still ran


def test_with_ci_set_missing_data_fails_the_run(tmp_path: Path) -> None:
    result = run_module(tmp_path / "absent", ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = notice(result.stdout)
    assert "(failing: CI is set)" in line


def test_reader_gives_the_frames_and_masks_of_the_same_frames(davis_root: Path) -> None:
    frames = read_frames(davis_root, "libby", 3, start=2, size=(214, 120))
    masks = read_masks(davis_root, "libby", 3, start=2)
    assert frames.shape == (3, 120, 214, 3) and frames.dtype == np.uint8
    assert masks.shape == (3, 480, 854) and masks.dtype == bool and masks.any(axis=(1, 2)).all()
    image = cv2.cvtColor(cv2.imread(str(davis_root / "JPEGImages" / "480p" / "libby" / "00002.jpg")), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(frames[0], cv2.resize(image, (214, 120), interpolation=cv2.INTER_AREA))
    truth = cv2.imread(str(davis_root / "Annotations" / "480p" / "libby" / "00004.png"), cv2.IMREAD_GRAYSCALE) > 0
    np.testing.assert_array_equal(masks[2], truth)
    with pytest.raises(ValueError, match="asked for"):
        read_frames(davis_root, "libby", 1000)


def test_each_claim_gets_a_ros_domain_no_other_holder_has() -> None:
    with claimed_ros_domain() as first, claimed_ros_domain() as second:  # as two test processes would
        assert first != second and 1 <= first <= 100 and 1 <= second <= 100
