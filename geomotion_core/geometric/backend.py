# SPDX-License-Identifier: Apache-2.0
"""``GeometricBackend``: the weight-free MotionBackend (DIS flow + robust ego-motion fit)."""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Hashable, Sequence, TypeVar

import numpy as np

from geomotion_core.cache import LruCache
from geomotion_core.errors import InputError
from geomotion_core.flow.dis import DISFlow, working_size
from geomotion_core.geometric.baseline import long_baseline_motion
from geomotion_core.geometric.camera import chain_pose, intrinsics_from_fov, scale_intrinsics
from geomotion_core.geometric.config import GeometricConfig
from geomotion_core.geometric.egomotion import PixelGrid
from geomotion_core.geometric.guided import refine_mask
from geomotion_core.geometric.masks import (
    extract_mask,
    resize_mask,
    select_threshold,
    texture_weight,
    to_probability,
    upsample_probability,
)
from geomotion_core.geometric.pair import DirectionalMotion, PairMotion, analyse_pair
from geomotion_core.geometric.scoring import combine_directions, smooth
from geomotion_core.geometric.temporal import carried_neighbours, supported_score
from geomotion_core.types import WindowPrediction

Value = TypeVar("Value")


def frame_score(
    chains: Sequence[Sequence[DirectionalMotion]], grid: PixelGrid, config: GeometricConfig
) -> np.ndarray | None:
    """One frame's motion score from its evidence towards 0-2 neighbours (None without any).

    Each of ``chains`` holds the evidence of consecutive pairs leading away from the frame in one
    direction (towards t+1, t+2, ... or t-1, t-2, ...); chains of two or more also score the
    longer baselines (``long_baseline_motion``)."""
    evidence = [long_baseline_motion(chain, grid, config) for chain in chains if chain]
    if not evidence:
        return None
    return combine_directions([item.score for item in evidence], [item.reliable for item in evidence])


def frame_probability(score: np.ndarray | None, config: GeometricConfig, frame: np.ndarray) -> np.ndarray:
    """``[H, W]`` float32 probability of one frame from its motion score (zeros for None).

    ``frame`` is the ``[H, W, 3]`` uint8 RGB frame: it sets the output size, decides where a region
    may be seeded (``texture_floor``) and guides the mask's edges (``refine_radius``); ``config``
    is at the score's width (see ``GeometricConfig.at_width``).
    """
    height, width = frame.shape[:2]
    if score is None:
        return np.zeros((height, width), dtype=np.float32)
    score = smooth(score, config.score_blur)
    threshold = select_threshold(score, config.min_threshold)
    seed_level = max(threshold, config.seed_ratio * config.min_threshold)
    seeds = score * texture_weight(frame, score.shape, config.texture_floor) if config.texture_floor > 0 else score
    min_area = round(config.min_region_fraction * score.size)
    mask = extract_mask(score, threshold, seed_level, min_area, seeds, config.dominant_ratio)
    if config.refine_radius > 0:
        radius = config.refine_radius * width / score.shape[1]
        inside = refine_mask(mask, frame, radius, config.refine_eps, config.refine_fraction)
    else:
        inside = resize_mask(mask, (width, height))
    return upsample_probability(to_probability(score, threshold, mask), inside)


class GeometricBackend:
    """Motion masks and camera poses from DIS flow and a MAGSAC background homography.

    Per-frame work (grayscale, the score given the frame's neighbours, and the probability given
    the frames within ``temporal_radius + 1``) and per-pair work (flows, fits, scores, pose) is
    cached by frame id, so a window sliding by one frame computes one new pair and the
    probabilities of the frames near it. ``cache_size`` (entries per cache) should be at least
    the streaming window size. The two flow directions of a pair, and the frames' probabilities,
    run on two threads (this one and a helper thread; a pair's camera motion is queued on the
    helper while this thread starts the next pair's flow); one caller at a time, as for any
    MotionBackend. The flow method of ``BackendOptions`` is not used: this backend always runs
    OpenCV DIS on the CPU (see docs/geometric.md).
    """

    name = "geometric"

    def __init__(self, config: GeometricConfig | None = None, cache_size: int = 24) -> None:
        self.config = config or GeometricConfig()
        flow_config = self.config.dis_config()
        self._flows = (DISFlow(flow_config), DISFlow(flow_config))
        self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="geometric-flow")
        self._grays: LruCache[np.ndarray] = LruCache(cache_size)
        self._pairs: LruCache[PairMotion] = LruCache(cache_size)
        self._scores: LruCache[np.ndarray | None] = LruCache(cache_size)
        self._probabilities: LruCache[np.ndarray] = LruCache(cache_size)

    def reset(self) -> None:
        self._grays.clear()
        self._pairs.clear()
        self._scores.clear()
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
        pending = [
            self._pair(grays[index], grays[index + 1], keys[index], keys[index + 1], grid, camera, config)
            for index in range(count - 1)
        ]
        pairs = [self._resolved(*item) for item in pending]
        motion_done = time.perf_counter()
        scores = self._frame_scores(pairs, keys, grid, config)
        probability = np.stack(self._frame_probabilities(scores, pairs, keys, frames, config))
        poses = [np.eye(4)]
        for pair in pairs:
            poses.append(chain_pose(poses[-1], pair.rotation, pair.translation))
        timings = {"motion": motion_done - started, "masks": time.perf_counter() - motion_done}
        return WindowPrediction(probability=probability, poses=np.stack(poses), timings=timings)

    def _gray(self, frame: np.ndarray, key: Hashable | None) -> np.ndarray:
        if key is None:
            return self._flows[0].prepare(frame)
        return self._grays.fetch(key, lambda: self._flows[0].prepare(frame))

    def _pair(
        self, gray_a, gray_b, key_a, key_b, grid: PixelGrid, camera: np.ndarray, config: GeometricConfig
    ) -> tuple[Hashable | None, PairMotion | Future[PairMotion]]:
        """The pair's cache key (None without frame ids) and its cached motion or a future of it."""
        if key_a is None or key_b is None:
            cache_key = None
        else:
            cache_key = (key_a, key_b, camera.tobytes())
            cached = self._pairs.get(cache_key)
            if cached is not None:
                return cache_key, cached
        return cache_key, analyse_pair(gray_a, gray_b, self._flows, grid, camera, config, self._helper)

    def _resolved(self, cache_key: Hashable | None, motion: PairMotion | Future[PairMotion]) -> PairMotion:
        """A pair's motion, waiting for it (and caching it) if it is still being computed."""
        if not isinstance(motion, Future):
            return motion
        result = motion.result()
        return result if cache_key is None else self._pairs.put(cache_key, result)

    def _on_two_threads(self, function: Callable[[int], Value], items: Sequence[int]) -> dict[int, Value]:
        """``{item: function(item)}``, every other item computed on the helper thread."""
        pending = {item: self._helper.submit(function, item) for item in items[1::2]}
        results = {item: function(item) for item in items[::2]}
        results.update((item, future.result()) for item, future in pending.items())
        return results

    def _frame_scores(
        self, pairs: Sequence[PairMotion], keys: Sequence, grid: PixelGrid, config: GeometricConfig
    ) -> list[np.ndarray | None]:
        """Every frame's score: cached ones looked up (by the ids of the frames it depends on),
        the others computed on two threads."""
        ahead = _score_ahead(config)
        cache_keys = [_neighbourhood(keys, index, config.long_baseline, ahead) for index in range(len(keys))]
        missing = _missing(self._scores, cache_keys)
        computed = self._on_two_threads(
            lambda index: frame_score(_evidence(pairs, index, ahead, config.long_baseline), grid, config), missing
        )
        return _merge(self._scores, cache_keys, computed)

    def _frame_probabilities(
        self,
        scores: Sequence[np.ndarray | None],
        pairs: Sequence[PairMotion],
        keys: Sequence,
        frames: np.ndarray,
        config: GeometricConfig,
    ) -> list[np.ndarray]:
        """Every frame's probability: cached ones looked up (by the ids of the frames it depends
        on), the others computed on two threads."""
        radius = config.temporal_radius
        reach = radius + config.long_baseline
        ahead = None if config.lookahead is None else config.lookahead - _score_ahead(config)
        cache_keys = [_neighbourhood(keys, index, reach, config.lookahead) for index in range(len(keys))]
        missing = _missing(self._probabilities, cache_keys)
        needed = sorted({other for index in missing for other in range(index - 1, index + 2) if 0 <= other < len(keys)})
        neighbours = self._on_two_threads(
            lambda index: carried_neighbours(scores, pairs, index, ahead != 0), needed if radius else []
        )
        computed = self._on_two_threads(
            lambda index: frame_probability(
                supported_score(scores, neighbours, pairs, index, radius, ahead), config, frames[index]
            ),
            missing,
        )
        return _merge(self._probabilities, cache_keys, computed)


def _missing(cache: LruCache, cache_keys: Sequence[Hashable | None]) -> list[int]:
    """Indices whose result is not cached (or cannot be: no key)."""
    return [index for index, key in enumerate(cache_keys) if key is None or key not in cache]


def _merge(cache: LruCache, cache_keys: Sequence[Hashable | None], computed: dict[int, Value]) -> list[Value]:
    """One result per key: the computed ones (then stored), the others from the cache (looked up
    first, so that storing cannot evict them)."""
    found = {index: cache.get(key) for index, key in enumerate(cache_keys) if index not in computed}
    for index, value in computed.items():
        if cache_keys[index] is not None:
            cache.put(cache_keys[index], value)
    return [computed[index] if index in computed else found[index] for index in range(len(cache_keys))]


def _neighbourhood(keys: Sequence, index: int, reach: int, after: int | None = None) -> tuple | None:
    """Cache key of a result that depends on frames ``index - reach .. index + after`` (``after``
    None: ``reach``; None outside the window); None when the frames have no ids."""
    if keys[index] is None:
        return None
    last = index + (reach if after is None else after)
    return tuple(keys[other] if 0 <= other < len(keys) else None for other in range(index - reach, last + 1))


def _score_ahead(config: GeometricConfig) -> int:
    """How many frames after a frame its motion score uses: ``long_baseline`` (the chained flows
    towards the next frames), at most ``lookahead``."""
    return config.long_baseline if config.lookahead is None else min(config.long_baseline, config.lookahead)


def _evidence(pairs: Sequence[PairMotion], index: int, ahead: int, behind: int) -> list[list[DirectionalMotion]]:
    """Frame ``index``'s evidence as two chains of consecutive pairs: towards the next ``ahead``
    frames, then towards the previous ``behind`` ones; a chain stops at the window's edge or a
    pair with a blank frame (which has no evidence)."""
    following = [pairs[other].forward for other in range(index, min(index + ahead, len(pairs)))]
    previous = [pairs[other].backward for other in range(index - 1, max(index - 1 - behind, -1), -1)]
    return [_until_missing(following), _until_missing(previous)]


def _until_missing(chain: list[DirectionalMotion | None]) -> list[DirectionalMotion]:
    """The leading part of ``chain`` up to its first missing link."""
    return chain[: chain.index(None)] if None in chain else chain


def _checked_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or frames.shape[0] == 0:
        raise InputError(f"frames must be a non-empty [N, H, W, 3] uint8 RGB array, got {frames.shape} {frames.dtype}")
    if min(frames.shape[1:3]) < 16:
        raise InputError(f"frames of {frames.shape[2]}x{frames.shape[1]} are too small (16 pixels a side at least)")
    return frames
