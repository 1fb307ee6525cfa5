"""Everything ``geomotion segment`` writes into its output folder, written as results arrive."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from geomotion_core.errors import GeoMotionError
from geomotion_core.io.frames import Frame
from geomotion_core.io.images import probability_to_uint8, write_png
from geomotion_core.io.overlay import OverlayVideoWriter
from geomotion_core.io.pointcloud import write_ply
from geomotion_core.io.trajectory import TumTrajectoryWriter, write_poses_json
from geomotion_core.types import FrameResult

POINT_STRIDE = 4  # keep every 4th pixel in both directions for the point cloud


class SegmentationWriter:
    """Writes masks, probabilities, overlay video, trajectory, poses and (optionally) static points.

    Per-frame files and trajectory lines are written immediately; ``poses.json`` and the point
    cloud are written by :meth:`close`, which also runs when segmentation stops on an error, so
    everything produced so far is kept.
    """

    def __init__(self, out_dir: Path, fps: float, width: int, height: int, overlay: bool = True,
                 points: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.masks_dir = self.out_dir / "masks"
        self.probability_dir = self.out_dir / "probability"
        try:
            self.masks_dir.mkdir(parents=True, exist_ok=True)
            self.probability_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GeoMotionError(f"cannot create output folder {self.out_dir}: {exc}") from exc
        self.trajectory = TumTrajectoryWriter(self.out_dir / "trajectory.txt")
        self.overlay = OverlayVideoWriter(self.out_dir / "overlay.mp4", fps, width, height) if overlay else None
        self.keep_points = points
        self._pose_records: list[dict] = []
        self._points: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []
        self._point_world: int | None = None
        self.frames_written = 0

    def write(self, frame: Frame, result: FrameResult, world: int = 0) -> None:
        """Write one frame's result; ``world`` names the world frame its pose is expressed in."""
        write_png(self.masks_dir / f"{frame.name}.png", result.mask)
        write_png(self.probability_dir / f"{frame.name}.png", probability_to_uint8(result.probability))
        if self.overlay is not None:
            self.overlay.write(frame.image, result.mask)
        self.trajectory.write([result.stamp], result.pose[None])
        self._pose_records.append(
            {"frame": frame.name, "index": result.index, "stamp": result.stamp, "world": int(world),
             "pose": result.pose.tolist()}
        )
        if self.keep_points and result.points is not None:
            self._keep_static_points(frame.image, result, world)
        self.frames_written += 1

    def _keep_static_points(self, image: np.ndarray, result: FrameResult, world: int) -> None:
        """Static, finite points of frames sharing the first world frame (others cannot be merged)."""
        if self._point_world is None:
            self._point_world = world
        if world != self._point_world:
            return
        points = result.points[::POINT_STRIDE, ::POINT_STRIDE]
        keep = (result.mask[::POINT_STRIDE, ::POINT_STRIDE] == 0) & np.isfinite(points).all(axis=-1)
        self._points.append(points[keep])
        self._colors.append(image[::POINT_STRIDE, ::POINT_STRIDE][keep])

    def close(self) -> dict[str, Path]:
        """Finish every file; returns the output paths by name."""
        self.trajectory.close()
        outputs = {
            "masks": self.masks_dir,
            "probability": self.probability_dir,
            "trajectory": self.trajectory.path,
            "poses": self.out_dir / "poses.json",
        }
        write_poses_json(outputs["poses"], self._pose_records)
        if self.overlay is not None:
            self.overlay.close()
            outputs["overlay"] = self.overlay.path
        if self.keep_points:
            outputs["points"] = self.out_dir / "static_points.ply"
            points = np.concatenate(self._points) if self._points else np.empty((0, 3), np.float32)
            colors = np.concatenate(self._colors) if self._colors else np.empty((0, 3), np.uint8)
            write_ply(outputs["points"], points, colors)
        return outputs
