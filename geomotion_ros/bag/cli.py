# SPDX-License-Identifier: Apache-2.0
"""`geomotion bag make` and `geomotion bag eval`: rosbag replay evaluation."""
from __future__ import annotations

import argparse
from pathlib import Path

from geomotion_core.cli import options as option_types
from geomotion_core.cli.evaluate import BENCHMARK_NAMES
from geomotion_core.cli.options import add_option
from geomotion_core.cli.segment import add_backend_arguments, backend_options_from_args


def _add_make(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make", help="write a benchmark sequence as a rosbag2 (image, camera_info, ground truth)",
        description="Write one benchmark sequence as a bag with bgr8 images on /image, an uncalibrated "
                    "CameraInfo on /camera_info and mono8 ground-truth masks on /ground_truth/motion_mask.")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARK_NAMES, help="benchmark name (see `geomotion eval --help`)")
    parser.add_argument("--data", required=True, type=option_types.INPUT_DIR, help="the benchmark's root folder")
    parser.add_argument("--seq", required=True, help="sequence name")
    parser.add_argument("-o", "--output", required=True, type=option_types.OUTPUT_DIR, help="bag folder to create")
    parser.add_argument("--fps", type=option_types.FRAME_RATE, default=10.0, help="frame rate of the stamps (default: %(default)s)")
    parser.add_argument("--storage", choices=("sqlite3", "mcap"), default="sqlite3", help="default: %(default)s")
    parser.add_argument("--frame-id", default="camera_optical_frame", help="header frame_id (default: %(default)s)")
    parser.set_defaults(func=run_make)


def _add_eval(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval", help="replay a bag through the node and score masks, latency and drops",
        description="Play BAG through the real node (rclpy, /clock, sim time) or, with --offline, straight "
                    "into the streaming engine; match masks to ground truth by stamp; report J, F, J&F, JR, "
                    "latency and drops.")
    parser.add_argument("bag", type=option_types.INPUT_ANY, help="rosbag2 folder (sqlite3 or mcap)")
    parser.add_argument("--image-topic", help="Image or CompressedImage topic (default: the bag's only one)")
    parser.add_argument("--gt-topic", default="/ground_truth/motion_mask",
                        help="ground-truth mask topic; without it only latency and drops (default: %(default)s)")
    parser.add_argument("--offline", action="store_true", help="no DDS: feed the StreamingSegmenter directly")
    engine = parser.add_argument_group("streaming engine")
    add_option(engine, "policy", default="every_frame")  # a replay scores every frame of the bag
    for name in ("window.size", "window.stride", "window.lookahead", "queue.max_frames", "mask.threshold"):
        add_option(engine, name)
    parser.add_argument("--rate", type=option_types.PLAYBACK_RATE, default=1.0,
                        help="playback speed relative to the recorded rate (DDS mode; default: %(default)s)")
    add_option(parser, "eval.protocol", aliases=("--protocol",))
    parser.add_argument("--json", type=option_types.OUTPUT_FILE, help="write the report as JSON")
    parser.add_argument("-o", "--output", type=option_types.OUTPUT_DIR,
                        help="folder for the output bag (recorded node outputs) and the plots")
    add_backend_arguments(parser)
    parser.set_defaults(func=run_eval)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `geomotion bag` with its `make` and `eval` sub-commands."""
    parser = subparsers.add_parser("bag", help="rosbag replay evaluation (make a bag, replay and score it)")
    commands = parser.add_subparsers(dest="bag_command", metavar="SUBCOMMAND", required=True)
    _add_make(commands)
    _add_eval(commands)


def run_make(args: argparse.Namespace) -> int:
    from geomotion_core.errors import InputError
    from geomotion_core.eval import benchmark_sequences
    from geomotion_ros.bag.make import write_sequence_bag

    sequence = benchmark_sequences(args.benchmark, args.data, sequences=[args.seq]).sequences[0]
    if sequence.images is None:
        raise InputError(f"{args.benchmark} at {args.data} has no images for {args.seq}")
    masks = [paths[0] if len(paths) == 1 else None for paths in sequence.gt]
    if any(mask is None for mask in masks):
        raise InputError(f"{args.seq}: multi-file ground truth per frame is not supported by `bag make`")
    summary = write_sequence_bag(list(sequence.images), args.output, masks, fps=args.fps,
                                 storage=args.storage, frame_id=args.frame_id)
    print(f"wrote {summary.frames} frames ({summary.ground_truth} with ground truth, {summary.duration_s:.1f} s "
          f"at {args.fps:g} fps, {summary.storage}) to {summary.path}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from geomotion_ros.bag.evaluate import BagEvalOptions, evaluate_bag

    options = BagEvalOptions(
        bag=args.bag, image_topic=args.image_topic, gt_topic=args.gt_topic, offline=args.offline,
        policy=args.policy, window=args.window, stride=args.stride, lookahead=args.lookahead, max_queue=args.max_queue,
        threshold=args.threshold, rate=args.rate, protocol=args.eval_protocol, output=args.output,
        backend=backend_options_from_args(args),
    )
    report = evaluate_bag(options)
    print(report.format())
    if args.json:
        report.write_json(args.json)
        print(f"report: {args.json}")
    return 0
