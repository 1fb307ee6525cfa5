# SPDX-License-Identifier: Apache-2.0
"""The instance stage: motion masks in, object ids that persist across frames out.

Each frame's mask is split into segments (:mod:`segments`). Every remembered track is carried
into the frame: its last whole view, moved by the background's motion (mean DIS flow of the
non-moving pixels) plus its own velocity relative to the background. Segments continue the
tracks whose carried view they overlap (:mod:`association`). A segment that covers several
carried tracks that do not move alike (objects that cross) is split between them, each pixel
going to the nearest carried view; while a track is cut that way its view, velocity and place
are held and predicted, so an object hidden for a few frames is found again where it should come
out. Tracks not seen for ``memory`` frames end. Ids are never reused while the tracker lives (up
to 65535, mono16). docs/instances.md describes the steps and what was measured.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from geomotion_core.errors import InputError
from geomotion_core.flow.dis import DISConfig, DISFlow, working_size
from geomotion_core.instances.association import assign, iou_table, nearest_seed, overlap_table
from geomotion_core.instances.config import InstanceConfig
from geomotion_core.instances.motion3d import camera_centroids, camera_velocity, to_world
from geomotion_core.instances.segments import Segments, components, frame_scale, group_components, mean_motion

MAX_ID = 65535  # ids fit a mono16 image
VELOCITY_SMOOTHING = 0.5  # weight of the previous velocity estimate
FRAGMENT_SHARE = 0.5  # a segment lying at least this much in a matched track's carried view may join it
EMERGED_SHARE = 0.1  # a track claims part of a segment only with at least this share of its whole view


@dataclass
class InstanceObject:
    """One object seen in a frame, in pixels of the input frame (and camera-frame 3D when known)."""

    id: int
    box: tuple[int, int, int, int]  # x, y, width, height
    area: int
    centroid: tuple[float, float]  # x, y
    image_velocity: tuple[float, float] | None  # pixels per frame (smoothed), None when first seen
    centroid_3d: tuple[float, float, float] | None = None  # camera frame, the backend's scale
    velocity_3d: tuple[float, float, float] | None = None  # camera frame, per second, the backend's scale


@dataclass
class InstanceFrame:
    """The instance stage's result for one frame."""

    ids: np.ndarray  # [H, W] uint16, 0 background
    objects: list[InstanceObject]
    vanished: list[int] = field(default_factory=list)  # ids seen in the previous frame but not in this one
    ended: list[int] = field(default_factory=list)  # ids whose tracks ended (not seen for `memory` frames)


@dataclass
class _Track:
    id: int
    last_seen: int
    box: np.ndarray  # x0, y0, x1, y1
    centroid: np.ndarray  # x, y as last seen
    shape: np.ndarray  # bool crop of the last whole view, in pixels of the flow's size
    origin: np.ndarray  # x, y of the crop's corner, pixels of the flow's size
    held_area: float  # pixels of that view
    anchor: np.ndarray  # x, y centroid of that view
    velocity: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))  # relative to the background, px/frame
    shift: np.ndarray = field(default_factory=lambda: np.zeros(2))  # predicted motion since that view, pixels
    whole: bool = True  # the last view was whole (not cut by another object)
    world_centroid: np.ndarray | None = None
    stamp: float | None = None
    world: int = 0

    @property
    def diagonal(self) -> float:
        return float(np.hypot(*(self.box[2:] - self.box[:2])))


@dataclass
class _Frame:
    """What one update works on."""

    labels: np.ndarray  # [H, W] int32 connected components of the mask
    labels_small: np.ndarray  # [h, w] the same at the flow's size
    segments: Segments
    to_full: np.ndarray  # (x, y) pixels of the frame per pixel of the flow's size
    segment_map: np.ndarray | None = None  # [H, W] segment labels, made when needed (a split, 3D points)
    _segment_small: np.ndarray | None = None

    def segment_small(self) -> np.ndarray:
        """Segment labels at the flow's size."""
        if self._segment_small is None:
            if self.segment_map is None:
                self._segment_small = relabel(self.labels_small, self.segments.segment_of)
            else:
                size = self.labels_small.shape[::-1]
                self._segment_small = cv2.resize(self.segment_map, size, interpolation=cv2.INTER_NEAREST)
        return self._segment_small

    def per_pixel(self, table: np.ndarray) -> np.ndarray:
        """``table[segment label]`` of every pixel of the frame."""
        if self.segment_map is None:  # one look-up from the component labels
            return relabel(self.labels, table[self.segments.segment_of])
        return relabel(self.segment_map, table)

    def full_segments(self) -> np.ndarray:
        """Segment labels at the frame's size; made editable (a split changes it, and then the small map)."""
        if self.segment_map is None:
            self.segment_map = relabel(self.labels, self.segments.segment_of)
        self._segment_small = None
        return self.segment_map


class InstanceTracker:
    """Turns a stream of (frame, motion mask) into instance maps with persistent ids.

    Not thread-safe; one tracker per stream. Call :meth:`reset` when a new stream starts.
    """

    def __init__(self, config: InstanceConfig | None = None) -> None:
        self.config = config or InstanceConfig()
        self._flow = DISFlow(DISConfig(preset="ultrafast"))
        self.reset()

    def reset(self) -> None:
        """Forget every track; the next frame starts a new stream (ids start again at 1)."""
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._frame = -1
        self._gray: np.ndarray | None = None  # the previous frame, grey, at the motion's size
        self._size: tuple[int, int] | None = None  # (height, width) of this stream's frames
        self._diagonal = 1.0
        self._background = np.zeros(2)  # mean image motion of the non-moving pixels in this frame
        self._carried: list[_Track] = []  # the tracks carried into this frame, slot k at index k - 1
        self._visible: set[int] = set()  # ids seen in the previous frame
        self._crossing: set[int] = set()  # ids of tracks split from others in this frame

    def update(
        self,
        image: np.ndarray,
        mask: np.ndarray,
        *,
        stamp: float | None = None,
        points: np.ndarray | None = None,
        pose: np.ndarray | None = None,
        world: int = 0,
    ) -> InstanceFrame:
        """The instances of the next frame.

        Args:
            image: ``[H, W, 3]`` uint8 RGB frame.
            mask: ``[H, W]`` motion mask (bool, or uint8 with moving > 0).
            stamp: the frame's time in seconds (3D velocities need it).
            points: ``[H, W, 3]`` world points of the frame, when the backend gives them.
            pose: ``[4, 4]`` camera-to-world pose in the same world as ``points``.
            world: which world frame ``points`` and ``pose`` are in; velocities are only taken
                between frames of one world.
        """
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8 or mask.shape != image.shape[:2]:
            raise InputError(f"instances need a uint8 RGB frame and a mask of its size, got {image.shape} "
                             f"{image.dtype} and {mask.shape}")
        if self._size != mask.shape:
            self.reset()
            self._size = mask.shape
        gray = cv2.resize(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), self._motion_size(), interpolation=cv2.INTER_AREA)
        self._frame += 1
        backward = self._flow(gray, self._gray) if self._gray is not None else None
        self._gray = gray
        frame, carried = self._segment(mask, backward)
        self._crossing = set()
        overlap = None
        if carried is not None:
            overlap = overlap_table(frame.segment_small(), carried, frame.segments.count, len(self._carried))
            if self._split_crossings(frame, carried, overlap):
                overlap = overlap_table(frame.segment_small(), carried, frame.segments.count, len(self._carried))
        owner = self._associate(frame.segments, overlap)
        return self._finish(frame, owner, stamp, points, pose, world)

    def _motion_size(self) -> tuple[int, int]:
        """``(width, height)`` the flow is computed at: ``motion_scale`` of the frame, but never below
        the smallest side DIS takes (nor above the frame)."""
        height, width = self._size
        scale = min(1.0, max(self.config.motion_scale, self._flow.min_side / min(height, width)))
        return working_size(width, height, scale)

    def _segment(self, mask: np.ndarray, backward: np.ndarray | None) -> tuple[_Frame, np.ndarray | None]:
        """Components and their motion (the flow back to the previous frame), the background's motion,
        the tracks carried into the frame, and the segments; returns the frame and the carried slots."""
        labels, stats, centroids = components(mask)
        height, width = mask.shape
        self._diagonal = frame_scale(height, width)[1]
        small_size = working_size(width, height, self.config.flow_scale)
        to_full = np.array([width / small_size[0], height / small_size[1]])
        labels_small = cv2.resize(labels, small_size, interpolation=cv2.INTER_NEAREST)
        motion = None
        self._background = np.zeros(2)
        if backward is not None:
            motion_size = backward.shape[1::-1]
            labels_motion = cv2.resize(labels, motion_size, interpolation=cv2.INTER_NEAREST)
            motion_to_full = np.array([width / motion_size[0], height / motion_size[1]])
            motion = -mean_motion(labels_motion, backward, len(stats) - 1) * motion_to_full
            self._background = np.nan_to_num(motion[0])
        carried = apart = None
        if self._tracks:
            carried = self._carry(to_full, labels_small.shape)
            apart = self._kept_apart(labels_small, carried, len(stats) - 1)
        segments = group_components(stats, centroids, self.config, (height, width), motion, apart)
        return _Frame(labels, labels_small, segments, to_full), carried

    def _carry(self, to_full: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Every remembered track's last whole view at its predicted place, as slots at the flow's size;
        where views meet, the larger object is taken to be in front."""
        for track in self._tracks.values():
            step = self._background + np.where(np.isnan(track.velocity), 0.0, track.velocity)
            track.shift = track.shift + step
        self._carried = sorted(self._tracks.values(), key=lambda track: track.held_area)
        carried = np.zeros(size, np.uint16)
        for slot, track in enumerate(self._carried, start=1):
            paint(carried, track.shape, track.origin + np.rint(track.shift / to_full).astype(int), slot)
        return carried

    def _kept_apart(self, labels_small: np.ndarray, carried: np.ndarray, count: int) -> np.ndarray:
        """``[C, C]`` components that continue two different tracks, unless both tracks' velocities
        are known and agree: those are two objects, however alike their flow looks."""
        overlap = overlap_table(labels_small, carried, count, len(self._carried))
        pixels = overlap.sum(axis=1)[1:]
        claim = overlap[1:, 1:].argmax(axis=1)
        claimed = overlap[1:, 1:][np.arange(count), claim] * 2 > pixels  # the component lies mostly in that view
        velocities = np.array([track.velocity for track in self._carried])[claim]
        speed_limit = self.config.merge_speed * self._diagonal
        with np.errstate(invalid="ignore"):
            alike = np.linalg.norm(velocities[:, None] - velocities[None, :], axis=-1) <= speed_limit  # NaN: not alike
        return claimed[:, None] & claimed[None, :] & (claim[:, None] != claim[None, :]) & ~alike

    def _split_crossings(self, frame: _Frame, carried: np.ndarray, overlap: np.ndarray) -> bool:
        """Split each segment that covers several carried tracks, unless their velocities are known and
        agree (then they are one object now); whether any was."""
        segments = frame.segments
        if segments.count == 0:
            return False
        predicted = overlap[:, 1:].sum(axis=0)
        whole = np.array([track.held_area for track in self._carried]) / np.prod(frame.to_full)  # flow-size pixels
        needed = np.maximum(np.maximum(self.config.split_share * predicted, EMERGED_SHARE * whole), 1)
        owner = overlap[1:, 1:].argmax(axis=0) + 1
        speed_limit = self.config.merge_speed * self._diagonal
        split = False
        for segment in range(1, segments.count + 1):
            share = overlap[segment, 1:] >= needed
            claims = np.flatnonzero(share & (owner == segment))
            if len(claims) < 2:
                continue
            velocities = np.array([self._carried[k].velocity for k in claims])
            if np.isfinite(velocities).all() and not _move_differently(velocities, speed_limit):
                continue  # they move together: one object now
            self._crossing.update(self._carried[k].id for k in claims)
            _split(segments, frame.full_segments(), carried, segment, claims + 1)
            split = True
        return split

    def _associate(self, segments: Segments, overlap: np.ndarray | None) -> np.ndarray:
        """The track id of each segment label (index 0: background, 0); new tracks are born here."""
        owner = np.zeros(segments.count + 1, np.int64)
        matched: set[int] = set()
        if overlap is not None:
            for row, col in assign(1.0 - iou_table(overlap), 1.0 - self.config.min_iou):
                owner[row + 1] = self._carried[col].id
                matched.add(self._carried[col].id)
        waiting = [track for track in self._tracks.values() if track.id not in matched]
        free = np.flatnonzero(owner[1:] == 0) + 1
        free = free[segments.area[free] > 0]
        if waiting and len(free):
            for row, col in assign(self._distance_costs(waiting, segments, free), 1.0):
                owner[free[row]] = waiting[col].id
        if overlap is not None:
            self._join_fragments(owner, overlap, segments)
        for segment in np.flatnonzero(owner[1:] == 0) + 1:
            if segments.area[segment] > 0:
                owner[segment] = self._new_id()
        return owner

    def _join_fragments(self, owner: np.ndarray, overlap: np.ndarray, segments: Segments) -> None:
        """Unmatched segments lying mostly in a matched track's carried view and moving like it join it."""
        sizes = overlap.sum(axis=1)
        speed_limit = self.config.merge_speed * self._diagonal
        for segment in np.flatnonzero(owner[1:] == 0) + 1:
            slot = int(overlap[segment, 1:].argmax())
            track_id = self._carried[slot].id
            if overlap[segment, slot + 1] < FRAGMENT_SHARE * sizes[segment] or track_id not in owner:
                continue
            partner = np.flatnonzero(owner == track_id)[0]
            difference = np.linalg.norm(segments.motion[segment] - segments.motion[partner])
            if not difference > speed_limit:  # NaN (motion unknown) joins
                owner[segment] = track_id

    def _distance_costs(self, tracks: list[_Track], segments: Segments, free: np.ndarray) -> np.ndarray:
        """Distances ``[len(free), len(tracks)]`` of segments from the tracks' predicted centroids, in
        gate radii (>= 1: no match)."""
        predicted = np.array([track.anchor + track.shift for track in tracks])
        diagonals = np.array([track.diagonal for track in tracks])
        radius = np.maximum(self.config.gate * diagonals, self.config.merge_gap * self._diagonal)
        return np.linalg.norm(segments.centroid[free][:, None] - predicted[None], axis=-1) / radius[None]

    def _new_id(self) -> int:
        while self._next_id in self._tracks:
            self._next_id = self._next_id % MAX_ID + 1
        new = self._next_id
        self._next_id = self._next_id % MAX_ID + 1
        return new

    def _finish(self, frame: _Frame, owner: np.ndarray, stamp: float | None, points: np.ndarray | None,
                pose: np.ndarray | None, world: int) -> InstanceFrame:
        """Update the tracks from this frame's assignment; build the frame's result."""
        segments = frame.segments
        visible = sorted({int(track_id) for track_id in owner[1:] if track_id})
        slot_of = {track_id: slot for slot, track_id in enumerate(visible, start=1)}
        segment_slot = np.array([slot_of.get(int(track_id), 0) for track_id in owner], np.int32)
        area, box, centroid = _slot_stats(segments, segment_slot, len(visible))
        ids = frame.per_pixel(np.array([0, *visible], np.uint16)[segment_slot])
        slot_small = relabel(frame.segment_small(), segment_slot.astype(np.uint16))
        centres_3d = None
        if points is not None and pose is not None:
            centres_3d = camera_centroids(frame.per_pixel(segment_slot), points, pose, len(visible))
        objects = []
        for slot, track_id in enumerate(visible, start=1):
            lo = np.floor(box[slot, :2] / frame.to_full).astype(int)
            hi = np.ceil(box[slot, 2:] / frame.to_full).astype(int)
            view = slot_small[lo[1] : hi[1], lo[0] : hi[0]] == slot
            track = self._tracks.get(track_id)
            if track is None:
                track = self._tracks[track_id] = _Track(track_id, self._frame, box[slot], centroid[slot], view, lo,
                                                        area[slot], centroid[slot])
            else:
                self._observe(track, view, lo, area[slot], centroid[slot])
            track.last_seen, track.box, track.centroid = self._frame, box[slot], centroid[slot]
            centre_3d = None if centres_3d is None else centres_3d[slot]
            objects.append(self._object(track, int(area[slot]), centre_3d, stamp, pose, world))
        ended = [track_id for track_id, track in self._tracks.items()
                 if self._frame - track.last_seen > self.config.memory]
        for track_id in ended:
            del self._tracks[track_id]
        vanished = sorted(self._visible - set(visible))
        self._visible = set(visible)
        return InstanceFrame(ids, objects, vanished, sorted(ended))

    def _observe(self, track: _Track, view: np.ndarray, origin: np.ndarray, area: float, centroid: np.ndarray) -> None:
        """A seen track's velocity and whole view; while it is cut by a crossing both are held and
        its place is predicted (its pixels then are partly guessed)."""
        whole = track.id not in self._crossing
        if whole and track.whole and track.last_seen == self._frame - 1:
            latest = centroid - track.anchor - self._background
            finite = np.isfinite(track.velocity).all()
            smoothed = VELOCITY_SMOOTHING * track.velocity + (1 - VELOCITY_SMOOTHING) * latest
            track.velocity = smoothed if finite else latest
        if whole:
            track.shape, track.origin, track.held_area, track.anchor = view, origin, area, centroid
            track.shift = np.zeros(2)
        track.whole = whole

    def _object(self, track: _Track, area: int, centre_3d: np.ndarray | None, stamp: float | None,
                pose: np.ndarray | None, world: int) -> InstanceObject:
        x0, y0, x1, y1 = (int(value) for value in track.box)
        velocity = track.velocity + self._background
        result = InstanceObject(track.id, (x0, y0, x1 - x0, y1 - y0), area,
                                (float(track.centroid[0]), float(track.centroid[1])),
                                (float(velocity[0]), float(velocity[1])) if np.isfinite(velocity).all() else None)
        if centre_3d is None or pose is None or not np.isfinite(centre_3d).all():
            track.world_centroid = None
            return result
        result.centroid_3d = tuple(float(value) for value in centre_3d)
        world_centroid = to_world(centre_3d, pose)
        if (track.world_centroid is not None and track.world == world and stamp is not None and track.stamp is not None
                and stamp > track.stamp):
            moved = camera_velocity(track.world_centroid, world_centroid, stamp - track.stamp, pose)
            result.velocity_3d = tuple(float(value) for value in moved)
        track.world_centroid, track.stamp, track.world = world_centroid, stamp, world
        return result


def _split(segments: Segments, segment_map: np.ndarray, carried: np.ndarray, segment: int, slots: np.ndarray) -> None:
    """Split ``segment`` in place between carried ``slots``: each pixel to the nearest carried view
    (``carried`` at the flow's size, read at the frame's size within the segment's box)."""
    x0, y0, x1, y1 = segments.box[segment].astype(int)
    crop = segment_map[y0:y1, x0:x1]
    region = crop == segment
    carried_crop = nearest_crop(carried, segment_map.shape, (x0, y0, x1, y1))
    claimed = np.zeros(int(max(carried_crop.max(initial=0), slots.max())) + 1, bool)
    claimed[slots] = True
    seeds = np.where(region & claimed[carried_crop], carried_crop, 0)
    parts = nearest_seed(region, seeds)
    labels = [segment] + [segments.count + k for k in range(1, len(slots))]
    stats = []
    for slot, label in zip(slots, labels):
        inside = parts == slot
        crop[inside] = label
        moments = cv2.moments(inside.view(np.uint8), binaryImage=True)
        if moments["m00"] > 0:
            x, y, width, height = cv2.boundingRect(inside.view(np.uint8))
            stats.append((moments["m00"], [x + x0, y + y0, x + x0 + width, y + y0 + height],
                          [moments["m10"] / moments["m00"] + x0, moments["m01"] / moments["m00"] + y0]))
        else:
            stats.append((0, [0, 0, 0, 0], [np.nan, np.nan]))
    areas, boxes, centres = (np.array(column, np.float64) for column in zip(*stats))
    motion = np.repeat(segments.motion[segment][None], len(slots) - 1, axis=0)
    segments.area[segment], segments.box[segment], segments.centroid[segment] = areas[0], boxes[0], centres[0]
    segments.extend(areas[1:], boxes[1:], centres[1:], motion)


def _slot_stats(segments: Segments, segment_slot: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area, box and centroid of each slot 1..count, from the segments it is made of."""
    area = np.bincount(segment_slot, weights=segments.area, minlength=count + 1)
    weighted = np.nan_to_num(segments.centroid) * segments.area[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = [np.bincount(segment_slot, weights=weighted[:, axis], minlength=count + 1) for axis in (0, 1)]
        centroid = np.stack(sums, axis=1) / area[:, None]
    box = np.empty((count + 1, 4))
    box[:, :2], box[:, 2:] = np.inf, -np.inf
    present = segments.area > 0
    for axis in (0, 1):
        np.minimum.at(box[:, axis], segment_slot[present], segments.box[present, axis])
        np.maximum.at(box[:, axis + 2], segment_slot[present], segments.box[present, axis + 2])
    return area, box, centroid


def nearest_crop(small: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """The box ``x0, y0, x1, y1`` of ``small`` resized to ``size`` (height, width) by nearest neighbour
    (OpenCV's INTER_NEAREST), without resizing the rest."""
    x0, y0, x1, y1 = box
    rows = np.minimum(np.arange(y0, y1) * small.shape[0] // size[0], small.shape[0] - 1)
    cols = np.minimum(np.arange(x0, x1) * small.shape[1] // size[1], small.shape[1] - 1)
    return small.take(rows, axis=0).take(cols, axis=1)


def relabel(labels: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[labels]`` for a label map; OpenCV's look-up table when the labels fit 8 bits (faster)."""
    if len(table) <= 256 and table.dtype in (np.uint8, np.uint16, np.int16, np.int32, np.float32):
        padded = np.zeros(256, table.dtype)
        padded[: len(table)] = table
        return cv2.LUT(labels.astype(np.uint8), padded)
    return np.take(table, labels)


def paint(canvas: np.ndarray, shape: np.ndarray, origin: np.ndarray, value: int) -> None:
    """Set ``canvas`` to ``value`` where the bool ``shape``, placed with its corner at ``origin`` (x, y), is set."""
    height, width = canvas.shape
    x0, y0 = int(origin[0]), int(origin[1])
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + shape.shape[0], height), min(x0 + shape.shape[1], width)
    if bottom > top and right > left:
        inside = shape[top - y0 : bottom - y0, left - x0 : right - x0]
        canvas[top:bottom, left:right][inside] = value


def _move_differently(velocities: np.ndarray, limit: float) -> bool:
    """Whether some two of these track velocities differ by more than ``limit``."""
    spread = np.linalg.norm(velocities[:, None] - velocities[None, :], axis=-1)
    return bool((spread > limit).any())
