# SPDX-License-Identifier: Apache-2.0
"""Settings of the weight-free geometric backend."""
from __future__ import annotations

import math
import typing
from dataclasses import dataclass, replace

from geomotion_core.errors import ConfigError
from geomotion_core.flow.dis import DISConfig
from geomotion_core.options.loader import load

REFERENCE_WIDTH = 854
MAX_LONG_BASELINE = 3  # longer chains accumulate flow error faster than a slow mover's motion
PIXEL_SETTINGS = (
    "parallax_residual",
    "homography_threshold", "epipolar_threshold", "consistency_threshold", "motion_offset", "score_blur", "static_motion", "min_parallax",
    "refine_radius", "local_radius",
)


@dataclass(frozen=True)
class GeometricConfig:
    """Every knob of flow, ego-motion fit, scoring, mask extraction and camera motion.

    Pixel quantities are in pixels of a frame ``REFERENCE_WIDTH`` (854, DAVIS 480p) pixels wide;
    ``at_width`` rescales them to the width the scores are actually computed at.

    ``lookahead`` (None or an int >= 0) bounds how many frames *after* a frame its result may use,
    for low-latency streaming: with ``lookahead`` L, frame t's probability depends only on frames
    up to t + L of the window (and any number before it), so in a window that ends at the newest
    frame, the result of frame ``newest - L`` is final (no later frame changes it).
    ``predict_window`` keeps its semantics; the caller picks which frame of the window to
    publish. A frame's score uses the flows towards up to ``long_baseline`` frames before it and,
    within L, after it; the temporal median then takes the frames whose scores stay within L.
    With the defaults (``long_baseline`` 2, ``temporal_radius`` 2): L = 0: flows towards t-1 and
    t-2 only, median over t-2..t; L = 1: also the flow towards t+1, median over t-2..t; L = 2:
    also t+2, median over t-2..t; L = 3 and 4 add t+1 and t+2 to the median. None (the default,
    offline): no bound, i.e. t+4 (frame t+2's score uses the flow towards t+4). Accuracy of each
    on the tune / validate splits: docs/geometric.md.

    ``from_settings`` also takes ``preset`` (``PRESETS``: ``fast``, the defaults, or ``accurate``).
    """

    flow_preset: str = "medium"  # OpenCV DIS preset: ultrafast | fast | medium
    flow_scale: float = 0.5  # flow, fit and scoring run on frames resized by this factor
    # explicit DIS parameters replacing the preset's (None: keep it; see DISConfig). ``medium``
    # estimates the flow at half size (finest scale 1) and upsamples it; half-size frames with
    # finest scale 0 give that flow directly, and every later step works on a quarter of the pixels.
    # The default (preset ``fast``) is ``medium`` with patch stride 4 (of 3), 16 descent (of 25)
    # and 3 refinement (of 5) iterations: about a third less flow time; ``accurate`` keeps ``medium``.
    flow_finest_scale: int | None = 0
    flow_patch_size: int | None = None
    flow_patch_stride: int | None = 4
    flow_descent_iterations: int | None = 16
    flow_refinement_iterations: int | None = 3
    score_scale: float = 1.0  # fits, scores and masks run on the flow resized by this factor
    grid_points: int = 800  # about this many flow samples on a regular grid feed the model fits
    homography_threshold: float = 2.0  # MAGSAC inlier threshold of the background homography
    consistency_threshold: float = 2.0  # forward-backward flow error above which a pixel is occluded
    # also fit a fundamental matrix: a pixel's residual is the smaller of the homography's and its
    # Sampson distance, so static structure at any depth (parallax) is background. Off by default:
    # on real video it also absorbs movers whose motion lies along the epipolar lines (docs/geometric.md)
    epipolar: bool = False
    epipolar_threshold: float = 1.0  # MAGSAC inlier threshold of the fundamental matrix
    # plane + parallax: the residual's component that static structure in front of the dominant
    # surface explains (along the epipolar line, away from the epipole's signed direction) is not
    # motion; the epipole comes from the background samples' residuals (docs/geometric.md)
    parallax: bool = True
    parallax_residual: float = 0.5  # samples with a residual of at least this many pixels locate the epipole
    parallax_angle: float = 15.0  # degrees: a sample supports an epipole when its residual points within this of it
    parallax_support: float = 0.5  # the epipole is used only if it holds in this fraction of the frame's grid cells
    # local background: a pixel's residual is at most its departure from the median residual of
    # its surroundings this many pixels away (0: off); near static structure whose depth varies
    # smoothly is explained locally, a mover smaller than the ring is not (docs/geometric.md)
    local_radius: float = 160.0
    # near the frame's edge a pixel may also be explained by the residual beyond the edge next to
    # it (the ring's samples outside the frame: near structure the edge cuts), but only where its
    # flow is at least border_flow_ratio times the background's (an object the camera follows is
    # nearly still; 0: everywhere); with local_radius 0 there is no ring and no border (docs/geometric.md)
    border_sectors: bool = True
    border_flow_ratio: float = 0.5
    motion_offset: float = 4.0  # residuals are relative to (background flow + this many pixels)
    noise_floor: float = 0.035  # lowest spread of the relative residual: keeps a well-fitted frame quiet
    lookahead: int | None = None  # frames after a frame that its result may use (None: no bound; see above)
    # a frame is also scored against the frames up to this many steps away through its chained
    # flows, raising its one-step score where the chain is reliable (to at most
    # long_baseline_cap; 1: one step only): slow movers add up over the longer baseline, flow
    # noise does not (docs/geometric.md)
    long_baseline: int = 2
    long_baseline_cap: float = 6.0  # noise units: the longer baseline raises a pixel's score to at most this
    temporal_radius: int = 2  # median of the scores of frames t-r..t+r carried to t along the flow (0: off)
    score_blur: float = 1.5  # Gaussian sigma smoothing the motion score before thresholding
    min_threshold: float = 2.0  # the score threshold never drops below this many spreads
    seed_ratio: float = 2.0  # hysteresis: a region needs a seed above this times min_threshold (or the threshold)
    min_region_fraction: float = 0.002  # regions smaller than this fraction of the frame are dropped
    # a region is kept only if its 90th-percentile score reaches this fraction of the strongest
    # region's (0: keep all): weak, slow background movers (a crowd) beside the main mover drop out
    dominant_ratio: float = 0.4
    # a region needs a seed where the frame has texture: a pixel's seed value is its score times
    # min(1, structure tensor's smaller eigenvalue / texture_floor) (0: any pixel seeds)
    texture_floor: float = 1e-3
    refine_radius: float = 32.0  # window half size of the colour guided filter snapping masks to image edges (0: off)
    refine_eps: float = 1e-4  # its regulariser (squared colour units, colours in [0, 1]): higher smooths weak edges
    refine_fraction: float = 0.4  # a region's window half size is at most this times the square root of its area
    fov_degrees: float = 60.0  # horizontal field of view when no intrinsics are given
    static_motion: float = 0.3  # median flow (pixels) below which the camera is taken as static
    min_parallax: float = 0.5  # median parallax (pixels) below which translation is unobservable

    def __post_init__(self) -> None:
        checks = (
            ("flow_scale", 0.0 < self.flow_scale <= 1.0),
            ("score_scale", 0.0 < self.score_scale <= 1.0),
            ("grid_points", self.grid_points >= 16),
            ("temporal_radius", self.temporal_radius in (0, 1, 2)),
            ("lookahead", self.lookahead is None or self.lookahead >= 0),
            ("long_baseline", self.long_baseline in range(1, MAX_LONG_BASELINE + 1)),
            ("dominant_ratio", 0.0 <= self.dominant_ratio <= 1.0),
            ("fov_degrees", 1.0 <= self.fov_degrees <= 179.0),
            ("seed_ratio", self.seed_ratio >= 1.0),
            ("min_region_fraction", 0.0 <= self.min_region_fraction < 1.0),
            ("parallax_angle", 0.0 < self.parallax_angle < 90.0),
            ("parallax_support", 0.0 < self.parallax_support <= 1.0),
        )
        for name, valid in checks:
            if not valid:
                raise ConfigError(f"geometric setting {name} is out of range: {getattr(self, name)}")
        optional = ("score_blur", "refine_radius", "texture_floor", "local_radius", "border_flow_ratio")
        unitless = (
            "parallax_angle", "parallax_support", "noise_floor", "min_threshold", "refine_eps", "refine_fraction", "texture_floor",
            "long_baseline_cap",
        )
        positive = [name for name in (*PIXEL_SETTINGS, *unitless) if name not in optional]
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ConfigError(f"geometric setting {name} must be a positive number, got {value}")
        for name in optional:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"geometric setting {name} must be >= 0, got {value}")
        self.dis_config()

    def dis_config(self) -> DISConfig:
        """The DIS settings of the flow (validated: a bad flow parameter raises ConfigError)."""
        return DISConfig(
            preset=self.flow_preset,
            scale=self.flow_scale,
            finest_scale=self.flow_finest_scale,
            patch_size=self.flow_patch_size,
            patch_stride=self.flow_patch_stride,
            descent_iterations=self.flow_descent_iterations,
            refinement_iterations=self.flow_refinement_iterations,
        )

    def at_width(self, width: int) -> GeometricConfig:
        """A copy whose pixel settings are in pixels of a frame ``width`` pixels wide."""
        factor = width / REFERENCE_WIDTH
        return replace(self, **{name: getattr(self, name) * factor for name in PIXEL_SETTINGS})

    @classmethod
    def from_settings(cls, settings: typing.Mapping[str, object]) -> GeometricConfig:
        """The defaults with ``settings`` applied; values may be strings (``"0.75"``, from a command
        line), converted to the field's type (``none`` clears an optional one). ``preset`` (a
        name of ``PRESETS``) starts from that preset instead of the defaults; the other settings
        apply on top of it. Unknown names and unconvertible values raise ConfigError."""
        settings = dict(settings)
        preset = str(settings.pop("preset", DEFAULT_PRESET)).strip().lower()
        if preset not in PRESETS:
            raise ConfigError(f"unknown geometric preset {preset!r}; known: {', '.join(PRESETS)}")
        return load(cls, PRESETS[preset] | settings, noun="geometric setting")


DEFAULT_PRESET = "fast"
PRESETS: dict[str, dict[str, object]] = {
    # the defaults, for a robot: DIS ``medium`` at half size, finest scale 0, with a cheaper patch
    # stride and fewer iterations (docs/geometric.md, Presets and speed)
    "fast": {},
    # DIS ``medium``'s own parameters: a little more accurate on new video, about 30 % slower
    "accurate": {"flow_patch_stride": None, "flow_descent_iterations": None, "flow_refinement_iterations": None},
}
