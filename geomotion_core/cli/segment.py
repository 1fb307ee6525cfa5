# SPDX-License-Identifier: Apache-2.0
"""`geomotion segment INPUT -o OUT`: motion masks, probabilities, overlay and camera poses of a video.

The backend options (entries of the option table) are added by :func:`add_backend_arguments` and
read back by :func:`backend_options_from_args`, so other commands (``benchmark``, ``bag eval``)
offer the same.
"""
from __future__ import annotations

import argparse

from geomotion_core.backend import BackendOptions
from geomotion_core.cli import options as option_types
from geomotion_core.cli.options import add_option
from geomotion_core.errors import ConfigError
from geomotion_core.instances import InstanceConfig
from geomotion_core.instances.config import OPTION_FIELDS as INSTANCE_FIELDS
from geomotion_core.pipeline.segment import SegmentOptions


BACKEND_OPTIONS = ("backend", "model.checkpoint", "model.config", "model.allow_random_weights", "flow.method",
                   "flow.raft_weights", "device", "precision", "inference.engine", "inference.size",
                   "inference.keep_aspect")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose and configure the motion backend (a ``BackendOptions``)."""
    group = parser.add_argument_group("backend")
    for name in BACKEND_OPTIONS:
        add_option(group, name)
    group.add_argument("--geometric", action="append", default=[], metavar="NAME=VALUE",
                       help="a setting of the weight-free backend, e.g. flow_scale=0.75 or preset=fast (repeatable; "
                            "the settings are listed in docs/geometric.md)")


def backend_options_from_args(args: argparse.Namespace) -> BackendOptions:
    """The ``BackendOptions`` of parsed :func:`add_backend_arguments` options."""
    return BackendOptions(
        backend=args.backend,
        checkpoint=_text(args.checkpoint),
        model_config=_text(args.model_config),
        flow=args.flow,
        raft_weights=_text(args.raft_weights),
        device=args.device,
        precision=args.precision,
        engine=args.engine,
        size=args.size,
        keep_aspect=args.keep_aspect,
        allow_random_weights=args.allow_random_weights,
        geometric=parse_settings(args.geometric),
    )


def _text(path: object) -> str | None:
    """A parsed path option as the plain string the options hold (None stays None)."""
    return None if path is None else str(path)


def parse_settings(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` strings as a mapping (values stay strings; the backend converts them)."""
    settings = {}
    for item in items:
        name, separator, value = item.partition("=")
        if not separator or not name.strip():
            raise ConfigError(f"--geometric needs NAME=VALUE, got {item!r}")
        settings[name.strip()] = value.strip()
    return settings


def add_protocol_arguments(parser: argparse.ArgumentParser, chunk_protocol: str | None = None) -> None:
    """Options of the chunk protocol (default: the table's, or ``chunk_protocol``), thresholding,
    SAM2 refinement and the streaming engine."""
    group = parser.add_argument_group("protocol")
    add_option(group, "chunk.protocol", aliases=("--protocol",), default=chunk_protocol or ...)
    add_option(group, "chunk.size")
    add_option(group, "mask.threshold", default=None,
               help_text="mask threshold on the probability (default: the chunk protocol's, 0.5 official and "
                         "0.1 eval; 0.5 with --streaming)")
    add_option(group, "sam2.enabled")
    add_option(group, "sam2.config")
    add_option(group, "sam2.checkpoint")
    streaming = parser.add_argument_group("streaming")
    for name in ("segment.streaming", "window.size", "window.stride", "queue.max_frames"):
        add_option(streaming, name)


def add_instance_arguments(parser: argparse.ArgumentParser) -> None:
    """``--instances`` and the settings of the instance stage (docs/instances.md)."""
    group = parser.add_argument_group("instances")
    add_option(group, "instances.enabled")
    for name in INSTANCE_FIELDS:
        add_option(group, f"instances.{name}")


def instance_config_from_args(args: argparse.Namespace) -> InstanceConfig | None:
    """The instance stage's settings of parsed :func:`add_instance_arguments` options; None when off."""
    if not args.instances:
        return None
    return InstanceConfig(**{name: getattr(args, f"instance_{name}") for name in INSTANCE_FIELDS})


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment moving objects in a video, frame folder or glob",
        description="Write OUT/masks/*.png, OUT/probability/*.png, OUT/overlay.mp4, OUT/trajectory.txt (TUM), "
                    "OUT/poses.json, with --points OUT/static_points.ply and, with --instances, "
                    "OUT/instances/*.png (object ids, DAVIS palette) and OUT/tracks.json.",
    )
    parser.add_argument("input", type=option_types.InputPath(glob=True), help="video file (mp4/avi/mkv/mov), folder of frames, or a quoted glob")
    parser.add_argument("-o", "--output", required=True, type=option_types.OUTPUT_DIR, help="output folder")
    add_backend_arguments(parser)
    add_protocol_arguments(parser)
    add_instance_arguments(parser)
    outputs = parser.add_argument_group("outputs")
    outputs.add_argument("--points", action="store_true", help="also write static_points.ply (moving points removed)")
    outputs.add_argument("--no-overlay", dest="overlay", action="store_false", help="do not write overlay.mp4")
    outputs.add_argument("--fps", type=option_types.FRAME_RATE, help="frame rate for timestamps of image inputs (default: 30)")
    outputs.add_argument("--max-frames", type=option_types.FRAME_COUNT, help="stop after this many frames")
    outputs.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    add_overwrite_argument(outputs)
    parser.set_defaults(func=run)


def add_overwrite_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--overwrite``: replace earlier results in the output folder (refused without it)."""
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the results of an earlier run in the output folder (they are kept until "
                             "this run is complete)")


def segment_options_from_args(args: argparse.Namespace) -> SegmentOptions:
    """The ``SegmentOptions`` of parsed ``segment`` options."""
    return SegmentOptions(
        backend=backend_options_from_args(args),
        protocol=args.chunk_protocol,
        chunk_size=args.chunk_size,
        threshold=args.threshold,
        sam2=args.sam2,
        sam2_config=args.sam2_config,
        sam2_checkpoint=_text(args.sam2_checkpoint),
        streaming=args.streaming,
        window=args.window,
        stride=args.stride,
        max_queue=args.max_queue,
        points=args.points,
        overlay=args.overlay,
        instances=instance_config_from_args(args),
        fps=args.fps,
        max_frames=args.max_frames,
        progress=args.progress,
        overwrite=args.overwrite,
    )


def run(args: argparse.Namespace) -> int:
    from geomotion_core.pipeline import segment_to_folder

    summary = segment_to_folder(args.input, args.output, segment_options_from_args(args))
    print(summary.format())
    return 0
