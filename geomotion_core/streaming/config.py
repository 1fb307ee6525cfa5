# SPDX-License-Identifier: Apache-2.0
"""Configuration of the streaming engine."""
from __future__ import annotations

import math
from dataclasses import dataclass

from geomotion_core.errors import ConfigError
from geomotion_core.options.table import DEFAULT_MAX_QUEUE, MAX_LOOKAHEAD, POLICIES, option_field


@dataclass
class StreamingConfig:
    """How the stream is cut into windows and which frames are processed.

    ``window_size`` frames go to the backend at once; consecutive windows start ``stride`` frames
    apart, so they share ``window_size - stride`` frames, which carry the camera trajectory from one
    window to the next. ``policy`` ``every_frame`` processes every frame (evaluation, bag replay);
    ``latest`` drops frames that went stale while the engine was busy and counts them; ``newest``
    (low latency, the node's default) runs one window per frame, ending at the newest frame
    queued when the previous window finished (older queued frames are skipped and counted), so a
    slow backend skips frames evenly. ``newest`` needs stride 1 and causal windows; its windows grow
    from 2 frames to ``window_size`` at the start of a stream.
    ``causal`` finalises a frame in the first window that contains it; otherwise in the window where
    it is most central. ``lookahead`` (causal only) holds a frame back until this many later frames
    are in its window: 0 finalises the window's last frame(s), 1 the ones before the newest frame.
    ``max_queue`` 0 (the default) becomes ``max(DEFAULT_MAX_QUEUE, 2 * window_size)``.

    The defaults are those of the option table (docs/options.md), except ``policy``: files and
    bags are processed frame by frame (``every_frame``), the node's default is ``newest``.
    """

    window_size: int = option_field("window.size")
    stride: int = option_field("window.stride")
    policy: str = "every_frame"
    threshold: float = option_field("mask.threshold")  # mask = probability > threshold
    causal: bool = True
    lookahead: int = option_field("window.lookahead")  # later frames a causal window sees beyond those it finalises
    max_queue: int = option_field("queue.max_frames")  # frames waiting for the worker (the burst the engine absorbs)
    align_scale: bool = True  # fit a scale per window (Sim(3)); False: rotation + translation only
    min_baseline: float = 1e-6  # RMS spread of the shared camera centres needed to fit a scale

    def __post_init__(self) -> None:
        if self.max_queue == 0:
            self.max_queue = max(DEFAULT_MAX_QUEUE, 2 * self.window_size)

    def validate(self) -> None:
        """Raise ConfigError on an inconsistent or out-of-range value."""
        if self.policy not in POLICIES:
            raise ConfigError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.window_size < 2:
            raise ConfigError(f"window_size must be at least 2, got {self.window_size}")
        if not 1 <= self.stride < self.window_size:
            raise ConfigError(
                f"stride must be in [1, window_size - 1] = [1, {self.window_size - 1}] so that "
                f"consecutive windows share frames, got {self.stride}"
            )
        if not (isinstance(self.lookahead, int) and 0 <= self.lookahead <= min(MAX_LOOKAHEAD, self.window_size - 2)):
            raise ConfigError(
                f"lookahead must be in [0, min({MAX_LOOKAHEAD}, window_size - 2)] = "
                f"[0, {min(MAX_LOOKAHEAD, self.window_size - 2)}], got {self.lookahead}"
            )
        if self.lookahead and not self.causal:
            raise ConfigError("lookahead applies to causal windows only (centred windows see (N - S) // 2 frames ahead)")
        if self.policy == "newest" and (self.stride != 1 or not self.causal):
            raise ConfigError(
                f"policy newest runs causal windows at stride 1 (one window per processed frame), got stride "
                f"{self.stride}{'' if self.causal else ' and centred windows'}"
            )
        if self.align_scale and self.overlap < 2:
            raise ConfigError(
                f"align_scale needs consecutive windows to share at least 2 frames (window_size - stride), "
                f"got {self.overlap}; lower the stride or set align_scale false"
            )
        if not (math.isfinite(self.threshold) and 0.0 <= self.threshold < 1.0):
            raise ConfigError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.max_queue < self.window_size:
            raise ConfigError(
                f"max_queue ({self.max_queue}) must hold at least one window ({self.window_size} frames)"
            )
        if not (math.isfinite(self.min_baseline) and self.min_baseline >= 0.0):
            raise ConfigError(f"min_baseline must be a finite value >= 0, got {self.min_baseline}")

    @property
    def overlap(self) -> int:
        """Frames shared by consecutive windows."""
        return self.window_size - self.stride
