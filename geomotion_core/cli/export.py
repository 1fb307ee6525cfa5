# SPDX-License-Identifier: Apache-2.0
"""`geomotion export -o DIR`: the network as ONNX graphs, described and checked against PyTorch.

``DIR`` receives ``encoder.onnx`` + ``decoder.onnx`` (default; the streaming reuse of encoder
tokens keeps working) or ``network.onnx`` (``--graph whole``), their ``.data`` weight files,
``manifest.json`` and ``report.json`` (graph sizes, operator counts, the numerical check).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from geomotion_core.cli import options as option_types
from geomotion_core.cli.options import add_option

REPORT = "report.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `export` parser."""
    from geomotion_core.export.settings import DEFAULT_MAX_FRAMES, GRAPH_KINDS, MIN_OPSET

    parser = subparsers.add_parser(
        "export",
        help="export the network to ONNX (for onnxruntime, TensorRT) and check it against PyTorch",
        description="Export the GeoMotion network to ONNX at one input size, with a fixed or dynamic frame "
        "count; report the graphs and check them with onnxruntime against PyTorch. See docs/export.md.",
    )
    parser.add_argument("-o", "--output", type=option_types.OUTPUT_DIR, required=True, metavar="DIR", help="output folder")
    weights = parser.add_argument_group("network")
    for name in ("model.checkpoint", "model.config", "model.allow_random_weights"):
        add_option(weights, name)
    shape = parser.add_argument_group("graph")
    add_option(shape, "inference.size", help_text="square input side, a multiple of 14")
    shape.add_argument("--height", type=option_types.NETWORK_SIZE, help="input height (with --width; overrides --size)")
    shape.add_argument("--width", type=option_types.NETWORK_SIZE, help="input width (with --height)")
    shape.add_argument("--frames", type=option_types.EXPORT_FRAMES, metavar="N",
                       help="a fixed frame count N (default: dynamic, 1..--max-frames)")
    shape.add_argument("--max-frames", type=option_types.EXPORT_FRAMES, default=DEFAULT_MAX_FRAMES, metavar="N",
                       help="largest N of a dynamic graph (TensorRT's shape range) (default: %(default)s)")
    shape.add_argument("--graph", choices=GRAPH_KINDS, default="split",
                       help="split: encoder + decoder graphs (streaming token reuse); whole: one graph "
                            "(default: %(default)s)")
    shape.add_argument("--opset", type=option_types.ONNX_OPSET, default=MIN_OPSET, help="ONNX opset (default: %(default)s)")
    shape.add_argument("--no-optimize", dest="optimize", action="store_false",
                       help="skip the exporter's graph optimisation (faster export, larger graph)")
    check = parser.add_argument_group("check")
    check.add_argument("--no-check", dest="check", action="store_false", help="skip the onnxruntime check")
    check.add_argument("--tolerance", type=option_types.EXPORT_TOLERANCE, default=1e-4,
                       help="allowed |onnx - torch| per element, absolute and relative (default: %(default)g)")
    check.add_argument("--overwrite", action="store_true", help="replace an earlier export in the output folder")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from geomotion_core.backend import BackendOptions
    from geomotion_core.errors import ConfigError
    from geomotion_core.export.onnx_export import ExportError, ExportSpec, export_network
    from geomotion_core.pipeline.model_loading import load_network, resolve_checkpoint

    if (args.height is None) != (args.width is None):
        raise ConfigError("give both --height and --width, or neither (then --size sets a square)")
    output = Path(args.output)
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise ConfigError(f"{output} is not empty (use --overwrite to replace an earlier export)")
    if args.frames is not None and args.frames > args.max_frames:
        raise ConfigError(f"--frames {args.frames} is above --max-frames {args.max_frames}")
    options = BackendOptions(checkpoint=args.checkpoint, model_config=args.model_config,
                             allow_random_weights=args.allow_random_weights, device="cpu")
    checkpoint = resolve_checkpoint(options.checkpoint, options.allow_random_weights)
    model = load_network(checkpoint, options.model_config, torch.device("cpu"))
    spec = ExportSpec(args.height or args.size, args.width or args.size, args.frames, args.max_frames, args.graph,
                      args.opset, args.optimize)
    result = export_network(model, spec, output)
    report = result.to_dict()
    for graph in result.graphs.values():
        print(graph.summary())
    if args.check:
        from geomotion_core.export.onnx_runtime import OnnxRuntimeNetwork, compare_with_torch

        agreement = compare_with_torch(model, OnnxRuntimeNetwork(output, torch.device("cpu")),
                                       atol=args.tolerance, rtol=args.tolerance)
        print(agreement.summary())
        report["check"] = {"max_abs": agreement.max_abs, "frames": agreement.frames, "tolerance": args.tolerance,
                           "passed": agreement.passed}
    (output / REPORT).write_text(json.dumps(report, indent=1))
    if args.check and not report["check"]["passed"]:
        raise ExportError(f"the exported graphs differ from PyTorch beyond {args.tolerance:g}: {agreement.summary()}")
    return 0
