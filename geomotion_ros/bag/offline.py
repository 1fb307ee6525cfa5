"""Replay a bag straight into the streaming engine, without DDS (`geomotion bag eval --offline`)."""
from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from geomotion_core.backend import MotionBackend
from geomotion_core.streaming import StreamingConfig, StreamingSegmenter
from geomotion_core.types import FrameResult
from geomotion_ros.bag.outcome import FrameOutcome, ReplayOutcome
from geomotion_ros.bag.read import BagReader
from geomotion_ros.bag.record import OutputBag


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

    started = time.perf_counter()
    try:
        for image in tqdm(reader.images(connection), total=connection.msgcount, unit="frame", desc="replay"):
            stamp = image.stamp_ns / 1e9
            frame_id = image.frame_id
            replay.input_stamps.append(image.stamp_ns)
            stamp_ns[stamp] = image.stamp_ns
            submitted_at[stamp] = time.perf_counter()
            collect(engine.push(image.rgb(), stamp))
        collect(engine.flush())
    finally:
        if recorder:
            recorder.close()
    replay.wall_s = time.perf_counter() - started
    replay.dropped = engine.stats.dropped
    return replay
