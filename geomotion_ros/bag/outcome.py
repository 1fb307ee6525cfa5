# SPDX-License-Identifier: Apache-2.0
"""What a bag replay produced, matched to ground truth by stamp, and its report."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomotion_core.eval import EvalReport, evaluate_sequences
from geomotion_core.io.atomic import atomic_path


@dataclass
class FrameOutcome:
    """One published mask: the input stamp it carries and how long it took."""

    stamp_ns: int
    mask: np.ndarray  # [H, W] bool, moving pixels
    latency_s: float  # from the frame entering the system (publish / submit) to its mask


@dataclass
class ReplayOutcome:
    """Everything a replay observed."""

    bag: Path
    mode: str  # "dds" or "offline"
    input_stamps: list[int]
    outcomes: list[FrameOutcome] = field(default_factory=list)
    dropped: int = 0  # frames the engine dropped by policy or refused
    wall_s: float = 0.0

    @property
    def processed(self) -> int:
        """Input frames that got exactly one mask."""
        return len({outcome.stamp_ns for outcome in self.outcomes} & set(self.input_stamps))


def latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    """p50 / p95 / max latency in milliseconds (None without samples)."""
    if not latencies_s:
        return {"p50": None, "p95": None, "max": None}
    values = np.asarray(latencies_s) * 1e3
    return {"p50": float(np.percentile(values, 50)), "p95": float(np.percentile(values, 95)),
            "max": float(values.max())}


@dataclass
class BagReport:
    """Accuracy (when the bag has ground truth), latency and drops of one replay."""

    replay: ReplayOutcome
    sequence: str
    metrics: EvalReport | None
    frame_stamps: list[int]  # stamps of the scored frames, in order
    missing: int  # ground-truth frames without a published mask (scored as empty masks)

    def to_dict(self) -> dict:
        """The JSON document of ``geomotion bag eval --json``."""
        replay = self.replay
        document = {
            "bag": str(replay.bag),
            "mode": replay.mode,
            "frames": len(replay.input_stamps),
            "processed": replay.processed,
            "dropped": replay.dropped,
            "missing_masks": self.missing,
            "wall_s": replay.wall_s,
            "processed_fps": replay.processed / replay.wall_s if replay.wall_s > 0 else None,
            "latency_ms": latency_summary([o.latency_s for o in replay.outcomes]),
            "ground_truth": self.metrics is not None,
        }
        if self.metrics is not None:
            document.update(self.metrics.to_dict(per_frame=True))
        return document

    def format(self) -> str:
        """The terminal summary: replay counts, latency, then the metrics table."""
        replay = self.replay
        latency = latency_summary([o.latency_s for o in replay.outcomes])
        lines = [
            f"bag {replay.bag} ({replay.mode}): {len(replay.input_stamps)} frames, {replay.processed} processed, "
            f"{replay.dropped} dropped, {self.missing} ground-truth frames without a mask",
        ]
        if latency["p50"] is not None:
            fps = replay.processed / replay.wall_s if replay.wall_s > 0 else float("nan")
            lines.append(f"latency stamp->mask: p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms, "
                         f"max {latency['max']:.1f} ms; {fps:.2f} frames/s over {replay.wall_s:.1f} s")
        if self.metrics is None:
            lines.append("no ground truth in the bag: accuracy not scored")
        else:
            lines.append(self.metrics.format_table())
        return "\n".join(lines)

    def write_json(self, path: Path) -> None:
        """Write :meth:`to_dict` as indented JSON (under a temporary name, renamed when complete)."""
        with atomic_path(path) as partial:
            partial.write_text(json.dumps(self.to_dict(), indent=2))


def score_replay(replay: ReplayOutcome, gt_by_stamp: dict[int, np.ndarray] | None, sequence: str,
                 protocol: str = "davis") -> BagReport:
    """Match masks to ground truth by header stamp (never by arrival order) and score them."""
    if not gt_by_stamp:
        return BagReport(replay, sequence, None, [], 0)
    masks = {outcome.stamp_ns: outcome.mask for outcome in replay.outcomes}
    stamps = sorted(gt_by_stamp)
    gt = np.stack([gt_by_stamp[stamp] for stamp in stamps])
    empty = np.zeros(gt.shape[1:], dtype=bool)
    pred = np.stack([masks.get(stamp, empty) for stamp in stamps])
    missing = sum(stamp not in masks for stamp in stamps)
    names = [str(stamp) for stamp in stamps]
    report = evaluate_sequences({sequence: (pred, gt)}, protocol, frames={sequence: names})
    return BagReport(replay, sequence, report, stamps, missing)
