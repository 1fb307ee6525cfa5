"""`geomotion segment INPUT -o OUT`: motion masks, probabilities, overlay and camera poses of a video.

The backend options are defined by :func:`add_backend_arguments` and read back by
:func:`backend_options_from_args`, so other commands (``benchmark``, ``bag eval``) offer the same.
"""
from __future__ import annotations

import argparse

from geomotion_core.backend import BACKENDS, ENGINES, FLOW_METHODS, PRECISIONS, BackendOptions
from geomotion_core.cli import options as option_types
from geomotion_core.errors import ConfigError
from geomotion_core.pipeline.official import DEFAULT_CHUNK_SIZE, PROTOCOLS
from geomotion_core.pipeline.segment import SegmentOptions


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """Options that choose and configure the motion backend (a ``BackendOptions``)."""
    group = parser.add_argument_group("backend")
    group.add_argument("--backend", choices=BACKENDS, default="geomotion",
                       help="geomotion: the network (needs a checkpoint); geometric: weight-free (default: %(default)s)")
    group.add_argument("--checkpoint", metavar="PATH", type=option_types.INPUT_FILE,
                       help="GeoMotion best_model.pth or one of ours (default: best_model.pth in the weights folder)")
    group.add_argument("--model-config", metavar="JSON", type=option_types.INPUT_FILE,
                       help='JSON whose "model" object is a GeoMotionConfig (default: the official size)')
    group.add_argument("--random-weights", action="store_true",
                       help="run the network with random weights when no checkpoint is found (smoke tests only)")
    group.add_argument("--flow", choices=FLOW_METHODS, default="raft",
                       help="optical flow: raft (official, needs weights) or dis (OpenCV) (default: %(default)s)")
    group.add_argument("--raft-weights", metavar="PATH", type=option_types.INPUT_FILE, help="raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    group.add_argument("--device", type=option_types.DEVICE, default="auto", help="auto, cpu, cuda or cuda:N (default: %(default)s)")
    group.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="network autocast precision (default: %(default)s, as official)")
    group.add_argument("--engine", choices=ENGINES, default="torch",
                       help="network engine: torch, onnxruntime (fp32; exported once and cached) or tensorrt "
                            "(CUDA; fp16/bf16 engine built once and cached) (default: %(default)s)")
    group.add_argument("--size", type=option_types.NETWORK_SIZE, default=518,
                       help="network input size, a multiple of 14: square side, or long side with --keep-aspect "
                            "(default: %(default)s)")
    group.add_argument("--keep-aspect", action="store_true",
                       help="keep the aspect ratio (multiples of 14) instead of the official square resize")
    group.add_argument("--geometric", action="append", default=[], metavar="NAME=VALUE",
                       help="a setting of the weight-free backend, e.g. flow_scale=0.75 (repeatable; "
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
        allow_random_weights=args.random_weights,
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


def add_protocol_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the chunk protocol, thresholding and SAM2 refinement."""
    group = parser.add_argument_group("protocol")
    group.add_argument("--protocol", choices=PROTOCOLS, default="official",
                       help="official: consecutive chunks; eval: 4 interleaved frame groups as the official "
                            "eval.py (default: %(default)s)")
    group.add_argument("--chunk-size", type=option_types.CHUNK_SIZE, default=DEFAULT_CHUNK_SIZE,
                       help="frames per network pass (default: %(default)s)")
    group.add_argument("--threshold", type=option_types.PROBABILITY_THRESHOLD,
                       help="mask threshold on the probability (default: 0.5 official, 0.1 eval)")
    group.add_argument("--sam2", action=argparse.BooleanOptionalAction, default=False,
                       help="refine masks with SAM2 (per chunk; over the whole sequence with --protocol eval)")
    group.add_argument("--sam2-config", metavar="YAML",
                       help="SAM2 config file or bundled name (default: sam2.1_hiera_l.yaml of the sam2 package)")
    group.add_argument("--sam2-checkpoint", metavar="PATH", type=option_types.INPUT_FILE,
                       help="SAM2 checkpoint (default: sam2.1_hiera_large.pt in the weights folder)")
    group.add_argument("--streaming", action="store_true",
                       help="sliding windows of the streaming engine (one continuous trajectory) instead of chunks")
    group.add_argument("--window", type=option_types.WINDOW, default=8, help="streaming window length (default: %(default)s)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment moving objects in a video, frame folder or glob",
        description="Write OUT/masks/*.png, OUT/probability/*.png, OUT/overlay.mp4, OUT/trajectory.txt (TUM), "
                    "OUT/poses.json and, with --points, OUT/static_points.ply.",
    )
    parser.add_argument("input", type=option_types.InputPath(glob=True), help="video file (mp4/avi/mkv/mov), folder of frames, or a quoted glob")
    parser.add_argument("-o", "--output", required=True, type=option_types.OUTPUT_DIR, help="output folder")
    add_backend_arguments(parser)
    add_protocol_arguments(parser)
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
        protocol=args.protocol,
        chunk_size=args.chunk_size,
        threshold=args.threshold,
        sam2=args.sam2,
        sam2_config=args.sam2_config,
        sam2_checkpoint=args.sam2_checkpoint,
        streaming=args.streaming,
        window=args.window,
        points=args.points,
        overlay=args.overlay,
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
