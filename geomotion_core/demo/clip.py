# SPDX-License-Identifier: Apache-2.0
"""Render the demo clip: a procedural-noise world seen by a panning, zooming, rolling camera, with
independently moving textured objects. Each object moves in the world, so it moves relative to the
background in every frame; its ground-truth mask is its warped alpha, exact by construction.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from geomotion_core.io.images import write_png
from geomotion_core.io.palette import write_indexed_png

INSTANCE_TRUTH = "ground_truth_instances"  # write_clip's folder of per-object ground truth


@dataclass(frozen=True)
class DemoClipConfig:
    """Size and motion of the synthetic clip."""

    frames: int = 24
    width: int = 320
    height: int = 240
    objects: int = 2
    pan_pixels: float = 60.0  # camera translation over the clip, world pixels
    zoom: float = 0.15  # relative zoom-in over the clip
    roll_degrees: float = 4.0  # camera roll over the clip
    object_speed: float = 3.5  # world pixels per frame
    seed: int = 7


@dataclass
class DemoClip:
    """Rendered frames and their exact ground truth."""

    frames: np.ndarray  # [N, H, W, 3] uint8 RGB
    masks: np.ndarray  # [N, H, W] bool: pixels of independently moving objects
    instances: np.ndarray  # [N, H, W] uint8: which object (1, 2, ...) each moving pixel shows, 0 elsewhere
    homographies: np.ndarray  # [N, 3, 3] world -> image of each frame


def noise_texture(
    rng: np.random.Generator, height: int, width: int, base_cells: int = 4, octaves: int = 6, persistence: float = 0.75
) -> np.ndarray:
    """Multi-octave value noise ``[height, width, 3]`` in [0, 1], each channel independent."""
    import cv2

    texture = np.zeros((height, width, 3), np.float32)
    total = 0.0
    for octave in range(octaves):
        cells = base_cells * 2**octave
        grid = rng.random((cells, max(2, cells * width // height), 3), dtype=np.float32)
        weight = persistence**octave
        texture += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_LINEAR)
        total += weight
    texture /= total
    low, high = np.percentile(texture, (1, 99), axis=(0, 1))
    return np.clip((texture - low) / (high - low), 0.0, 1.0)


def camera_homography(t: float, config: DemoClipConfig, world_size: tuple[int, int]) -> np.ndarray:
    """World -> image homography at clip time ``t`` in [0, 1]: pan, zoom and roll about the centre."""
    world_h, world_w = world_size
    angle = np.deg2rad(config.roll_degrees * t)
    scale = 1.0 + config.zoom * t
    centre = np.array([world_w / 2 + config.pan_pixels * t, world_h / 2 + 0.3 * config.pan_pixels * np.sin(np.pi * t)])
    to_origin = np.array([[1, 0, -centre[0]], [0, 1, -centre[1]], [0, 0, 1]])
    rotate_scale = np.array([[scale * np.cos(angle), -scale * np.sin(angle), 0],
                             [scale * np.sin(angle), scale * np.cos(angle), 0], [0, 0, 1]])
    to_image = np.array([[1, 0, config.width / 2], [0, 1, config.height / 2], [0, 0, 1]])
    perspective = np.array([[1, 0, 0], [0, 1, 0], [2e-4 * t, 1e-4 * t, 1]])  # a slight tilt
    return to_image @ perspective @ rotate_scale @ to_origin


def object_sprite(rng: np.random.Generator, radius_x: int, radius_y: int) -> tuple[np.ndarray, np.ndarray]:
    """A textured ellipse: colour ``[h, w, 3]`` float and alpha ``[h, w]`` float in {0, 1}."""
    height, width = 2 * radius_y + 1, 2 * radius_x + 1
    yy, xx = np.mgrid[-radius_y : radius_y + 1, -radius_x : radius_x + 1]
    alpha = ((xx / radius_x) ** 2 + (yy / radius_y) ** 2 <= 1.0).astype(np.float32)
    tint = rng.random(3, dtype=np.float32)
    colour = 0.6 * noise_texture(rng, height, width, base_cells=3, octaves=4) + 0.4 * tint
    return colour, alpha


def render_clip(config: DemoClipConfig = DemoClipConfig()) -> DemoClip:
    """Render the clip deterministically from ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    world_h, world_w = 2 * config.height, 2 * config.width
    world = noise_texture(rng, world_h, world_w)
    sprites = [object_sprite(rng, int(rng.integers(22, 34)), int(rng.integers(16, 26))) for _ in range(config.objects)]
    starts = np.array([[world_w / 2 - 70 + 140 * i, world_h / 2 - 30 + 60 * i] for i in range(config.objects)]).reshape(-1, 2)
    headings = rng.uniform(0, 2 * np.pi, config.objects)
    turns = headings[None, :] + 0.8 * np.sin(np.arange(config.frames) / 6.0)[:, None]
    steps = config.object_speed * np.arange(config.frames)[:, None, None]
    centres = starts[None] + steps * np.stack([np.cos(turns), np.sin(turns)], axis=-1)
    return render_scene(world, sprites, centres, config)


def render_scene(world: np.ndarray, sprites: list[tuple[np.ndarray, np.ndarray]], centres: np.ndarray,
                 config: DemoClipConfig) -> DemoClip:
    """Film ``world`` with ``sprites`` pasted at ``centres`` ``[frames, objects, 2]`` (world x, y), later
    sprites in front of earlier ones, through the camera motion of ``config``."""
    import cv2

    frame_count, object_count = centres.shape[:2]
    world_h, world_w = world.shape[:2]
    size = (config.width, config.height)
    frames = np.empty((frame_count, config.height, config.width, 3), np.uint8)
    masks = np.empty((frame_count, config.height, config.width), bool)
    instances = np.zeros((frame_count, config.height, config.width), np.uint8)
    homographies = np.empty((frame_count, 3, 3))
    for index in range(frame_count):
        scene = world.copy()
        cover = np.zeros((world_h, world_w), np.float32)
        visible = np.zeros((object_count, world_h, world_w), np.float32)  # what each object shows of itself
        for number, ((colour, alpha), centre) in enumerate(zip(sprites, centres[index])):
            x, y = centre.astype(int)
            h, w = alpha.shape
            top, left = y - h // 2, x - w // 2
            region = (slice(top, top + h), slice(left, left + w))
            scene[region] = scene[region] * (1 - alpha[..., None]) + colour * alpha[..., None]
            cover[region] = np.maximum(cover[region], alpha)
            visible[:, region[0], region[1]] *= 1 - alpha
            visible[number][region] = alpha
        homography = camera_homography(index / max(frame_count - 1, 1), config, (world_h, world_w))
        frames[index] = np.clip(cv2.warpPerspective(scene, homography, size, flags=cv2.INTER_LINEAR) * 255, 0, 255).round()
        masks[index] = cv2.warpPerspective(cover, homography, size, flags=cv2.INTER_LINEAR) > 0.5
        if object_count:
            shown = np.stack([cv2.warpPerspective(layer, homography, size, flags=cv2.INTER_LINEAR) for layer in visible])
            instances[index] = np.where(masks[index], shown.argmax(axis=0) + 1, 0)
        homographies[index] = homography
    return DemoClip(frames, masks, instances, homographies)


def render_crossing(config: DemoClipConfig = DemoClipConfig(), offset: float = 0.0) -> DemoClip:
    """Two objects on straight paths that cross mid-clip, the larger one (2) in front.

    ``offset`` (world pixels) separates the two paths vertically: 0 hides the smaller object
    completely behind the larger one for a few frames; the front object covers part of it up to
    an offset of about 40.
    """
    rng = np.random.default_rng(config.seed)
    world_h, world_w = 2 * config.height, 2 * config.width
    world = noise_texture(rng, world_h, world_w)
    sprites = [object_sprite(rng, 18, 12), object_sprite(rng, 32, 24)]
    middle = (config.frames - 1) / 2
    travel = config.object_speed * (np.arange(config.frames) - middle)
    centre = np.array([world_w / 2, world_h / 2])
    centres = np.stack([
        np.stack([centre[0] + travel, np.full_like(travel, centre[1] + offset / 2)], axis=1),
        np.stack([centre[0] - travel, np.full_like(travel, centre[1] - offset / 2)], axis=1),
    ], axis=1)
    return render_scene(world, sprites, centres, config)


def write_clip(clip: DemoClip, folder: Path) -> tuple[Path, Path]:
    """Write ``folder/frames/%05d.png``, ``folder/ground_truth/%05d.png`` (0/255) and
    ``folder/ground_truth_instances/%05d.png`` (object ids, DAVIS 2017 palette); returns the first two folders."""
    frames_dir, masks_dir = Path(folder) / "frames", Path(folder) / "ground_truth"
    instances_dir = Path(folder) / INSTANCE_TRUTH
    for directory in (frames_dir, masks_dir, instances_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for index, (frame, mask, objects) in enumerate(zip(clip.frames, clip.masks, clip.instances)):
        write_png(frames_dir / f"{index:05d}.png", frame)
        write_png(masks_dir / f"{index:05d}.png", mask.astype(np.uint8) * 255)
        write_indexed_png(instances_dir / f"{index:05d}.png", objects)
    return frames_dir, masks_dir
