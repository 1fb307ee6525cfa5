"""Frame readers and result writers on rendered 854x480 frames (the demo clip) stored as JPEG."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from geomotion_core.demo.clip import DemoClipConfig, render_clip
from geomotion_core.errors import InputError
from geomotion_core.io import (
    OverlayVideoWriter,
    TumTrajectoryWriter,
    open_frames,
    probability_to_uint8,
    render_overlay,
    write_ply,
    write_png,
    write_poses_json,
)
from geomotion_core.io.pointcloud import read_ply
from geomotion_core.io.trajectory import read_tum



@pytest.fixture(scope="module")
def sequence_dir(tmp_path_factory) -> Path:
    """Twelve frames of the demo clip at DAVIS size, as ``00000.jpg`` ... (a DAVIS-like frame folder)."""
    folder = tmp_path_factory.mktemp("sequence")
    for index, frame in enumerate(render_clip(DemoClipConfig(frames=12, width=854, height=480)).frames):
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


@pytest.fixture(scope="module")
def clip_frames(sequence_dir: Path) -> np.ndarray:
    paths = sorted(sequence_dir.glob("*.jpg"))[:5]
    return np.stack([cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths])


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (frames.shape[2], frames.shape[1]))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_frame_folder_reads_jpeg_frames_in_order(sequence_dir: Path, clip_frames: np.ndarray) -> None:
    source = open_frames(sequence_dir, fps=24)
    assert len(source) == len(list(sequence_dir.glob("*.jpg")))
    assert (source.height, source.width) == (480, 854)
    first = [frame for _, frame in zip(range(5), source)]
    assert [f.name for f in first] == ["00000", "00001", "00002", "00003", "00004"]
    assert [f.stamp for f in first] == pytest.approx([0, 1 / 24, 2 / 24, 3 / 24, 4 / 24])
    np.testing.assert_array_equal(np.stack([f.image for f in first]), clip_frames)


def test_natural_sort_keeps_stems(tmp_path: Path, clip_frames: np.ndarray) -> None:
    small = clip_frames[:, ::8, ::8]
    for number, frame in zip((10, 2, 1), small):
        write_png(tmp_path / f"frame{number}.png", frame)
    frames = list(open_frames(tmp_path))
    assert [f.name for f in frames] == ["frame1", "frame2", "frame10"]
    np.testing.assert_array_equal(frames[2].image, small[0])


def test_glob_selects_matching_frames(sequence_dir: Path) -> None:
    source = open_frames(str(sequence_dir / "0000[0-3].jpg"))
    assert [f.name for f in source] == ["00000", "00001", "00002", "00003"]


def test_video_frames_are_named_by_index_and_stamped_by_fps(tmp_path: Path, clip_frames: np.ndarray) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, clip_frames, fps=12.0)
    source = open_frames(path)
    frames = list(source)
    assert source.fps == pytest.approx(12.0)
    assert [f.name for f in frames] == [f"{i:05d}" for i in range(5)]
    assert [f.stamp for f in frames] == pytest.approx([i / 12 for i in range(5)])
    assert frames[0].image.shape == (480, 854, 3)
    # lossy codec: close to the source, and the colour order is RGB
    assert np.abs(frames[0].image.astype(int) - clip_frames[0]).mean() < 8


def test_unreadable_frame_is_skipped_and_counted(tmp_path: Path, clip_frames: np.ndarray) -> None:
    for index, frame in enumerate(clip_frames[:3, ::8, ::8]):
        write_png(tmp_path / f"{index}.png", frame)
    (tmp_path / "1.png").write_bytes(b"not a png")
    source = open_frames(tmp_path)
    frames = list(source)
    assert [f.name for f in frames] == ["0", "2"]
    assert [f.index for f in frames] == [0, 1]
    assert source.skipped == 1


@pytest.mark.parametrize("case", ["missing", "empty_folder", "garbage_video", "zero_frame_video", "no_glob_match"])
def test_bad_inputs_raise_input_error(tmp_path: Path, case: str) -> None:
    if case == "missing":
        target = tmp_path / "nothing.mp4"
    elif case == "empty_folder":
        target = tmp_path / "empty"
        target.mkdir()
    elif case == "garbage_video":
        target = tmp_path / "broken.mp4"
        target.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "zero_frame_video":
        target = tmp_path / "zero.mp4"
        _write_video(target, np.zeros((0, 48, 64, 3), np.uint8), fps=10)
    else:
        target = tmp_path / "*.png"
    with pytest.raises(InputError):
        open_frames(target)


def test_probability_png_is_8_bit(tmp_path: Path) -> None:
    probability = np.array([[0.0, 0.5, 1.0, 1.2]], np.float32)
    np.testing.assert_array_equal(probability_to_uint8(probability), [[0, 128, 255, 255]])
    write_png(tmp_path / "p.png", probability_to_uint8(probability))
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "p.png"), cv2.IMREAD_UNCHANGED), [[0, 128, 255, 255]])


def test_tum_trajectory_quaternions_and_translation(tmp_path: Path) -> None:
    poses = np.tile(np.eye(4), (2, 1, 1))
    poses[1, :3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 degrees about z
    poses[1, :3, 3] = [1.0, 2.0, 3.0]
    writer = TumTrajectoryWriter(tmp_path / "trajectory.txt")
    writer.write([0.0], poses[:1])
    writer.write([0.5], poses[1:])
    writer.close()
    rows = read_tum(tmp_path / "trajectory.txt")
    half = np.sqrt(0.5)
    np.testing.assert_allclose(rows[0], [0, 0, 0, 0, 0, 0, 0, 1], atol=1e-9)
    np.testing.assert_allclose(rows[1], [0.5, 1, 2, 3, 0, 0, half, half], atol=1e-9)


def test_poses_json_round_trip(tmp_path: Path) -> None:
    pose = np.arange(16, dtype=float).reshape(4, 4)
    write_poses_json(tmp_path / "poses.json", [{"frame": "00000", "stamp": 0.0, "pose": pose.tolist()}])
    document = json.loads((tmp_path / "poses.json").read_text())
    np.testing.assert_array_equal(document["frames"][0]["pose"], pose)


def test_binary_ply_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(100, 3)).astype(np.float32)
    colors = rng.integers(0, 256, size=(100, 3), dtype=np.uint8)
    write_ply(tmp_path / "cloud.ply", points, colors)
    assert (tmp_path / "cloud.ply").read_bytes().startswith(b"ply\nformat binary_little_endian 1.0\nelement vertex 100\n")
    read_points, read_colors = read_ply(tmp_path / "cloud.ply")
    np.testing.assert_array_equal(read_points, points)
    np.testing.assert_array_equal(read_colors, colors)


def test_overlay_tints_only_the_mask_and_writes_a_video(tmp_path: Path, clip_frames: np.ndarray) -> None:
    frame = clip_frames[0]
    mask = np.zeros(frame.shape[:2], np.uint8)
    mask[200:300, 300:500] = 255
    overlay = render_overlay(frame, mask)
    np.testing.assert_array_equal(overlay[:150], frame[:150])
    inside = overlay[220:280, 320:480].astype(int)
    assert (inside[..., 0] - frame[220:280, 320:480, 0].astype(int)).mean() > 20
    with OverlayVideoWriter(tmp_path / "overlay.mp4", 10.0, frame.shape[1], frame.shape[0]) as writer:
        for image in clip_frames:
            writer.write(image, mask)
    assert len(list(open_frames(tmp_path / "overlay.mp4"))) == len(clip_frames)


def _jpeg_files(folder: Path, frames: np.ndarray) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = []
    for index, frame in enumerate(frames):
        paths.append(folder / f"{index:03d}.jpg")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return paths


def test_skipped_files_keep_the_later_stamps(tmp_path: Path, clip_frames: np.ndarray) -> None:
    """After a zero-byte frame the later frames were stamped one period early (issue 18, item 14)."""
    paths = _jpeg_files(tmp_path / "frames", clip_frames[:, ::4, ::4])
    paths[1].write_bytes(b"")
    frames = list(open_frames(tmp_path / "frames", fps=10.0))
    assert [f.name for f in frames] == ["000", "002", "003", "004"]
    assert [f.index for f in frames] == [0, 1, 2, 3]
    np.testing.assert_allclose([f.stamp for f in frames], [0.0, 0.2, 0.3, 0.4])


def test_truncated_jpeg_is_skipped_not_used_half_grey(tmp_path: Path, clip_frames: np.ndarray) -> None:
    """OpenCV decodes a cut JPEG as a partly grey picture; it must be skipped (issue 18, item 14)."""
    paths = _jpeg_files(tmp_path / "frames", clip_frames[:3])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    assert cv2.imread(str(paths[1])) is not None  # what the reader used to take as a frame
    source = open_frames(tmp_path / "frames")
    assert [f.name for f in source] == ["000", "002"] and source.skipped == 1


def test_truncated_png_and_leading_bad_files_are_skipped(tmp_path: Path, clip_frames: np.ndarray) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(clip_frames[:3, ::8, ::8]):
        write_png(folder / f"{index}.png", frame)
    (folder / "0.png").write_bytes(b"")  # the first file is bad too: the size comes from the next one
    data = (folder / "2.png").read_bytes()
    (folder / "2.png").write_bytes(data[:-20])
    source = open_frames(folder)
    assert [f.name for f in source] == ["1"] and source.skipped == 2
    assert (source.height, source.width) == clip_frames[0, ::8, ::8].shape[:2]


def test_folder_of_only_bad_files_and_unreadable_folder_are_input_errors(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(InputError, match="none of the 2 image files can be decoded"):
        open_frames(folder)

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "iterdir", refuse)  # as a folder without read permission (tests may run as root)
    with pytest.raises(InputError, match="cannot read folder .*Permission denied"):
        open_frames(folder)


def test_frame_reader_fuzz(tmp_path: Path, clip_frames: np.ndarray) -> None:
    """Random, truncated, zero-byte and odd-sized image files: the reader yields only whole frames of
    the stream's size, stamps by file position, counts every other file, and never raises."""
    rng = np.random.default_rng(18)
    good = cv2.cvtColor(clip_frames[0, ::8, ::8], cv2.COLOR_RGB2BGR)
    for trial in range(12):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        expected_good = []
        for position in range(8):
            suffix = (".jpg", ".png")[int(rng.integers(2))]
            path = folder / f"{position:02d}{suffix}"
            encoded = cv2.imencode(suffix, good)[1].tobytes()
            kind = int(rng.integers(6)) if position else 0  # the first one is whole: it sets the size
            if kind == 0:
                path.write_bytes(encoded)
                expected_good.append(position)
            elif kind == 1:
                path.write_bytes(b"")
            elif kind == 2:
                path.write_bytes(encoded[: int(rng.integers(1, len(encoded) - 16))])
            elif kind == 3:
                path.write_bytes(rng.bytes(int(rng.integers(1, 4096))))
            elif kind == 4:  # a valid image of another (odd) size
                height, width = (int(v) for v in rng.integers(1, 97, size=2))
                path.write_bytes(cv2.imencode(suffix, rng.integers(0, 256, (height, width, 3), np.uint8))[1].tobytes())
                if (height, width) == good.shape[:2]:
                    expected_good.append(position)
            else:  # random bytes behind a real header
                path.write_bytes(encoded[:32] + rng.bytes(int(rng.integers(0, 2048))))
        source = open_frames(folder, fps=5.0)
        frames = list(source)
        assert all(f.image.shape == good.shape and f.image.dtype == np.uint8 for f in frames)
        assert [round(f.stamp * 5) for f in frames] == expected_good
        assert source.skipped == 8 - len(frames)


def test_atomic_path_leaves_nothing_when_the_write_fails(tmp_path: Path) -> None:
    """A full disk left a 0-byte poses.json / report presented as a result (issue 18, item 9)."""
    from geomotion_core.io.atomic import atomic_path

    target = tmp_path / "sub" / "report.json"
    with atomic_path(target) as partial:
        partial.write_text("first")
    with pytest.raises(OSError, match="No space left"):
        with atomic_path(target) as partial:
            partial.write_text("half")
            raise OSError(28, "No space left on device")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["report.json"]
