# SPDX-License-Identifier: Apache-2.0
"""Replay a bag straight into the streaming engine, without DDS (`geomotion bag eval --offline`).

Bad messages are skipped as the node skips them: a message that cannot be decoded, or whose
conversion (``geomotion_ros.conversions``) or admission by the engine raises InputError, is
logged, counted as rejected (among the dropped frames) and the replay goes on.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from tqdm import tqdm

from geomotion_core.backend import MotionBackend
from geomotion_core.errors import InputError
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter
from geomotion_core.types import FrameResult
from geomotion_ros.bag.outcome import FrameOutcome, ReplayOutcome
from geomotion_ros.bag.read import BagReader
from geomotion_ros.bag.record import OutputBag

LOGGER = logging.getLogger(__name__)


def replay_offline(
    reader: BagReader,
    image_topic: str,
    backend: MotionBackend,
    config: StreamingConfig,
    output: Path | None = None,
) -> ReplayOutcome:
    """Push every image of ``image_topic`` into a StreamingSegmenter, in recorded order.

    Latency is measured from a frame's submission to its result (the engine's own latency, with
    no transport). Results are written to the output bag at ``output`` when given.
    """
    connection = reader.image_connection(image_topic)
    engine = StreamingSegmenter(backend, config)
    replay = ReplayOutcome(reader.path, "offline", [])
    stamp_ns: dict[float, int] = {}
    submitted_at: dict[float, float] = {}
    frame_id = ""
    recorder = OutputBag(output) if output else None

    def collect(results: list[FrameResult]) -> None:
        finished = time.perf_counter()
        for result in results:
            nanoseconds = stamp_ns.pop(result.stamp)
            latency = finished - submitted_at.pop(result.stamp)
            replay.outcomes.append(FrameOutcome(nanoseconds, result.mask > 0, latency))
            if recorder:
                recorder.write_result(nanoseconds, frame_id, result.mask, result.pose)

    rejected = 0

    def reject(error: InputError) -> None:
        nonlocal rejected
        rejected += 1
        if rejected == 1 or rejected % 100 == 0:
            LOGGER.warning("image rejected (%d so far): %s", rejected, error)

    started = time.perf_counter()
    try:
        images = reader.images(connection, on_error=reject)
        for image in tqdm(images, total=connection.msgcount, unit="frame", desc="replay",
                          disable=None):  # only on a terminal
            stamp = image.stamp_ns / 1e9
            replay.input_stamps.append(image.stamp_ns)
            try:
                rgb = image.rgb()
                stamp_ns[stamp] = image.stamp_ns
                submitted_at[stamp] = time.perf_counter()
                collect(engine.push(rgb, stamp))
            except InputError as error:
                stamp_ns.pop(stamp, None)
                submitted_at.pop(stamp, None)
                reject(error)
                continue
            frame_id = image.frame_id
        collect(engine.flush())
    except BaseException:
        if recorder:
            recorder.close(complete=False)
        raise
    if recorder:
        recorder.close()
    replay.wall_s = time.perf_counter() - started
    replay.dropped = engine.stats.dropped + rejected
    return replay
