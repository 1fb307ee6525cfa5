# SPDX-License-Identifier: Apache-2.0
"""`geomotion eval`: score predicted masks against a benchmark or any GT folder."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from geomotion_core.cli import options as option_types
from geomotion_core.cli.options import add_option
from geomotion_core.options.table import EVAL_PROTOCOLS

if TYPE_CHECKING:
    from geomotion_core.eval.report import EvalReport

PROTOCOL_NAMES = EVAL_PROTOCOLS
BENCHMARK_NAMES = ("davis2016", "davis2017", "davis2016-m", "davis2017-m", "segtrack-v2", "fbms-59")


def add_selection_arguments(parser: argparse.ArgumentParser, aliases: tuple[str, ...] = ()) -> None:
    """Sequence list, sequences and ``--eval-protocol`` (``args.eval_protocol``; ``aliases``: older
    spellings); shared with `geomotion benchmark`."""
    parser.add_argument(
        "--list", dest="sequence_list", metavar="NAME",
        help="the benchmark's sequence list (default: its own; 'all' = every folder)",
    )  # fmt: skip
    parser.add_argument(
        "--sequences", metavar="NAMES", help="sequences to score: 'a,b,c' or '@FILE' with one name per line"
    )
    add_option(parser, "eval.protocol", default=None, aliases=aliases,
               help_text="how masks are scored: davis: all frames; davis2016: first and last dropped; davis2017-multi: "
                         "Hungarian-matched objects, void 255; easi3r: 512-crop (default: the benchmark's own; "
                         "davis with --gt)")


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """Where `geomotion eval` writes its report, and how many threads score."""
    parser.add_argument("--json", type=option_types.OUTPUT_FILE, metavar="OUT", help="write the report as JSON here")
    parser.add_argument("--csv", type=option_types.OUTPUT_FILE, metavar="OUT", help="write per-sequence metrics as CSV here")
    parser.add_argument("--plot", type=option_types.OUTPUT_FILE, metavar="OUT", help="write a PNG bar plot of per-sequence J&F here")
    parser.add_argument("--per-frame", action="store_true", help="include per-frame J and F lists in the JSON")
    parser.add_argument(
        "--workers", type=option_types.WORKERS, metavar="N", help="threads reading and scoring sequences (default: CPU count)"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `eval` parser."""
    parser = subparsers.add_parser(
        "eval",
        help="score predicted masks (J, F, J&F, recall, decay) against ground truth",
        description="Score predicted masks with the official DAVIS definitions of J and F. "
        "Predictions are PNGs in <pred>/<sequence>/<frame>.png (or <pred>/<sequence>/masks/; for "
        "davis2017-multi <pred>/<sequence>/instances/ as `geomotion segment --instances` writes them).",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--benchmark", choices=BENCHMARK_NAMES, help="a benchmark layout under --data")
    source.add_argument("--gt", type=option_types.INPUT_DIR, metavar="DIR", help="any GT folder in <sequence>/<frame>.png layout")
    parser.add_argument("--data", type=option_types.INPUT_DIR, metavar="ROOT", help="the benchmark's root folder (with --benchmark)")
    parser.add_argument(
        "--pred", type=option_types.INPUT_DIR, required=True, metavar="DIR", help="predicted masks, <pred>/<sequence>/<frame>.png"
    )
    parser.add_argument(
        "--pred-threshold", type=option_types.PIXEL_THRESHOLD, default=0.0, metavar="VALUE",
        help="predicted pixel values above this are foreground (default 0; 25 for GeoMotion's soft PNGs)",
    )  # fmt: skip
    add_selection_arguments(parser, aliases=("--protocol",))
    add_report_arguments(parser)
    parser.set_defaults(func=run)


def write_outputs(report: EvalReport, args: argparse.Namespace) -> None:
    """Print the table and write the JSON, CSV and plot that were asked for."""
    print(report.format_table())
    if args.json:
        print(f"JSON: {report.write_json(args.json, per_frame=args.per_frame)}")
    if args.csv:
        print(f"CSV: {report.write_csv(args.csv)}")
    if args.plot:
        print(f"plot: {report.write_plot(args.plot)}")


def selected_sequences(args: argparse.Namespace) -> tuple[list[str] | None, str | None]:
    """The explicit sequence names of ``--sequences`` and the label the report gives them."""
    from geomotion_core.eval.datasets import read_sequence_names

    if not args.sequences:
        return None, None
    return read_sequence_names(args.sequences)


def run(args: argparse.Namespace) -> int:
    """Evaluate and report."""
    from geomotion_core.errors import ConfigError
    from geomotion_core.eval import benchmark_sequences, evaluate_set, folder_sequences
    from geomotion_core.eval.datasets import get_benchmark

    sequences, label = selected_sequences(args)
    if args.benchmark:
        if args.data is None:
            raise ConfigError("--benchmark needs --data (the benchmark's root folder)")
        sequence_set = benchmark_sequences(args.benchmark, args.data, args.sequence_list, sequences, label)
        protocol = args.eval_protocol or get_benchmark(args.benchmark).default_protocol
    else:
        if args.data is not None or args.sequence_list:
            raise ConfigError("--data and --list go with --benchmark, not with --gt")
        sequence_set = folder_sequences(args.gt, sequences, label)
        protocol = args.eval_protocol or "davis"
    report = evaluate_set(sequence_set, args.pred, protocol, args.pred_threshold, args.workers, progress=True)
    write_outputs(report, args)
    return 0
