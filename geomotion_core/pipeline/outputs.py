# SPDX-License-Identifier: Apache-2.0
"""Everything ``geomotion segment`` writes into its output folder, written as results arrive.

A run never writes into the output folder directly (:class:`OutputFolder`): it locks the folder,
writes into a hidden staging folder inside it, and only when every file is complete moves the
files into place and writes ``run.json`` with ``"status": "complete"`` last. Existing results
are refused unless ``overwrite`` is set, and are replaced only once the new run is complete. A run
that fails after some frames keeps them in ``partial/`` with a ``run.json`` saying
``"status": "partial"`` and why; a run that fails before its first frame leaves nothing behind.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from geomotion_core.errors import GeoMotionError
from geomotion_core.instances import InstanceConfig, InstanceTracker
from geomotion_core.instances.tracks import TrackLog
from geomotion_core.io.atomic import atomic_path
from geomotion_core.io.frames import Frame
from geomotion_core.io.images import probability_to_uint8, write_png
from geomotion_core.io.overlay import OverlayVideoWriter, render_overlay
from geomotion_core.io.palette import render_instances, write_instance_png
from geomotion_core.io.pointcloud import write_ply
from geomotion_core.io.trajectory import TumTrajectoryWriter, write_poses_json
from geomotion_core.types import FrameResult

LOGGER = logging.getLogger(__name__)

OUTPUT_NAMES = ("masks", "probability", "trajectory.txt", "poses.json", "overlay.mp4", "static_points.ply", "instances",
                "tracks.json")
RUN_FILE = "run.json"  # written last: its "status" says whether the outputs beside it are complete
PARTIAL_DIR = "partial"  # what a failed run had produced, with its own run.json
STAGING_DIR = ".geomotion-staging"  # where a run writes until it is complete
POINT_STRIDE = 4  # keep every 4th pixel in both directions for the point cloud
PENDING_WRITES = 16  # frames whose files may be waiting to be written (bounds the memory held)


class BackgroundJobs:
    """Runs file writes on worker threads (OpenCV encodes without holding the GIL).

    At most ``limit`` jobs wait at a time: a caller that gets ahead blocks on the oldest one. A
    failed job raises its error in the caller at the next :meth:`submit` or at :meth:`finish`.
    With one worker, jobs run in submission order.
    """

    def __init__(self, workers: int, limit: int = PENDING_WRITES) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="geomotion-write")
        self._pending: deque[Future] = deque()
        self._limit = limit

    def submit(self, job: Callable[..., None], *args: object) -> None:
        self._pending.append(self._pool.submit(job, *args))
        while len(self._pending) > self._limit:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Wait for every job (a failure does not cancel the others); then re-raise the first failure."""
        failure: BaseException | None = None
        while self._pending:
            try:
                self._pending.popleft().result()
            except Exception as exc:  # noqa: BLE001 - any job error is re-raised below, after the rest
                failure = failure or exc
        self._pool.shutdown()
        if failure is not None:
            raise failure


class OutputFolder:
    """An output folder owned by one run: locked, staged, committed or kept as partial.

    :meth:`open` refuses a path that is a file, a folder being written by another run, and (unless
    ``overwrite``) a folder that holds results; it creates the staging folder. The run writes into
    :attr:`staging`; then :meth:`commit` or :meth:`abandon`.
    """

    def __init__(self, path: str | Path, overwrite: bool = False) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.staging = self.path / STAGING_DIR
        self._lock_fd: int | None = None
        self._created = False

    def check(self) -> None:
        """Refuse the folder early (before a model is loaded) if this run may not write into it."""
        if self.path.exists() and not self.path.is_dir():
            raise GeoMotionError(f"output {self.path} is a file, not a folder")
        held = self.existing_results()
        if held and not self.overwrite:
            raise GeoMotionError(f"output folder {self.path} already holds results ({', '.join(held)}); "
                                 "pass --overwrite to replace them")

    def existing_results(self) -> list[str]:
        """Names of a previous run's outputs in the folder (``partial/`` aside)."""
        return [name for name in (*OUTPUT_NAMES, RUN_FILE) if (self.path / name).exists()]

    def open(self) -> Path:
        """Check, create and lock the folder; return a fresh staging folder."""
        self.check()
        try:
            self._created = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._lock_fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            raise GeoMotionError(f"cannot create output folder {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._unlock()
            raise GeoMotionError(f"output folder {self.path} is being written by another geomotion run") from None
        self.check()  # again, under the lock: another run may have finished in between
        shutil.rmtree(self.staging, ignore_errors=True)  # left by a run that was killed
        self.staging.mkdir()
        return self.staging

    def commit(self, record: dict) -> None:
        """Replace the previous results by the staged ones; ``run.json`` (complete) goes last."""
        try:
            self._remove(RUN_FILE)
            for name in (*OUTPUT_NAMES, PARTIAL_DIR):
                self._remove(name)
            for entry in self.staging.iterdir():
                entry.rename(self.path / entry.name)
            write_json_atomic(self.path / RUN_FILE, {"status": "complete", **record})
            self.staging.rmdir()
        finally:
            self._unlock()

    def abandon(self, record: dict, error: BaseException) -> Path | None:
        """After a failure: keep what was staged in ``partial/`` (marked partial), or nothing at all."""
        try:
            if not record.get("frames"):
                shutil.rmtree(self.staging, ignore_errors=True)
                if self._created:
                    _remove_empty_folder(self.path)
                return None
            partial = self.path / PARTIAL_DIR
            shutil.rmtree(partial, ignore_errors=True)
            self.staging.rename(partial)
            reason = f"{type(error).__name__}: {error}" if not isinstance(error, GeoMotionError) else str(error)
            try:
                write_json_atomic(partial / RUN_FILE, {"status": "partial", **record, "error": reason})
            except OSError as exc:  # e.g. the disk is full: the missing run.json marks it incomplete too
                LOGGER.warning("cannot write %s: %s", partial / RUN_FILE, exc)
            return partial
        finally:
            self._unlock()

    def _remove(self, name: str) -> None:
        target = self.path / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None


def _remove_empty_folder(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty: it holds something this run did not write


def write_json_atomic(path: Path, document: dict) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def run_record(frames: int, started: float, backend: str) -> dict:
    """What ``run.json`` says about a run besides its status."""
    return {"frames": frames, "backend": backend, "seconds": round(time.perf_counter() - started, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


class SegmentationWriter:
    """Writes masks, probabilities, overlay video, trajectory, poses and (optionally) static points.

    With ``instances`` settings, the instance stage runs on each mask as it is written: instance
    maps go to ``instances/`` (DAVIS palette PNGs), the tracks to ``tracks.json`` and the overlay
    is coloured per object id.

    Trajectory lines are written immediately and per-frame images on background threads;
    ``poses.json`` and the point cloud are written by :meth:`close`, which also runs when
    segmentation stops on an error, so everything produced so far is kept.
    """

    def __init__(self, out_dir: Path, fps: float, width: int, height: int, overlay: bool = True,
                 points: bool = False, instances: InstanceConfig | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.masks_dir = self.out_dir / "masks"
        self.probability_dir = self.out_dir / "probability"
        self.instances_dir = self.out_dir / "instances"
        try:
            for folder in (self.masks_dir, self.probability_dir, *((self.instances_dir,) if instances else ())):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GeoMotionError(f"cannot create output folder {self.out_dir}: {exc}") from exc
        self.trajectory = TumTrajectoryWriter(self.out_dir / "trajectory.txt")
        self.tracker = InstanceTracker(instances) if instances else None
        self.tracks = TrackLog()
        render = render_instances if instances else render_overlay
        self.overlay = OverlayVideoWriter(self.out_dir / "overlay.mp4", fps, width, height, render) if overlay else None
        self.keep_points = points
        self._pose_records: list[dict] = []
        self._points: list[np.ndarray] = []
        self._colors: list[np.ndarray] = []
        self._point_world: int | None = None
        self._images = BackgroundJobs(workers=2)
        self._video = BackgroundJobs(workers=1)  # one worker keeps the overlay frames in order
        self.frames_written = 0

    def write(self, frame: Frame, result: FrameResult, world: int = 0) -> None:
        """Write one frame's result; ``world`` names the world frame its pose is expressed in."""
        self._images.submit(write_png, self.masks_dir / f"{frame.name}.png", result.mask)
        self._images.submit(_write_probability, self.probability_dir / f"{frame.name}.png", result.probability)
        shown = result.mask
        if self.tracker is not None:
            start = time.perf_counter()
            found = self.tracker.update(frame.image, result.mask > 0, stamp=result.stamp, points=result.points,
                                        pose=result.pose, world=world)
            result.timings["instances"] = time.perf_counter() - start
            self.tracks.add(frame.name, result.index, result.stamp, found)
            self._images.submit(write_instance_png, self.instances_dir / f"{frame.name}.png", found.ids)
            shown = found.ids
        if self.overlay is not None:
            self._video.submit(self.overlay.write, frame.image, shown)
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
        """Finish every file (pending images first); returns the output paths by name.

        Raises the error of a failed background write after everything else is written.
        """
        outputs = {
            "masks": self.masks_dir,
            "probability": self.probability_dir,
            "trajectory": self.trajectory.path,
            "poses": self.out_dir / "poses.json",
        }
        try:
            self._images.finish()
        finally:
            try:
                self._video.finish()
            finally:
                self._finish_files(outputs)
        return outputs

    def _finish_files(self, outputs: dict[str, Path]) -> None:
        self.trajectory.close()
        write_poses_json(outputs["poses"], self._pose_records)
        if self.tracker is not None:
            outputs["instances"], outputs["tracks"] = self.instances_dir, self.out_dir / "tracks.json"
            self.tracks.write(outputs["tracks"])
        if self.overlay is not None:
            self.overlay.close()
            self.overlay.verify(self.frames_written)
            outputs["overlay"] = self.overlay.path
        if self._points:
            outputs["points"] = self.out_dir / "static_points.ply"
            write_ply(outputs["points"], np.concatenate(self._points), np.concatenate(self._colors))
        elif self.keep_points and self.frames_written:
            LOGGER.warning("the backend gave no world points: static_points.ply is not written")


def _write_probability(path: Path, probability: np.ndarray) -> None:
    write_png(path, probability_to_uint8(probability))
