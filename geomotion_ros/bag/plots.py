# SPDX-License-Identifier: Apache-2.0
"""Plots of a bag replay: latency histogram and per-frame J over time."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from geomotion_ros.bag.outcome import BagReport  # noqa: E402


def write_plots(report: BagReport, folder: Path) -> list[Path]:
    """Write ``latency.png`` and, with ground truth, ``per_frame_j.png`` into ``folder``."""
    written = []
    latencies = [o.latency_s * 1e3 for o in report.replay.outcomes]
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(latencies, bins=min(40, max(5, len(latencies) // 3)), color="tab:blue")
    axes.set_xlabel("latency from stamp to mask (ms)")
    axes.set_ylabel("frames")
    axes.set_title(f"{report.sequence}: {len(latencies)} masks ({report.replay.mode})")
    figure.tight_layout()
    written.append(folder / "latency.png")
    figure.savefig(written[-1], dpi=100)
    plt.close(figure)
    if report.metrics is not None:
        frames = report.metrics.to_dict(per_frame=True)["per_sequence"][report.sequence]
        start = report.frame_stamps[0]
        seconds = [(stamp - start) / 1e9 for stamp in report.frame_stamps]
        figure, axes = plt.subplots(figsize=(6, 3.5))
        axes.plot(seconds, frames["J"], marker=".", label="J")
        axes.plot(seconds, frames["F"], marker=".", alpha=0.6, label="F")
        axes.set_ylim(0, 1)
        axes.set_xlabel("time in bag (s)")
        axes.set_ylabel("score")
        axes.legend()
        axes.set_title(f"{report.sequence}: per-frame J and F")
        figure.tight_layout()
        written.append(folder / "per_frame_j.png")
        figure.savefig(written[-1], dpi=100)
        plt.close(figure)
    return written
