# SPDX-License-Identifier: Apache-2.0
"""Segment a video, frame folder or glob into an output folder (``geomotion segment``)."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from geomotion_core.backend import BackendOptions, MotionBackend
from geomotion_core.backends import build_backend
from geomotion_core.errors import ConfigError, GeoMotionError, InputError
from geomotion_core.instances import InstanceConfig
from geomotion_core.io.frames import MAX_FPS, MIN_FPS, Frame, open_frames
from geomotion_core.pipeline.official import (
    DEFAULT_CHUNK_SIZE,
    PROTOCOL_RESIZES,
    PROTOCOL_THRESHOLDS,
    PROTOCOLS,
    Chunk,
    protocol_chunks,
)
from geomotion_core.pipeline.outputs import OutputFolder, SegmentationWriter, run_record
from geomotion_core.types import FrameResult

if TYPE_CHECKING:
    from geomotion_core.refine import Sam2Refiner

# per-frame timings of the streaming engine that are not stages: the whole backend call (which the
# stages already cover) and the frame's latency
LOGGER = logging.getLogger(__name__)
NOT_STAGES = frozenset({"backend", "latency"})
MIN_FRAME_SIDE = 16  # smaller frames cannot be segmented (flow and the network need some pixels)


@dataclass
class SegmentOptions:
    """How to segment: the backend, the protocol and what to write."""

    backend: BackendOptions = field(default_factory=BackendOptions)
    protocol: str = "official"  # official: chunks in order; eval: 4 interleaved groups (eval.py)
    chunk_size: int = DEFAULT_CHUNK_SIZE
    threshold: float | None = None  # None: the protocol's (official 0.5, eval 0.1)
    sam2: bool = False
    sam2_config: str | None = None  # None: the sam2 package's sam2.1_hiera_l.yaml
    sam2_checkpoint: str | None = None
    streaming: bool = False  # sliding windows of the streaming engine instead of chunks
    window: int = 8  # streaming window length
    stride: int = 1  # new frames between streaming windows
    max_queue: int = 0  # streaming queue (0: 2 x window, at least 16)
    points: bool = False  # write static_points.ply
    overlay: bool = True  # write overlay.mp4
    instances: InstanceConfig | None = None  # split masks into tracked objects: instances/, tracks.json
    fps: float | None = None  # timestamps of image inputs (and of videos without a rate)
    max_frames: int | None = None
    progress: bool = True
    overwrite: bool = False  # replace the results of an earlier run in the output folder

    def validate(self) -> None:
        """Raise ConfigError on an impossible combination."""
        self.backend.validate()
        if self.protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.chunk_size < 1:
            raise ConfigError(f"chunk size must be at least 1, got {self.chunk_size}")
        if self.threshold is not None and not 0.0 <= self.threshold < 1.0:
            raise ConfigError(f"threshold must be in [0, 1), got {self.threshold}")
        if self.fps is not None and not MIN_FPS <= self.fps <= MAX_FPS:
            raise ConfigError(f"fps must be in [{MIN_FPS:g}, {MAX_FPS:g}], got {self.fps}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError(f"max frames must be at least 1, got {self.max_frames}")
        if self.streaming and self.sam2:
            raise ConfigError("SAM2 refinement needs whole chunks; it cannot be combined with the streaming engine",
                              options=("sam2.enabled", "segment.streaming"))
        if self.streaming and self.window < 2:
            raise ConfigError(f"streaming window must be at least 2 frames, got {self.window}")

    @property
    def mask_threshold(self) -> float:
        return PROTOCOL_THRESHOLDS[self.protocol] if self.threshold is None else self.threshold


@dataclass
class SegmentSummary:
    """What a segmentation run did and where its outputs are."""

    frames: int
    fps: float  # the input's frame rate
    seconds: float  # wall time of the whole run, loading included
    stage_seconds: dict[str, float]
    frame_timings: list[dict[str, float]]
    outputs: dict[str, Path]
    backend: str = ""
    skipped: int = 0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        """Human-readable multi-line summary."""
        per_frame = max(self.frames, 1)
        lines = [
            f"segmented {self.frames} frames with {self.backend} in {self.seconds:.1f} s "
            f"({self.frames_per_second:.2f} frames/s)"
            + (f", {self.skipped} unreadable frames skipped" if self.skipped else ""),
            "time per stage (total, per frame):",
        ]
        lines += [f"  {stage:<11} {seconds:8.2f} s  {1000 * seconds / per_frame:8.1f} ms"
                  for stage, seconds in self.stage_seconds.items()]
        lines.append("outputs:")
        lines += [f"  {name:<11} {path}" for name, path in self.outputs.items()]
        return "\n".join(lines)


class _Stopwatch:
    """Accumulates seconds per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds

    def timed_frames(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """Pass frames through, charging decoding time to the ``read`` stage."""
        iterator = iter(frames)
        while True:
            start = time.perf_counter()
            frame = next(iterator, None)
            self.add("read", time.perf_counter() - start)
            if frame is None:
                return
            yield frame


def segment_to_folder(
    source: str | Path,
    out_dir: str | Path,
    options: SegmentOptions,
    *,
    backend: MotionBackend | None = None,
    refiner: Sam2Refiner | None = None,
) -> SegmentSummary:
    """Segment ``source`` (video, frame folder or glob) and write every output into ``out_dir``.

    ``backend`` and ``refiner``, when given, are used instead of building them from ``options``
    (to segment many sequences with one loaded model); a backend is ``reset()`` first. Outputs are
    staged and moved into place when complete (see :class:`OutputFolder`).
    """
    from tqdm import tqdm

    options.validate()
    started = time.perf_counter()
    folder = OutputFolder(out_dir, options.overwrite)
    folder.check()
    reader = open_frames(source, options.fps)
    _check_frame_size(reader.width, reader.height)
    if backend is None:
        backend = build_backend(replace(options.backend, points=options.backend.points or options.points))
    else:
        backend.reset()
    if options.sam2 and refiner is None:
        refiner = _build_refiner(options)
    backend_name = getattr(backend, "name", options.backend.backend)
    stopwatch = _Stopwatch()
    stopwatch.add("load", time.perf_counter() - started)
    total = len(reader) if options.max_frames is None else min(len(reader), options.max_frames)
    stream = stopwatch.timed_frames(islice(reader, options.max_frames))
    staging = folder.open()
    writer = SegmentationWriter(staging, reader.fps, reader.width, reader.height, options.overlay, options.points,
                                options.instances)
    frame_timings: list[dict[str, float]] = []
    try:
        with tqdm(total=total, unit="frame", desc="segment", disable=_bar_disabled(options.progress)) as bar:
            if options.streaming:
                results = _streaming_results(backend, stream, options)
            else:
                results = _chunked_results(backend, refiner if options.sam2 else None, stream, options)
            for frame, result, world in results:
                start = time.perf_counter()
                writer.write(frame, result, world)
                result.timings["write"] = time.perf_counter() - start - result.timings.get("instances", 0.0)
                for stage, seconds in result.timings.items():
                    if stage not in NOT_STAGES:
                        stopwatch.add(stage, seconds)
                frame_timings.append(result.timings)
                bar.update(1)
        staged = writer.close()
    except BaseException as error:
        _close_after_failure(writer)
        partial = folder.abandon(run_record(writer.frames_written, started, backend_name), error)
        if partial is None:
            raise
        kept = f"the {writer.frames_written} frames done are kept in {partial} (marked partial)"
        if isinstance(error, (GeoMotionError, OSError)):  # one line that says both what failed and what is kept
            raise GeoMotionError(f"{_describe_error(error)}; {kept}") from error
        LOGGER.warning("%s", kept)
        raise
    folder.commit(run_record(writer.frames_written, started, backend_name))
    return SegmentSummary(
        frames=writer.frames_written,
        fps=reader.fps,
        seconds=time.perf_counter() - started,
        stage_seconds=stopwatch.seconds,
        frame_timings=frame_timings,
        outputs={name: folder.path / path.relative_to(staging) for name, path in staged.items()},
        backend=backend_name,
        skipped=reader.skipped,
    )


def _bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: off when not wanted, and (None) off when stderr is not a terminal, so
    that logs and error messages of redirected runs are not interleaved with bar updates."""
    return None if progress else True


def _check_frame_size(width: int, height: int) -> None:
    if min(width, height) < MIN_FRAME_SIDE:
        raise InputError(f"frames of {width}x{height} pixels are too small to segment "
                         f"(at least {MIN_FRAME_SIDE} pixels a side)")


def _close_after_failure(writer: SegmentationWriter) -> None:
    """Finish what can be finished after a failed run; the run's own error is the one reported."""
    try:
        writer.close()
    except Exception as error:  # noqa: BLE001 - secondary to the error being raised
        LOGGER.debug("while stopping after an error: %s", error)


def _describe_error(error: BaseException) -> str:
    """A user-facing error in words: an OSError as ``<reason>: <path>``."""
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    return str(error)


def _chunked_results(
    backend: MotionBackend, refiner: Sam2Refiner | None, frames: Iterable[Frame], options: SegmentOptions
) -> Iterator[tuple[Frame, FrameResult, int]]:
    """Results of the official / eval chunk protocols, refined by SAM2 when a refiner is given."""
    held: list[Chunk] = []  # the eval protocol refines the whole sequence at once
    for chunk in protocol_chunks(options.protocol, backend, frames, options.chunk_size):
        if refiner is None:
            yield from _frame_results(chunk, None, options.mask_threshold)
        elif options.protocol == "eval":
            held.append(chunk)
        else:
            yield from _frame_results(chunk, _refine(refiner, [chunk], options), options.mask_threshold)
    if held:
        masks = _refine(refiner, held, options)
        offset = 0
        for chunk in held:
            yield from _frame_results(chunk, masks[offset : offset + len(chunk.frames)], options.mask_threshold)
            offset += len(chunk.frames)


def _refine(refiner: Sam2Refiner, chunks: list[Chunk], options: SegmentOptions) -> np.ndarray:
    """SAM2 masks of the chunks' frames as one clip, at the input size; time shared out to the chunks.

    As officially, SAM2 works at the network's size on its probability as predicted there; the
    binary masks come back to the input size through the protocol's resize and threshold (for
    ``eval``: 8-bit levels, PIL bilinear, ``> 0.1``).
    """
    start = time.perf_counter()
    images = np.concatenate([chunk.images for chunk in chunks])
    probability = np.concatenate([chunk.native_probability for chunk in chunks])
    probability = _resize_maps(probability, _model_size(chunks[0], options))
    refined = refiner.refine(images, probability).astype(np.float32)
    masks = PROTOCOL_RESIZES[options.protocol](refined, *images.shape[1:3]) > options.mask_threshold
    seconds_per_frame = (time.perf_counter() - start) / len(masks)
    for chunk in chunks:
        chunk.timings["refine"] = seconds_per_frame * len(chunk.frames)
    return masks


def _resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear (antialiased when shrinking) resize of ``[N, H, W]`` float maps to ``size``.

    Only for backends without a size of their own (geometric), whose maps SAM2 gets at the network size.
    """
    import torch
    import torch.nn.functional as F

    if maps.shape[1:] == tuple(size):
        return maps
    resized = F.interpolate(torch.from_numpy(maps)[:, None], size=tuple(size), mode="bilinear",
                            align_corners=False, antialias=True)
    return resized[:, 0].numpy()


def _model_size(chunk: Chunk, options: SegmentOptions) -> tuple[int, int]:
    """The network input size of this chunk's frames (where SAM2 refines, as officially)."""
    from geomotion_core.pipeline.preprocessing import model_input_size

    height, width = chunk.images.shape[1:3]
    return model_input_size(height, width, options.backend.size, options.backend.keep_aspect)


def _frame_results(chunk: Chunk, masks: np.ndarray | None, threshold: float) -> Iterator[tuple[Frame, FrameResult, int]]:
    """Split a chunk into per-frame results (timings shared equally); without refined masks, threshold."""
    binary = chunk.probability > threshold if masks is None else masks.astype(bool)
    share = {stage: seconds / len(chunk.frames) for stage, seconds in chunk.timings.items()}
    for row, frame in enumerate(chunk.frames):
        result = FrameResult(
            index=frame.index,
            stamp=frame.stamp,
            mask=binary[row].astype(np.uint8) * 255,
            probability=chunk.probability[row],
            pose=chunk.poses[row],
            points=None if chunk.points is None else chunk.points[row],
            timings=dict(share),
        )
        yield frame, result, int(chunk.worlds[row])


def _build_refiner(options: SegmentOptions) -> Sam2Refiner:
    from geomotion_core.pipeline.model_loading import resolve_device
    from geomotion_core.refine import Sam2Refiner, Sam2RefinerOptions

    return Sam2Refiner.from_files(options.sam2_config, options.sam2_checkpoint, resolve_device(options.backend.device),
                                  Sam2RefinerOptions(fallback_threshold=options.mask_threshold))


def _streaming_results(
    backend: MotionBackend, frames: Iterable[Frame], options: SegmentOptions
) -> Iterator[tuple[Frame, FrameResult, int]]:
    """Results of the streaming engine (sliding windows, one chained trajectory)."""
    from geomotion_core.streaming import StreamingConfig, StreamingSegmenter

    segmenter = StreamingSegmenter(backend, StreamingConfig(window_size=options.window, stride=options.stride,
                                                          max_queue=options.max_queue, threshold=options.mask_threshold))
    pending: dict[int, Frame] = {}
    for frame in frames:
        pending[frame.index] = frame
        for result in segmenter.push(frame.image, frame.stamp):
            yield pending.pop(result.index), result, 0
    for result in segmenter.flush():
        yield pending.pop(result.index), result, 0
