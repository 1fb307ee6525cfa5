# SPDX-License-Identifier: Apache-2.0
"""`geomotion demo`: render the synthetic clip, segment it, score it against its exact ground truth.

The masks are scored as one foreground (J, F), and the objects with their ids (instance J and F
of the ``davis2017-multi`` protocol, and id switches).

GeoMotion is used when its checkpoint is found (RAFT flow when those weights are found too, else
DIS); otherwise the weight-free geometric backend.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from geomotion_core.cli import options as option_types
from geomotion_core.cli.options import add_option

if TYPE_CHECKING:
    from geomotion_core.backend import BackendOptions

DEFAULT_OUTPUT = "demo_output"
CPU_SIZE = 280


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="segment a bundled synthetic clip and print J and F",
        description="Render a synthetic clip (moving camera, independently moving objects, exact masks), "
                    "segment it and score it.",
    )
    parser.add_argument("-o", "--output", type=option_types.OUTPUT_DIR, default=DEFAULT_OUTPUT, help="output folder (default: %(default)s)")
    parser.add_argument("--frames", type=option_types.DEMO_FRAMES, default=24, help="clip length (default: %(default)s)")
    add_option(parser, "device")
    parser.add_argument("--picture", metavar="PNG", type=option_types.OUTPUT_FILE, help="also save the comparison picture here (e.g. for a README)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=run)


def choose_backend(device: str) -> tuple[BackendOptions, str]:
    """GeoMotion when its checkpoint is found, else the geometric backend; with the reason.

    The full network at the official 518x518 takes minutes per chunk on a CPU, so there the demo
    runs it at 280 pixels (long side, aspect kept).
    """
    import torch

    from geomotion_core.backend import BackendOptions
    from geomotion_core.weights import find_weight

    checkpoint = find_weight("geomotion")
    if checkpoint is None:
        return BackendOptions(backend="geometric", device=device), "no GeoMotion checkpoint found (see `geomotion weights`)"
    flow = "raft" if find_weight("raft") else "dis"
    on_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    size = 518 if on_gpu else CPU_SIZE
    options = BackendOptions(checkpoint=str(checkpoint), flow=flow, device=device, size=size, keep_aspect=not on_gpu)
    return options, f"checkpoint {checkpoint}, {flow} flow, size {size}"


def run(args: argparse.Namespace) -> int:
    from geomotion_core.demo import DemoClipConfig, render_clip, write_clip
    from geomotion_core.demo.scoring import comparison_picture, read_label_maps, read_masks, score_instances, score_masks
    from geomotion_core.errors import ConfigError
    from geomotion_core.instances import InstanceConfig
    from geomotion_core.io.images import write_png
    from geomotion_core.pipeline import SegmentOptions, segment_to_folder

    if args.frames < 2:
        raise ConfigError(f"the demo clip needs at least 2 frames, got {args.frames}")
    output = Path(args.output)
    clip = render_clip(DemoClipConfig(frames=args.frames))
    frames_dir, truth_dir = write_clip(clip, output / "clip")
    backend, reason = choose_backend(args.device)
    print(f"demo: {args.frames} synthetic frames in {frames_dir}; backend {backend.backend} ({reason})")
    options = SegmentOptions(backend=backend, progress=args.progress, overwrite=True,  # the demo's own folder
                             instances=InstanceConfig())
    summary = segment_to_folder(frames_dir, output / "segmentation", options)
    names = [f"{index:05d}" for index in range(args.frames)]
    predicted = read_masks(summary.outputs["masks"], names)
    scores = score_masks(predicted, clip.masks)
    objects = score_instances(read_label_maps(summary.outputs["instances"], names), clip.instances)
    middle = args.frames // 2
    picture = comparison_picture(clip.frames[middle], clip.masks[middle], predicted[middle])
    pictures = [output / "demo_overlay.png"] + ([Path(args.picture)] if args.picture else [])
    for path in pictures:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_png(path, picture, compression=9)
    print(summary.format())
    print(f"ground truth {truth_dir}; picture (input | ground truth | prediction) {', '.join(map(str, pictures))}")
    print(f"demo scores over {scores.frames} frames ({summary.backend}): "
          f"J {scores.j_mean:.3f}  F {scores.f_mean:.3f}  J&F {scores.j_and_f:.3f}")
    print(f"instance scores ({objects.objects} objects, davis2017-multi): J {objects.j_mean:.3f}  F {objects.f_mean:.3f}  "
          f"J&F {objects.j_and_f:.3f}  id switches {objects.switches}")
    return 0
