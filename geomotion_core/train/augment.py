# SPDX-License-Identifier: Apache-2.0
"""Clip-level training augmentations of the official recipe (docs/training.md, "The recipe").

Each training dataset names a profile (``augment:`` in the training YAML):

- ``tri_view`` (GOT-10k, GOT-moving, DynamicVerse in the official mixture): horizontal flip with
  p 0.5, then one view per clip: 50 % *standard* (weak colour jitter with p 0.2), 35 % *semantic*
  (strong colour jitter, grey scale, Gaussian blur, solarise), 15 % *stop* (one frame of the clip
  seen by a smoothly rotating and zooming camera with a drifting exposure; its masks become all
  zeros: camera-only motion is static).
- ``color_jitter`` (Dynamic Replica): colour jitter with p 0.3.
- ``none``.

Every random choice is drawn by ``plan(rng, ...)`` from the clip's generator (``clip_rng(seed,
epoch, index)``) into an :class:`AugmentPlan`; applying a plan is deterministic. One plan holds for
the whole clip (the same flip, colour factors and blur for every frame), so the frames stay
consistent in time and their optical flow stays meaningful. The strengths that the official
description leaves open (jitter ranges, blur sigma, the stop view's trajectory and exposure range)
are this project's choices, listed in docs/training.md.

Frames are CPU tensors ``[T, H, W, 3]`` (augmentation runs in the data-loader workers), uint8 or
float in [0, 1] (the dtype is kept); masks ``[T, H, W]``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation
from torchvision.transforms.v2 import functional as F

from geomotion_core.errors import ConfigError
from geomotion_core.train.config import AugmentConfig

PhotometricStep = tuple[str, float]  # (operation name, its parameter)
TRI_VIEWS = ("standard", "semantic", "stop")
OPENCV_CHANNELS = 510  # channels per OpenCV filter call (OpenCV allows 512; a multiple of 3)


@dataclass(frozen=True, eq=False)
class AugmentPlan:
    """Everything random about one clip's augmentation (``view``: none, jitter or a tri-view)."""

    view: str = "none"
    flip: bool = False
    photometric: tuple[PhotometricStep, ...] = ()
    reference: int | None = None  # stop view: the frame (after the flip) that every output frame shows
    homographies: np.ndarray | None = None  # stop view: [T, 3, 3] output pixel -> reference pixel
    gains: np.ndarray | None = None  # stop view: [T] exposure gains

    @property
    def camera_only(self) -> bool:
        """The frames are synthetic views of one frame: no pixel of the clip moves by itself."""
        return self.view == "stop"


# -- photometric operations -------------------------------------------------------------------------


def _blur(clip: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of a float CPU clip ``[T, 3, H, W]``, kernel about +-3 sigma (limited to the
    image), reflected borders: ``F.gaussian_blur``'s result through OpenCV's separable filter, which
    is about ten times faster on the CPU than its 2-D convolution."""
    frames, channels, height, width = clip.shape
    size = min(2 * math.ceil(3 * sigma) + 1, (min(height, width) - 1) | 1)  # odd, fits the image
    planes = clip.reshape(frames * channels, height, width).permute(1, 2, 0).numpy()  # [H, W, T*3]
    blurred = np.concatenate([
        cv2.GaussianBlur(
            np.ascontiguousarray(planes[..., start:start + OPENCV_CHANNELS]), (size, size), sigma,
            borderType=cv2.BORDER_REFLECT_101,
        )
        for start in range(0, planes.shape[-1], OPENCV_CHANNELS)
    ], axis=-1)
    return torch.from_numpy(blurred).permute(2, 0, 1).reshape(frames, channels, height, width)


def _hue(clip: torch.Tensor, shift: float) -> torch.Tensor:
    """Hue of a float CPU clip ``[T, 3, H, W]`` turned by ``shift`` (a fraction of the circle):
    ``F.adjust_hue``'s arithmetic through OpenCV's float HSV conversion, several times faster."""
    frames, _, height, width = clip.shape
    rgb = clip.permute(0, 2, 3, 1).reshape(frames * height, width, 3).numpy()  # frames stacked vertically
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)  # hue in degrees
    np.mod(hsv[..., 0] + 360.0 * shift, 360.0, out=hsv[..., 0])
    turned = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return torch.from_numpy(turned).view(frames, height, width, 3).permute(0, 3, 1, 2)


PHOTOMETRIC: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "brightness": F.adjust_brightness,
    "contrast": F.adjust_contrast,
    "saturation": F.adjust_saturation,
    "hue": _hue,
    "grayscale": lambda clip, _: F.rgb_to_grayscale(clip, num_output_channels=3),
    "blur": _blur,
    "solarize": F.solarize,
}


@dataclass(frozen=True)
class ColorJitter:
    """Colour jitter ranges: brightness, contrast and saturation factors uniform in ``[1 - x, 1 + x]``,
    a hue shift uniform in ``[-hue, hue]`` (fraction of the hue circle), applied in a random order
    (as torchvision's ``ColorJitter``)."""

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02

    def draw(self, rng: np.random.Generator) -> tuple[PhotometricStep, ...]:
        steps = [
            ("brightness", rng.uniform(1 - self.brightness, 1 + self.brightness)),
            ("contrast", rng.uniform(1 - self.contrast, 1 + self.contrast)),
            ("saturation", rng.uniform(1 - self.saturation, 1 + self.saturation)),
            ("hue", rng.uniform(-self.hue, self.hue)),
        ]
        return tuple((steps[i][0], float(steps[i][1])) for i in rng.permutation(len(steps)))


@dataclass(frozen=True)
class SemanticStyle:
    """The semantic view: strong colour jitter, then grey scale, Gaussian blur and solarisation,
    each with its own probability (``solarize_threshold`` on the [0, 1] scale)."""

    jitter: ColorJitter = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    grayscale_probability: float = 0.2
    blur_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_probability: float = 0.2
    solarize_threshold: float = 0.5

    def draw(self, rng: np.random.Generator) -> tuple[PhotometricStep, ...]:
        steps = list(self.jitter.draw(rng))
        if rng.random() < self.grayscale_probability:
            steps.append(("grayscale", 0.0))
        if rng.random() < self.blur_probability:
            steps.append(("blur", float(rng.uniform(*self.blur_sigma))))
        if rng.random() < self.solarize_probability:
            steps.append(("solarize", self.solarize_threshold))
        return tuple(steps)


# -- the stop view: a synthetic camera sweep over one frame -----------------------------------------


@dataclass(frozen=True)
class CameraSweep:
    """The stop view's camera: it rotates about its centre (yaw, pitch, roll) and zooms, moving
    smoothly (cosine ease) through the reference pose from the first to the last frame (a random
    turn of up to ``max_turn`` / ``max_roll`` degrees in all), while the exposure drifts between two
    random gains. A pure rotation makes every frame an exact homography of the reference frame
    (``K R^T K^-1``): camera motion without any independently moving pixel. The frames are zoomed
    in just enough that every output pixel sees the reference image (no border)."""

    max_turn: float = 6.0  # degrees of yaw and of pitch over the clip
    max_roll: float = 2.0  # degrees over the clip
    max_zoom: float = 0.1  # zoom (focal length gain) between 1 and 1 + this, at either end
    focal: float = 1.2  # focal length in units of the image's longer side (about 45 degrees of view)
    max_exposure: float = 0.15  # log exposure gain at either end of the clip

    def draw(
        self, rng: np.random.Generator, num_frames: int, height: int, width: int
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """The reference frame, ``[T, 3, 3]`` homographies (output pixel -> reference pixel) and
        ``[T]`` exposure gains."""
        reference = int(rng.integers(num_frames))
        turn = rng.uniform(-1.0, 1.0, size=3) * np.array([self.max_turn, self.max_turn, self.max_roll])
        angles = np.stack([-turn / 2, turn / 2])  # first and last (yaw, pitch, roll)
        zooms = 1.0 + rng.uniform(0.0, self.max_zoom, size=2)
        exposures = rng.uniform(-self.max_exposure, self.max_exposure, size=2)
        ease = (1.0 - np.cos(np.pi * np.linspace(0.0, 1.0, num_frames))) / 2.0  # smooth 0 -> 1

        def along(ends: np.ndarray) -> np.ndarray:
            return ends[0] + np.multiply.outer(ease, ends[1] - ends[0])

        homographies = sweep_homographies(along(angles), along(zooms), self.focal * max(height, width), height, width)
        return reference, homographies, np.exp(along(exposures))


def _zoom_about(centre: np.ndarray, zoom: np.ndarray) -> np.ndarray:
    """``[T, 3, 3]`` maps of output pixels to the pixels ``zoom`` times closer to ``centre``."""
    maps = np.zeros((len(zoom), 3, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0 / zoom
    maps[:, :2, 2] = centre * (1.0 - 1.0 / zoom)[:, None]
    maps[:, 2, 2] = 1.0
    return maps


def _cover_zoom(rotations: np.ndarray, centre: np.ndarray, height: int, width: int) -> float:
    """The smallest zoom (bisection, all frames at once) at which every frame's corners map inside
    the reference image."""
    corners = np.array([[0, 0, 1], [width - 1, 0, 1], [0, height - 1, 1], [width - 1, height - 1, 1]], float)
    bounds = np.array([width - 1, height - 1]) + 1e-6

    def covered(zoom: np.ndarray) -> np.ndarray:
        mapped = corners @ (rotations @ _zoom_about(centre, zoom)).transpose(0, 2, 1)  # [T, 4, 3]
        points = mapped[..., :2] / mapped[..., 2:]
        return ((points >= -1e-6) & (points <= bounds)).all(axis=(1, 2)) & (mapped[..., 2] > 0).all(axis=1)

    low, high = np.ones(len(rotations)), np.full(len(rotations), 4.0)
    if not covered(high).all():
        raise ConfigError("the stop view's camera turns too far to keep the frame covered; lower its angles")
    for _ in range(30):
        middle = (low + high) / 2
        inside = covered(middle)
        high, low = np.where(inside, middle, high), np.where(inside, low, middle)
    return float(high.max())


def sweep_homographies(angles: np.ndarray, zoom: np.ndarray, focal: float, height: int, width: int) -> np.ndarray:
    """``[T, 3, 3]`` homographies from output pixels to reference pixels (pixel-centre coordinates,
    as OpenCV) of a camera turned by ``angles`` ``[T, 3]`` (yaw, pitch, roll in degrees) and zoomed
    by ``zoom`` ``[T]`` on top of the zoom that keeps every frame covered."""
    centre = np.array([(width - 1) / 2, (height - 1) / 2])
    intrinsics = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])
    turns = Rotation.from_euler("yxz", angles, degrees=True).as_matrix()
    rotations = intrinsics @ turns.transpose(0, 2, 1) @ np.linalg.inv(intrinsics)
    cover = _cover_zoom(rotations, centre, height, width)
    return rotations @ _zoom_about(centre, cover * zoom)


def render_sweep(reference: torch.Tensor, homographies: np.ndarray, gains: np.ndarray) -> torch.Tensor:
    """``[T, 3, H, W]`` float frames in [0, 1]: ``reference`` ``[3, H, W]`` (float, [0, 1]) warped
    by each homography (bilinear) and scaled by its exposure gain."""
    height, width = reference.shape[-2:]
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pixels = torch.stack([cols, rows, torch.ones_like(cols)], dim=-1).view(-1, 3).float()  # [HW, 3] (x, y, 1)
    mapped = pixels @ torch.from_numpy(homographies).float().transpose(1, 2)  # [T, HW, 3]
    size = torch.tensor([width, height], dtype=torch.float32)
    grid = (2 * mapped[..., :2] / mapped[..., 2:] + 1) / size - 1  # align_corners=False units
    grid = grid.view(-1, height, width, 2)
    source = reference[None].expand(len(homographies), -1, -1, -1)
    frames = torch.nn.functional.grid_sample(source, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return frames.mul_(torch.from_numpy(gains).to(frames.dtype).view(-1, 1, 1, 1)).clamp_(0.0, 1.0)


# -- applying a plan --------------------------------------------------------------------------------


def apply_plan(frames: torch.Tensor, masks: torch.Tensor, plan: AugmentPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames ``[T, H, W, 3]`` and masks ``[T, H, W]`` as the plan says: the flip, then the stop
    view's sweep and the photometric steps, computed in float32 on the [0, 1] scale (integer
    frames are converted once and rounded back once, never truncated step by step)."""
    clip = frames.permute(0, 3, 1, 2)  # [T, 3, H, W], a view
    if plan.flip:
        clip, masks = F.horizontal_flip(clip), F.horizontal_flip(masks)
    if not (plan.camera_only or plan.photometric):
        return clip.permute(0, 2, 3, 1), masks
    scale = 1.0 if frames.is_floating_point() else float(torch.iinfo(frames.dtype).max)
    unit = clip.to(torch.float32) / scale
    if plan.camera_only:
        unit, masks = render_sweep(unit[plan.reference], plan.homographies, plan.gains), torch.zeros_like(masks)
    for name, value in plan.photometric:
        unit = PHOTOMETRIC[name](unit, value)
    if frames.is_floating_point():
        return unit.to(frames.dtype).permute(0, 2, 3, 1), masks
    # Not in place: grey scale leaves `unit` a broadcast view of one channel.
    return unit.mul(scale).round_().to(frames.dtype).permute(0, 2, 3, 1), masks


class ClipAugmentation(ABC):
    """A profile: :meth:`plan` draws, :meth:`__call__` draws and applies."""

    @abstractmethod
    def plan(self, rng: np.random.Generator, num_frames: int, height: int, width: int) -> AugmentPlan:
        """Everything random about one clip of ``num_frames`` frames of ``height x width``."""

    def __call__(
        self, frames: torch.Tensor, masks: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, AugmentPlan]:
        plan = self.plan(rng, *frames.shape[:3])
        return (*apply_plan(frames, masks, plan), plan)


@dataclass(frozen=True)
class NoAugmentation(ClipAugmentation):
    """Frames and masks unchanged (validation, and datasets with ``augment: none``)."""

    def plan(self, rng: np.random.Generator, num_frames: int, height: int, width: int) -> AugmentPlan:
        return AugmentPlan()


@dataclass(frozen=True)
class JitterAugmentation(ClipAugmentation):
    """The Dynamic Replica profile: colour jitter with ``probability``, no flip."""

    probability: float = 0.3
    jitter: ColorJitter = ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05)

    def plan(self, rng: np.random.Generator, num_frames: int, height: int, width: int) -> AugmentPlan:
        if rng.random() >= self.probability:
            return AugmentPlan()
        return AugmentPlan(view="jitter", photometric=self.jitter.draw(rng))


@dataclass(frozen=True)
class TriViewAugmentation(ClipAugmentation):
    """The GOT / DynamicVerse profile: flip, then a standard, semantic or stop view."""

    flip_probability: float = 0.5
    view_probabilities: tuple[float, float, float] = (0.5, 0.35, 0.15)  # standard, semantic, stop
    standard_jitter_probability: float = 0.2
    weak: ColorJitter = ColorJitter()
    semantic: SemanticStyle = SemanticStyle()
    stop: CameraSweep = CameraSweep()

    def plan(self, rng: np.random.Generator, num_frames: int, height: int, width: int) -> AugmentPlan:
        flip = bool(rng.random() < self.flip_probability)
        weights = np.asarray(self.view_probabilities, dtype=np.float64)
        view = TRI_VIEWS[int(rng.choice(len(TRI_VIEWS), p=weights / weights.sum()))]
        if view == "stop":
            reference, homographies, gains = self.stop.draw(rng, num_frames, height, width)
            return AugmentPlan(view, flip, reference=reference, homographies=homographies, gains=gains)
        if view == "semantic":
            return AugmentPlan(view, flip, self.semantic.draw(rng))
        weak = self.weak.draw(rng) if rng.random() < self.standard_jitter_probability else ()
        return AugmentPlan(view, flip, weak)


def build_augmentation(profile: str, config: AugmentConfig) -> ClipAugmentation:
    """The augmentation of a dataset's ``augment`` profile, with the probabilities of ``config``."""
    if profile == "tri_view":
        return TriViewAugmentation(
            flip_probability=config.flip_probability,
            view_probabilities=tuple(config.view_probabilities),
            standard_jitter_probability=config.standard_jitter_probability,
        )
    if profile == "color_jitter":
        return JitterAugmentation(probability=config.jitter_probability)
    if profile == "none":
        return NoAugmentation()
    raise ConfigError(f"unknown augmentation profile {profile!r}")
