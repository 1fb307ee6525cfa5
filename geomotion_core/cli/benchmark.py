# SPDX-License-Identifier: Apache-2.0
"""`geomotion benchmark`: segment every sequence of a benchmark, then score it, in one command."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from geomotion_core.cli import options as option_types
from geomotion_core.cli.evaluate import BENCHMARK_NAMES, add_selection_arguments, selected_sequences

LOGGER = logging.getLogger(__name__)
LOAD_STAGE = "load"  # the SegmentSummary stage that builds the backend (not per-frame work)
REPORT_FILES = {"json": "report.json", "csv": "per_sequence.csv", "plot": "jf_per_sequence.png"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `benchmark` parser: the `segment` backend and protocol options plus evaluation."""
    from geomotion_core.cli.segment import (add_backend_arguments, add_instance_arguments, add_overwrite_argument,
                                            add_protocol_arguments)

    parser = subparsers.add_parser(
        "benchmark",
        help="segment a benchmark's sequences and score them (J, F, J&F, timing per frame)",
        description="Segment every sequence of a benchmark into OUT/<sequence>/ (as `geomotion segment`), "
        f"then score the masks and write OUT/{REPORT_FILES['json']}, OUT/{REPORT_FILES['csv']} and "
        f"OUT/{REPORT_FILES['plot']}. The segmentation protocol defaults to GeoMotion's eval.py one.",
    )
    parser.add_argument("--benchmark", choices=BENCHMARK_NAMES, required=True, help="the benchmark layout")
    parser.add_argument("--data", type=option_types.INPUT_DIR, required=True, metavar="ROOT", help="the benchmark's root folder")
    parser.add_argument("-o", "--output", type=option_types.OUTPUT_DIR, required=True, metavar="DIR", help="output folder")
    add_selection_arguments(parser)
    add_backend_arguments(parser)
    add_protocol_arguments(parser, chunk_protocol="eval")  # segmentation as GeoMotion's eval.py: 4 groups, > 0.1
    add_instance_arguments(parser)  # instances/ per sequence, scored by --eval-protocol davis2017-multi
    parser.add_argument("--overlay", action="store_true", help="also write each sequence's overlay.mp4")
    parser.add_argument("--per-frame", action="store_true", help="per-frame J, F and timing lists in the JSON")
    parser.add_argument("--workers", type=option_types.WORKERS, metavar="N", help="threads scoring sequences (default: CPU count)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    add_overwrite_argument(parser)
    parser.set_defaults(func=run)


def _segment_options(args: argparse.Namespace):
    from geomotion_core.cli.segment import segment_options_from_args

    segment_defaults = {"points": False, "fps": None, "max_frames": None}
    return segment_options_from_args(argparse.Namespace(**{**segment_defaults, **vars(args)}))


def _segment_sequence(sequence, out_dir: Path, options, annotated_only: bool):
    """Segment one sequence's frames; with sparse GT only its annotated frames (as GeoMotion)."""
    import tempfile

    from geomotion_core.pipeline import segment_to_folder

    if not annotated_only:
        return segment_to_folder(sequence.images[0].parent, out_dir, options)
    with tempfile.TemporaryDirectory(prefix=f"geomotion-{sequence.name}-") as staging:
        for image in sequence.images:
            (Path(staging) / image.name).symlink_to(image.resolve())
        return segment_to_folder(staging, out_dir, options)


def _timing(summaries: dict[str, Any], per_frame: bool) -> dict[str, Any]:
    """Throughput over all sequences (model loading apart) and the mean time of each stage."""
    frames = sum(summary.frames for summary in summaries.values())
    stages: dict[str, float] = {}
    for summary in summaries.values():
        for stage, seconds in summary.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    loading = stages.pop(LOAD_STAGE, 0.0)
    busy = sum(summary.seconds for summary in summaries.values()) - loading
    per_sequence = {}
    for name, summary in summaries.items():
        seconds = summary.seconds - summary.stage_seconds.get(LOAD_STAGE, 0.0)
        entry: dict[str, Any] = {
            "frames": summary.frames, "seconds": seconds, "ms_per_frame": 1000 * seconds / max(summary.frames, 1)
        }
        if per_frame:
            entry["frame_ms"] = [1000 * sum(timings.values()) for timings in summary.frame_timings]
        per_sequence[name] = entry
    return {
        "backend": ", ".join(sorted({summary.backend for summary in summaries.values()})),
        "frames": frames,
        "seconds": busy,
        "ms_per_frame": 1000 * busy / max(frames, 1),
        "fps": frames / busy if busy > 0 else 0.0,
        "model_load_seconds": loading,
        "stage_ms_per_frame": {stage: 1000 * seconds / max(frames, 1) for stage, seconds in stages.items()},
        "per_sequence": per_sequence,
    }


def run(args: argparse.Namespace) -> int:
    """Segment, evaluate, report."""
    from geomotion_core.eval import benchmark_sequences, evaluate_set
    from geomotion_core.eval.datasets import get_benchmark
    from geomotion_core.pipeline.outputs import OutputFolder

    sequences, label = selected_sequences(args)
    sequence_set = benchmark_sequences(args.benchmark, args.data, args.sequence_list, sequences, label)
    options = _segment_options(args)
    options.validate()
    for sequence in sequence_set.sequences:  # refuse earlier results now, not after hours of work
        OutputFolder(args.output / sequence.name, options.overwrite).check()
    summaries = {}
    for position, sequence in enumerate(sequence_set.sequences, start=1):
        count = len(sequence_set.sequences)
        LOGGER.info("segmenting %s (%d/%d, %d frames)", sequence.name, position, count, len(sequence.frames))
        out_dir = args.output / sequence.name
        summaries[sequence.name] = _segment_sequence(sequence, out_dir, options, sequence_set.annotated_only)
    protocol = args.eval_protocol or get_benchmark(args.benchmark).default_protocol
    report = evaluate_set(sequence_set, args.output, protocol, workers=args.workers, progress=args.progress)
    report.timing = _timing(summaries, args.per_frame)
    print(report.format_table())
    print(f"JSON: {report.write_json(args.output / REPORT_FILES['json'], per_frame=args.per_frame)}")
    print(f"CSV: {report.write_csv(args.output / REPORT_FILES['csv'])}")
    print(f"plot: {report.write_plot(args.output / REPORT_FILES['plot'])}")
    return 0
