"""The instance stage: motion masks in, object ids that persist across frames out.

Each frame's mask is split into segments (:mod:`segments`); DIS flow from this frame back to the
previous one carries the previous instance map into this frame; segments continue the tracks
they overlap (:mod:`association`). One segment that covers several carried tracks which move
differently (objects that cross) is split between them, each pixel going to the nearest carried
track; segments that move like the track they overlap join it. Tracks not seen for ``memory``
frames end. Ids are never reused while the tracker lives (up to 65535, the mono16 range).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from geomotion_core.errors import InputError
from geomotion_core.flow.dis import DISConfig, DISFlow
from geomotion_core.instances.association import assign, iou_table, nearest_seed, overlap_table
from geomotion_core.instances.config import InstanceConfig
from geomotion_core.instances.motion3d import camera_centroids, camera_velocity, to_world
from geomotion_core.instances.segments import Segments, components, frame_scale, group_components, mean_motion

MAX_ID = 65535  # ids fit a mono16 image
VELOCITY_SMOOTHING = 0.5  # weight of the previous velocity estimate
FRAGMENT_SHARE = 0.5
WHOLE_CHANGE = 0.1  # a track split from another is still seen whole while its area changes less than this  # a segment that lies at least this much in a matched track's warped mask may join it


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
    centroid: np.ndarray  # x, y
    velocity: np.ndarray  # centroid pixels per frame relative to the background (smoothed), NaN when unknown
    shape: np.ndarray  # bool crop of the last whole view of the object, at the flow's size
    origin: np.ndarray  # x, y of the crop in the flow's pixels
    held_area: float  # pixels of that view
    whole: bool = True  # the last view was whole (not cut by another object)
    shape_shift: np.ndarray = field(default_factory=lambda: np.zeros(2))  # predicted motion since the shape was seen
    drift: np.ndarray = field(default_factory=lambda: np.zeros(2))  # predicted motion since the track was seen
    world_centroid: np.ndarray | None = None
    stamp: float | None = None
    world: int = 0

    @property
    def diagonal(self) -> float:
        return float(np.hypot(*(self.box[2:] - self.box[:2])))


class InstanceTracker:
    """Turns a stream of (frame, motion mask) into instance maps with persistent ids.

    Not thread-safe; one tracker per stream. Call :meth:`reset` when a new stream starts.
    """

    def __init__(self, config: InstanceConfig | None = None) -> None:
        self.config = config or InstanceConfig()
        self._flow = DISFlow(DISConfig(preset="ultrafast", scale=self.config.flow_scale))
        self.reset()

    def reset(self) -> None:
        """Forget every track; the next frame starts a new stream (ids start again at 1)."""
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1
        self._frame = -1
        self._gray: np.ndarray | None = None
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
            raise InputError(f"instances need a uint8 RGB frame and a mask of its size, got {image.shape} {image.dtype} "
                             f"and {mask.shape}")
        self._frame += 1
        gray = self._flow.prepare(image)
        if self._gray is not None and self._gray.shape != gray.shape:
            self.reset()
            self._frame = 0
        backward = self._flow(gray, self._gray) if self._gray is not None else None
        self._gray = gray
        labels, stats, centroids = components(mask)
        height, width = mask.shape
        self._diagonal = frame_scale(height, width)[1]
        small_size = (gray.shape[1], gray.shape[0])
        to_full = np.array([width / small_size[0], height / small_size[1]])
        labels_small = cv2.resize(labels, small_size, interpolation=cv2.INTER_NEAREST)
        motion = None
        self._background = np.zeros(2)
        if backward is not None:
            motion = -mean_motion(labels_small, backward, len(stats) - 1)[0] * to_full
            self._background = np.nan_to_num(motion[0])
        segments = group_components(labels, stats, centroids, self.config, motion)
        segment_map = segments.segment_of[labels]
        self._predict_motion()
        carried = self._carry(to_full, labels_small.shape) if self._tracks else None
        self._crossing = set()
        if carried is not None:
            self._split_crossings(segments, segment_map, carried, small_size)
        segment_small = cv2.resize(segment_map, small_size, interpolation=cv2.INTER_NEAREST)
        segment_motion = None
        if backward is not None:
            segment_motion = -mean_motion(segment_small, backward, segments.count)[0] * to_full
        owner = self._associate(segments, segment_small, segment_motion, carried)
        return self._finish(segments, segment_map, segment_small, owner, to_full, stamp, points, pose, world)

    def _predict_motion(self) -> None:
        """Move every track's prediction by this frame's background motion plus its own velocity."""
        for track in self._tracks.values():
            step = self._background + np.nan_to_num(track.velocity)
            track.shape_shift = track.shape_shift + step
            track.drift = track.drift + step

    def _carry(self, to_full: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Every remembered track's last whole view at its predicted place in this frame, as slots
        (pixels of the flow's size); where views meet, the larger object is taken to be in front."""
        self._carried = sorted(self._tracks.values(), key=lambda track: track.held_area)
        carried = np.zeros(size, np.uint16)
        for slot, track in enumerate(self._carried, start=1):
            paint(carried, track.shape, track.origin + np.rint(track.shape_shift / to_full).astype(int), slot)
        return carried

    def _split_crossings(self, segments: Segments, segment_map: np.ndarray, carried: np.ndarray, small_size: tuple[int, int]) -> None:
        """Split, in place, each segment that covers several carried tracks that move differently."""
        tracks = self._carried
        if segments.count == 0:
            return
        segment_small = cv2.resize(segment_map, small_size, interpolation=cv2.INTER_NEAREST)
        overlap = overlap_table(segment_small, carried, segments.count, len(tracks))
        predicted = overlap[:, 1:].sum(axis=0)
        owner = overlap[1:, 1:].argmax(axis=0) + 1
        speed_limit = self.config.merge_speed * self._diagonal
        carried_full = None
        for segment in range(1, segments.count + 1):
            share = overlap[segment, 1:] >= np.maximum(self.config.split_share * predicted, 1)
            claims = np.flatnonzero(share & (owner == segment))
            velocities = np.array([tracks[slot].velocity for slot in claims])
            if len(claims) < 2 or not _move_differently(velocities, speed_limit):
                continue
            if carried_full is None:
                carried_full = cv2.resize(carried, segment_map.shape[::-1], interpolation=cv2.INTER_NEAREST)
            self._crossing.update(tracks[slot].id for slot in claims)
            self._split(segments, segment_map, carried_full, segment, claims + 1)

    def _split(self, segments: Segments, segment_map: np.ndarray, carried_full: np.ndarray, segment: int,
               slots: np.ndarray) -> None:
        x0, y0, x1, y1 = segments.box[segment].astype(int)
        window = (slice(y0, y1), slice(x0, x1))
        region = segment_map[window] == segment
        seeds = np.where(region & np.isin(carried_full[window], slots), carried_full[window], 0)
        parts = nearest_seed(region, seeds)
        labels = [segment] + [segments.count + k for k in range(1, len(slots))]
        crop = segment_map[window]
        stats = []
        for slot, label in zip(slots, labels):
            inside = parts == slot
            crop[inside] = label
            ys, xs = np.nonzero(inside)
            if len(xs):
                stats.append((len(xs), [xs.min() + x0, ys.min() + y0, xs.max() + x0 + 1, ys.max() + y0 + 1],
                              [xs.mean() + x0, ys.mean() + y0]))
            else:
                stats.append((0, [0, 0, 0, 0], [np.nan, np.nan]))
        areas, boxes, centres = (np.array(column, np.float64) for column in zip(*stats))
        segments.area = np.concatenate([segments.area, areas[1:]])
        segments.box = np.concatenate([segments.box, boxes[1:]])
        segments.centroid = np.concatenate([segments.centroid, centres[1:]])
        segments.area[segment], segments.box[segment], segments.centroid[segment] = areas[0], boxes[0], centres[0]

    def _associate(self, segments: Segments, segment_small: np.ndarray, segment_motion: np.ndarray | None,
                   carried: np.ndarray | None) -> np.ndarray:
        """The track id of each segment label (index 0: background, 0); new tracks are born here."""
        owner = np.zeros(segments.count + 1, np.int64)
        matched: set[int] = set()
        overlap = None
        speed_limit = self.config.merge_speed * self._diagonal
        if carried is not None:
            tracks = self._carried
            overlap = overlap_table(segment_small, carried, segments.count, len(tracks))
            iou = iou_table(overlap)
            for row, col in assign(1.0 - iou, 1.0 - self.config.min_iou):
                owner[row + 1] = tracks[col].id
                matched.add(tracks[col].id)
        waiting = [track for track in self._tracks.values() if track.id not in matched]
        free = np.flatnonzero(owner[1:] == 0) + 1
        free = free[segments.area[free] > 0]
        if waiting and len(free):
            cost = np.array([[self._distance_cost(track, segments, segment) for track in waiting] for segment in free])
            for row, col in assign(cost, 1.0):
                owner[free[row]] = waiting[col].id
        if overlap is not None:
            self._join_fragments(owner, overlap, segment_motion, speed_limit, self._carried)
        for segment in np.flatnonzero(owner[1:] == 0) + 1:
            if segments.area[segment] > 0:
                owner[segment] = self._new_id()
        return owner

    def _join_fragments(self, owner: np.ndarray, overlap: np.ndarray, segment_motion: np.ndarray | None,
                        speed_limit: float, tracks: list[_Track]) -> None:
        """Unmatched segments that lie mostly in a matched track's warped mask and move like it join it."""
        areas = overlap[:, :].sum(axis=1)
        for segment in np.flatnonzero(owner[1:] == 0) + 1:
            slot = int(overlap[segment, 1:].argmax())
            track_id = tracks[slot].id
            if overlap[segment, slot + 1] < FRAGMENT_SHARE * areas[segment] or track_id not in owner:
                continue
            partners = np.flatnonzero(owner == track_id)
            if segment_motion is None or np.linalg.norm(segment_motion[segment] - segment_motion[partners[0]]) <= speed_limit:
                owner[segment] = track_id

    def _distance_cost(self, track: _Track, segments: Segments, segment: int) -> float:
        """Distance of a segment from a track's predicted centroid, in gate radii (>= 1: no match)."""
        predicted = track.centroid + track.drift
        radius = max(self.config.gate * track.diagonal, self.config.merge_gap * self._diagonal)
        return float(np.linalg.norm(segments.centroid[segment] - predicted) / radius)

    def _new_id(self) -> int:
        while self._next_id in self._tracks:
            self._next_id = self._next_id % MAX_ID + 1
        new = self._next_id
        self._next_id = self._next_id % MAX_ID + 1
        return new

    def _finish(self, segments: Segments, segment_map: np.ndarray, segment_small: np.ndarray, owner: np.ndarray,
                to_full: np.ndarray, stamp: float | None, points: np.ndarray | None, pose: np.ndarray | None,
                world: int) -> InstanceFrame:
        """Update the tracks from this frame's assignment; build the frame's result."""
        visible = sorted({int(track_id) for track_id in owner[1:] if track_id})
        slot_of = {track_id: slot for slot, track_id in enumerate(visible, start=1)}
        segment_slot = np.array([slot_of.get(int(track_id), 0) for track_id in owner], np.int64)
        area = np.bincount(segment_slot, weights=segments.area, minlength=len(visible) + 1)
        centroid = np.stack([np.bincount(segment_slot, weights=np.nan_to_num(segments.centroid[:, axis]) * segments.area,
                                         minlength=len(visible) + 1) for axis in (0, 1)], axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            centroid /= area[:, None]
        box = np.empty((len(visible) + 1, 4))
        box[:, :2], box[:, 2:] = np.inf, -np.inf
        present = segments.area > 0
        np.minimum.at(box[:, 0], segment_slot[present], segments.box[present, 0])
        np.minimum.at(box[:, 1], segment_slot[present], segments.box[present, 1])
        np.maximum.at(box[:, 2], segment_slot[present], segments.box[present, 2])
        np.maximum.at(box[:, 3], segment_slot[present], segments.box[present, 3])
        slot_of_segment = segment_slot.astype(np.uint16)
        ids = np.array([0, *visible], np.uint16)[slot_of_segment][segment_map]
        centres_3d = None
        if points is not None and pose is not None:
            centres_3d = camera_centroids(slot_of_segment[segment_map], points, pose, len(visible))
        slot_small = slot_of_segment[segment_small]
        objects = []
        for slot, track_id in enumerate(visible, start=1):
            track = self._tracks.get(track_id)
            lo = np.floor(box[slot, :2] / to_full).astype(int)
            hi = np.ceil(box[slot, 2:] / to_full).astype(int)
            view = slot_small[lo[1] : hi[1], lo[0] : hi[0]] == slot
            if track is None:
                track = self._tracks[track_id] = _Track(track_id, self._frame, box[slot], centroid[slot], np.full(2, np.nan),
                                                        view, lo, area[slot])
            else:
                whole = track_id not in self._crossing or abs(area[slot] / track.held_area - 1) <= WHOLE_CHANGE
                if whole and track.whole and track.last_seen == self._frame - 1:
                    track.velocity = _smoothed(track.velocity, centroid[slot] - track.centroid - self._background)
                if whole:
                    track.shape, track.origin, track.held_area = view, lo, area[slot]
                    track.shape_shift = np.zeros(2)
                track.whole = whole
            track.last_seen, track.box, track.centroid, track.drift = self._frame, box[slot], centroid[slot], np.zeros(2)
            objects.append(self._object(track, int(area[slot]), self._background,
                                        None if centres_3d is None else centres_3d[slot], stamp, pose, world))
        ended = [track_id for track_id, track in self._tracks.items() if self._frame - track.last_seen > self.config.memory]
        for track_id in ended:
            del self._tracks[track_id]
        vanished = sorted(self._visible - set(visible))
        self._visible = set(visible)
        return InstanceFrame(ids, objects, vanished, sorted(ended))

    @staticmethod
    def _object(track: _Track, area: int, background: np.ndarray, centre_3d: np.ndarray | None, stamp: float | None,
                pose: np.ndarray | None, world: int) -> InstanceObject:
        x0, y0, x1, y1 = (int(value) for value in track.box)
        result = InstanceObject(track.id, (x0, y0, x1 - x0, y1 - y0), area,
                                (float(track.centroid[0]), float(track.centroid[1])),
                                _pair(track.velocity + background) if np.isfinite(track.velocity).all() else None)
        if centre_3d is None or pose is None or not np.isfinite(centre_3d).all():
            track.world_centroid = None
            return result
        result.centroid_3d = tuple(float(value) for value in centre_3d)
        world_centroid = to_world(centre_3d, pose)
        if (track.world_centroid is not None and track.world == world and stamp is not None and track.stamp is not None
                and stamp > track.stamp):
            result.velocity_3d = tuple(float(v) for v in camera_velocity(track.world_centroid, world_centroid,
                                                                          stamp - track.stamp, pose))
        track.world_centroid, track.stamp, track.world = world_centroid, stamp, world
        return result


def paint(canvas: np.ndarray, shape: np.ndarray, origin: np.ndarray, value: int) -> None:
    """Set ``canvas`` to ``value`` where the bool ``shape``, placed with its corner at ``origin`` (x, y), is set."""
    height, width = canvas.shape
    x0, y0 = int(origin[0]), int(origin[1])
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + shape.shape[0], height), min(x0 + shape.shape[1], width)
    if bottom > top and right > left:
        inside = shape[top - y0 : bottom - y0, left - x0 : right - x0]
        canvas[top:bottom, left:right][inside] = value


def _pair(values: np.ndarray) -> tuple[float, float]:
    return float(values[0]), float(values[1])


def _smoothed(previous: np.ndarray, latest: np.ndarray) -> np.ndarray:
    """Exponential smoothing of a velocity (the latest alone while there is none before it)."""
    return latest if not np.isfinite(previous).all() else VELOCITY_SMOOTHING * previous + (1 - VELOCITY_SMOOTHING) * latest


def _move_differently(velocities: np.ndarray, limit: float) -> bool:
    """Whether some two of these track velocities (NaN: unknown) differ by more than ``limit``."""
    known = velocities[np.isfinite(velocities).all(axis=1)]
    if len(known) < 2:
        return False
    spread = np.linalg.norm(known[:, None] - known[None, :], axis=-1)
    return bool((spread > limit).any())
