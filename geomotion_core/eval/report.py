# SPDX-License-Identifier: Apache-2.0
"""The evaluation report: per-sequence and dataset metrics, as a table, JSON, CSV and a bar plot."""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from geomotion_core.eval.aggregate import SequenceScores, Summary, mean_summary, pooled_summary
from geomotion_core.eval.protocols import get_protocol
from geomotion_core.io.atomic import atomic_path

METRIC_NAMES = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay", "J&F-Mean")
POOLED = "pooled_over_frames"


def _number(value: float) -> float | None:
    """A JSON-safe float: NaN (an undefined statistic) becomes null."""
    return None if value is None or math.isnan(value) else float(value)


def _metrics(summary: Summary, with_decay: bool = True) -> dict[str, float | None]:
    return {name: _number(value) for name, value in summary.to_dict(with_decay).items()}


@dataclass
class EvalReport:
    """Scores of one evaluation run.

    ``units`` are what the official mean runs over: sequences, or matched objects
    (``<seq>_<k>``) under ``davis2017-multi``. ``timing`` is set by ``geomotion benchmark``.
    """

    protocol: str
    units: list[SequenceScores]
    sequences: list[str]  # every evaluated sequence, in order
    benchmark: str | None = None
    sequence_list: str | None = None
    timing: dict[str, Any] | None = None

    @property
    def by_object(self) -> bool:
        """Whether the official mean runs over matched objects (``davis2017-multi``)."""
        return get_protocol(self.protocol).multi_object

    @property
    def frame_count(self) -> int:
        """Scored frames over all sequences (each frame once, also with several objects)."""
        return sum(len(units[0].frames) for units in self._units_by_sequence().values())

    def _units_by_sequence(self) -> dict[str, list[SequenceScores]]:
        grouped: dict[str, list[SequenceScores]] = {name: [] for name in self.sequences}
        for unit in self.units:
            grouped.setdefault(unit.sequence, []).append(unit)
        return {name: units for name, units in grouped.items() if units}

    @property
    def per_sequence(self) -> dict[str, Summary]:
        """Official statistics of each sequence (the mean over its objects under multi-object)."""
        return {name: mean_summary(units) for name, units in self._units_by_sequence().items()}

    @property
    def per_object(self) -> dict[str, Summary]:
        """Official statistics of each scored unit (each matched object under multi-object)."""
        return {unit.name: unit.summary() for unit in self.units}

    @property
    def mean_name(self) -> str:
        """Key of the official aggregate: ``mean_over_sequences`` or ``mean_over_objects``."""
        return "mean_over_objects" if self.by_object else "mean_over_sequences"

    @property
    def aggregates(self) -> dict[str, Summary]:
        """The dataset summary both ways: the official mean over units, and frames pooled."""
        return {self.mean_name: mean_summary(self.units), POOLED: pooled_summary(self.units)}

    def to_dict(self, per_frame: bool = False) -> dict[str, Any]:
        """The report as JSON-ready data; ``per_frame`` adds ``frames``, ``J`` and ``F`` lists."""
        units = {unit.name: unit for unit in self.units}

        def entry(name: str, summary: Summary) -> dict[str, Any]:
            values: dict[str, Any] = _metrics(summary)
            if per_frame and name in units:
                unit = units[name]
                values.update(frames=list(unit.frames), J=_list(unit.J), F=_list(unit.F))
            return values

        per_sequence = self.per_sequence
        aggregates = self.aggregates
        result: dict[str, Any] = {
            "protocol": self.protocol,
            "benchmark": self.benchmark,
            "sequence_list": self.sequence_list,
            "sequences": len(self.sequences),
            "frames": self.frame_count,
            "per_sequence": {name: entry(name, summary) for name, summary in per_sequence.items()},
            "dataset": {
                self.mean_name: _metrics(aggregates[self.mean_name]),
                POOLED: _metrics(aggregates[POOLED], with_decay=False),
            },
        }
        unscored = [name for name in self.sequences if name not in per_sequence]
        if unscored:
            result["unscored_sequences"] = unscored  # e.g. no object in the first GT frame
        if self.by_object:
            result["per_object"] = {name: entry(name, summary) for name, summary in self.per_object.items()}
        if self.timing is not None:
            result["timing"] = self.timing
        return result

    def format_table(self) -> str:
        """A fixed-width terminal table: one row per sequence, then both dataset rows."""
        counts = {name: len(units[0].frames) for name, units in self._units_by_sequence().items()}
        label_width = max([len(name) for name in counts] + [len(self.mean_name), len(POOLED)])
        header = f"{'sequence':<{label_width}} {'frames':>6} " + " ".join(f"{n:>9}" for n in METRIC_NAMES)
        lines = [self._title(), header, "-" * len(header)]
        for name, summary in self.per_sequence.items():
            lines.append(_row(name, counts[name], summary, label_width))
        lines.append("-" * len(header))
        for name, summary in self.aggregates.items():
            lines.append(_row(name, self.frame_count, summary, label_width))
        if self.timing:
            lines.append(_timing_line(self.timing))
        return "\n".join(lines)

    def _title(self) -> str:
        parts = [f"protocol {self.protocol}"]
        if self.benchmark:
            parts.insert(0, f"benchmark {self.benchmark} (list {self.sequence_list})")
        if self.by_object:
            parts.append(f"{len(self.units)} objects")
        return ", ".join(parts)

    def write_json(self, path: str | Path, per_frame: bool = False) -> Path:
        """Write ``to_dict(per_frame)`` as indented JSON; returns the path."""
        path = Path(path)
        with atomic_path(path) as partial:
            partial.write_text(json.dumps(self.to_dict(per_frame), indent=2) + "\n")
        return path

    def write_csv(self, path: str | Path) -> Path:
        """Write one row per sequence (``sequence, frames, J-Mean, ..., J&F-Mean``)."""
        path = Path(path)
        counts = {name: len(units[0].frames) for name, units in self._units_by_sequence().items()}
        with atomic_path(path) as partial, partial.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sequence", "frames", *METRIC_NAMES])
            for name, summary in self.per_sequence.items():
                values = summary.to_dict()
                writer.writerow([name, counts[name], *(_csv_number(values[m]) for m in METRIC_NAMES)])
        return path

    def write_plot(self, path: str | Path) -> Path:
        """Write a PNG bar plot of per-sequence J&F-Mean with both dataset means as lines."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        path = Path(path)
        names = list(self.per_sequence)
        scores = [self.per_sequence[name].jf_mean for name in names]
        figure = Figure(figsize=(max(6.0, 0.35 * len(names) + 2.0), 4.0), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.bar(range(len(names)), scores, color="tab:blue")
        for (label, summary), style in zip(self.aggregates.items(), ("--", ":")):
            axes.axhline(summary.jf_mean, color="tab:red", linestyle=style, label=f"{label}: {summary.jf_mean:.3f}")
        axes.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
        axes.set_ylim(0.0, 1.0)
        axes.set_ylabel("J&F-Mean")
        axes.set_title(self._title(), fontsize=9)
        axes.legend(fontsize=8, loc="lower right")
        with atomic_path(path) as partial:
            figure.savefig(partial, dpi=100, format="png")
        return path


def _list(values: np.ndarray) -> list[float | None]:
    return [_number(value) for value in values.tolist()]


def _csv_number(value: float) -> str:
    return "" if math.isnan(value) else f"{value:.6f}"


def _row(label: str, frames: int, summary: Summary, width: int) -> str:
    values = summary.to_dict()
    cells = [f"{'-' if math.isnan(values[name]) else f'{values[name]:.4f}':>9}" for name in METRIC_NAMES]
    return f"{label:<{width}} {frames:>6} " + " ".join(cells)


def _timing_line(timing: dict[str, Any]) -> str:
    per_frame = timing.get("ms_per_frame")
    fps = timing.get("fps")
    frames = timing.get("frames")
    return f"segmentation: {per_frame:.1f} ms/frame ({fps:.2f} fps) over {frames} frames"
