"""``GeometricBackend``: the weight-free MotionBackend (DIS flow + robust ego-motion fit)."""
from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Hashable, Sequence, TypeVar

import numpy as np

from geomotion_core.errors import InputError
from geomotion_core.flow.dis import DISConfig, DISFlow, working_size
from geomotion_core.geometric.camera import chain_pose, intrinsics_from_fov, scale_intrinsics
from geomotion_core.geometric.config import GeometricConfig
from geomotion_core.geometric.egomotion import PixelGrid
from geomotion_core.geometric.masks import extract_mask, select_threshold, to_probability, upsample_probability
from geomotion_core.geometric.pair import DirectionalMotion, PairMotion, analyse_pair
from geomotion_core.geometric.scoring import combine_directions, smooth
from geomotion_core.types import WindowPrediction

if TYPE_CHECKING:
    from geomotion_core.backend import BackendOptions

Value = TypeVar("Value")


class _LRU(OrderedDict):
    """A small least-recently-used cache."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def fetch(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The cached value of ``key``, computing and storing it on a miss."""
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = compute()
        if len(self) > self.capacity:
            self.popitem(last=False)
        return value


def frame_probability(evidence: Sequence[DirectionalMotion], config: GeometricConfig, size: tuple[int, int]) -> np.ndarray:
    """``[H, W]`` float32 probability of one frame from its evidence towards 0-2 neighbours.

    ``size`` is the output ``(width, height)``; ``config`` is at the scores' width (see
    ``GeometricConfig.at_width``); a frame without neighbours gets zeros.
    """
    width, height = size
    if not evidence:
        return np.zeros((height, width), dtype=np.float32)
    score = combine_directions([item.score for item in evidence], [item.reliable for item in evidence])
    score = smooth(score, config.score_blur)
    threshold = select_threshold(score, config.min_threshold)
    mask = extract_mask(score, threshold, config.seed_ratio, round(config.min_region_fraction * score.size))
    return upsample_probability(to_probability(score, threshold, mask), mask, size)


class GeometricBackend:
    """Motion masks and camera poses from DIS flow and a MAGSAC background homography.

    Per-frame work (grayscale, and the probability given the frame's neighbours) and per-pair work
    (flows, fits, scores, pose) is cached by frame id, so a window sliding by one frame computes
    one new pair and the probabilities of the frames next to it. ``cache_size`` (entries per
    cache) should be at least the streaming window size. The flow method of ``BackendOptions`` is not
    used: this backend always runs OpenCV DIS on the CPU (see docs/geometric.md).
    """

    name = "geometric"

    def __init__(self, config: GeometricConfig | None = None, cache_size: int = 24) -> None:
        self.config = config or GeometricConfig()
        self._flow = DISFlow(DISConfig(preset=self.config.flow_preset, scale=self.config.flow_scale))
        self._grays = _LRU(cache_size)
        self._pairs = _LRU(cache_size)
        self._probabilities = _LRU(cache_size)

    @classmethod
    def from_options(cls, options: BackendOptions) -> GeometricBackend:
        """The backend for ``BackendOptions`` (which holds nothing this backend needs)."""
        return cls()

    def reset(self) -> None:
        self._grays.clear()
        self._pairs.clear()
        self._probabilities.clear()

    def predict_window(
        self,
        frames: np.ndarray,
        frame_ids: Sequence[int] | None = None,
        intrinsics: np.ndarray | None = None,
    ) -> WindowPrediction:
        frames = _checked_frames(frames)
        count, height, width = frames.shape[:3]
        if frame_ids is not None and len(frame_ids) != count:
            raise InputError(f"got {len(frame_ids)} frame ids for {count} frames")
        keys = [None] * count if frame_ids is None else [(frame_id, height, width) for frame_id in frame_ids]
        started = time.perf_counter()
        grays = [self._gray(frame, key) for frame, key in zip(frames, keys)]
        flow_height, flow_width = grays[0].shape
        work_width, work_height = working_size(flow_width, flow_height, self.config.score_scale)
        camera = intrinsics_from_fov(width, height, self.config.fov_degrees) if intrinsics is None else intrinsics
        camera = scale_intrinsics(camera, work_width / width, work_height / height)
        grid = PixelGrid.with_samples(work_height, work_width, self.config.grid_points)
        config = self.config.at_width(work_width)
        pairs = [
            self._pair(grays[index], grays[index + 1], keys[index], keys[index + 1], grid, camera, config)
            for index in range(count - 1)
        ]
        motion_done = time.perf_counter()
        probability = np.stack([
            self._probability(pairs, keys, index, (width, height), config) for index in range(count)
        ])
        poses = [np.eye(4)]
        for pair in pairs:
            poses.append(chain_pose(poses[-1], pair.rotation, pair.translation))
        timings = {"motion": motion_done - started, "masks": time.perf_counter() - motion_done}
        return WindowPrediction(probability=probability, poses=np.stack(poses), timings=timings)

    def _gray(self, frame: np.ndarray, key: Hashable | None) -> np.ndarray:
        if key is None:
            return self._flow.prepare(frame)
        return self._grays.fetch(key, lambda: self._flow.prepare(frame))

    def _pair(self, gray_a, gray_b, key_a, key_b, grid: PixelGrid, camera: np.ndarray, config: GeometricConfig) -> PairMotion:
        def compute() -> PairMotion:
            return analyse_pair(gray_a, gray_b, self._flow, grid, camera, config)

        if key_a is None or key_b is None:
            return compute()
        return self._pairs.fetch((key_a, key_b, camera.tobytes()), compute)

    def _probability(
        self, pairs: Sequence[PairMotion], keys: Sequence, index: int, size: tuple[int, int], config: GeometricConfig
    ) -> np.ndarray:
        def compute() -> np.ndarray:
            return frame_probability(_evidence(pairs, index), config, size)

        if keys[index] is None:
            return compute()
        previous = keys[index - 1] if index > 0 else None
        following = keys[index + 1] if index + 1 < len(keys) else None
        return self._probabilities.fetch((previous, keys[index], following), compute)


def _evidence(pairs: Sequence[PairMotion], index: int) -> list[DirectionalMotion]:
    """Frame ``index``'s evidence: towards the next frame, then towards the previous one (pairs with
    a blank frame have none)."""
    following = pairs[index].forward if index < len(pairs) else None
    previous = pairs[index - 1].backward if index > 0 else None
    return [item for item in (following, previous) if item is not None]


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise InputError(f"frames must be a non-empty [N, H, W, 3] uint8 RGB array, got {frames.shape} {frames.dtype}")
    if min(frames.shape[1:3]) < 16:
        raise InputError(f"frames of {frames.shape[2]}x{frames.shape[1]} are too small (16 pixels a side at least)")
    return frames
