# SPDX-License-Identifier: Apache-2.0
"""Export the network to ONNX, describe the graphs, and check them against PyTorch.

Exported with ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` + onnxscript): the legacy
TorchScript exporter cannot translate the encoder's antialiased bicubic position-grid resize
(``aten::_upsample_bicubic2d_aa``). Weights go to an external-data file beside each graph (the
official network's 3.9 GB exceed protobuf's 2 GB limit).
"""
from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from geomotion_core.errors import ConfigError, GeoMotionError
from geomotion_core.export import graphs
from geomotion_core.export.settings import DEFAULT_MAX_FRAMES, GRAPH_KINDS, MIN_OPSET
from geomotion_core.model import GeoMotion
from geomotion_core.model.inputs import check_image_size

LOGGER = logging.getLogger(__name__)

MANIFEST = "manifest.json"
ATTENTION_OPS = ("Attention", "MultiHeadAttention", "Softmax")
EXPORTER_LOGGERS = ("onnxscript", "onnx_ir")  # one INFO line per optimiser rewrite: hundreds per graph


class ExportError(GeoMotionError):
    """The export failed, or the exported graph does not reproduce the PyTorch outputs."""


@dataclass(frozen=True)
class ExportSpec:
    """What to export.

    ``frames``: a fixed frame count N, or ``None`` for a dynamic N in ``[1, max_frames]``. The image
    size is always fixed (one graph per network input size).
    """

    height: int
    width: int
    frames: int | None = None
    max_frames: int = DEFAULT_MAX_FRAMES
    graph: str = "split"
    opset: int = MIN_OPSET
    optimize: bool = True

    def validate(self, patch_size: int) -> None:
        """Raise ConfigError on a value the exporter cannot honour."""
        try:
            check_image_size((self.height, self.width), patch_size)
        except GeoMotionError as exc:
            raise ConfigError(str(exc)) from exc
        if self.graph not in GRAPH_KINDS:
            raise ConfigError(f"graph must be one of {', '.join(GRAPH_KINDS)}, got {self.graph!r}")
        if self.opset < MIN_OPSET:
            raise ConfigError(f"opset must be >= {MIN_OPSET}, got {self.opset}")
        if self.max_frames < 1 or (self.frames is not None and not 1 <= self.frames <= self.max_frames):
            raise ConfigError(f"frames must be in [1, max_frames={self.max_frames}], got {self.frames}")

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    def example_frames(self) -> int:
        """N of the example inputs: the fixed N, or 2 for a dynamic N (1 would be specialised)."""
        return self.frames if self.frames is not None else min(2, self.max_frames)


@dataclass
class GraphReport:
    """One ONNX file: size, operator counts, inputs and outputs with their (symbolic) shapes."""

    path: str
    bytes: int
    nodes: int
    initializers: int
    op_counts: dict[str, int]
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    opset: int

    def attention_ops(self) -> dict[str, int]:
        return {op: count for op, count in self.op_counts.items() if op in ATTENTION_OPS}

    def summary(self, top: int = 12) -> str:
        ops = ", ".join(f"{op} {count}" for op, count in Counter(self.op_counts).most_common(top))
        shapes = "; ".join(f"{name} {shape}" for name, shape in {**self.inputs, **self.outputs}.items())
        return (f"{Path(self.path).name}: {self.bytes / 2**20:.1f} MiB, opset {self.opset}, {self.nodes} nodes, "
                f"{self.initializers} initializers; ops: {ops}; {shapes}")


@dataclass
class ExportResult:
    """The files written and their reports."""

    folder: str
    spec: ExportSpec
    graphs: dict[str, GraphReport] = field(default_factory=dict)  # "encoder"/"decoder" or "network"

    def to_dict(self) -> dict[str, object]:
        return {"folder": self.folder, "spec": asdict(self.spec),
                "graphs": {name: asdict(report) for name, report in self.graphs.items()}}


def graph_files(folder: Path, graph: str) -> dict[str, Path]:
    """The ONNX file of each graph of an export folder."""
    names = ("encoder", "decoder") if graph == "split" else ("network",)
    return {name: folder / f"{name}.onnx" for name in names}


def export_network(model: GeoMotion, spec: ExportSpec, folder: str | Path) -> ExportResult:
    """Export ``model`` (eval mode, float32) as ``spec`` says into ``folder`` (created).

    Writes ``encoder.onnx`` + ``decoder.onnx`` (split) or ``network.onnx`` (whole), each with a
    ``.data`` weights file, and ``manifest.json`` (the spec, the model config, versions).
    """
    spec.validate(model.config.patch_size)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    device = next(model.parameters()).device
    examples = example_inputs(spec, device)
    result = ExportResult(str(folder), spec)
    for name, path in graph_files(folder, spec.graph).items():
        module, inputs, input_names, dynamic = _graph_module(model, spec, name, examples)
        _export_one(module, inputs, input_names, dynamic, path, spec)
        result.graphs[name] = describe_graph(path)
        LOGGER.debug("%s", result.graphs[name].summary())
    manifest = {"spec": asdict(spec), "model": model.config.to_dict(), "versions": library_versions()}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return result


def example_inputs(spec: ExportSpec, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random images in [0, 1] ``[1, N, 3, H, W]`` and flow magnitudes ``[1, N, H, W]`` in pixels."""
    generator = torch.Generator().manual_seed(seed)
    frames = spec.example_frames()
    images = torch.rand(1, frames, 3, *spec.image_size, generator=generator)
    flow = 4.0 * torch.rand(1, frames, *spec.image_size, generator=generator)
    return {"images": images.to(device), "flow_magnitude": flow.to(device)}


def _graph_module(model: GeoMotion, spec: ExportSpec, name: str, examples: dict[str, torch.Tensor]):
    """(module, example inputs, input names, dynamic axis of each input) of one graph."""
    images, flow = examples["images"], examples["flow_magnitude"]
    if name == "encoder":
        return graphs.EncoderGraph(model), (images[0],), graphs.ENCODER_INPUTS, (0,)
    if name == "decoder":
        with torch.inference_mode():
            tokens = model.encode(images)
        return graphs.DecoderGraph(model, spec.image_size), (tokens.clone(), flow), graphs.DECODER_INPUTS, (1, 1)
    return graphs.WholeGraph(model), (images, flow), graphs.WHOLE_INPUTS, (1, 1)


def _export_one(module, inputs, input_names, axes, path: Path, spec: ExportSpec) -> None:
    module = module.eval()
    output_names = graphs.ENCODER_OUTPUTS if isinstance(module, graphs.EncoderGraph) else graphs.GRAPH_OUTPUTS
    dynamic_shapes = None
    if spec.frames is None:
        frames = torch.export.Dim("frames", min=1, max=spec.max_frames)
        dynamic_shapes = {name: {axis: frames} for name, axis in zip(input_names, axes)}
    progress = io.StringIO()
    try:
        with warnings.catch_warnings(), _quiet_exporter(), contextlib.redirect_stdout(progress):
            # one Dim shared by two inputs is reported as an unused axis name; sharing it is the intent
            warnings.filterwarnings("ignore", message=".*will not be used, since it shares the same shape")
            program = torch.onnx.export(
                module, inputs, dynamo=True, opset_version=spec.opset, input_names=list(input_names),
                output_names=list(output_names), dynamic_shapes=dynamic_shapes, optimize=spec.optimize,
                verbose=False,
            )
            program.save(str(path), external_data=True)
    except Exception as exc:  # the exporter raises many kinds; one message naming the graph
        raise ExportError(f"exporting {path.name} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        LOGGER.debug("exporter output for %s:\n%s", path.name, progress.getvalue())


@contextlib.contextmanager
def _quiet_exporter():
    """The exporter's own loggers at WARNING while it runs, unless this module logs at DEBUG."""
    loggers = [logging.getLogger(name) for name in EXPORTER_LOGGERS]
    levels = [logger.level for logger in loggers]
    if not LOGGER.isEnabledFor(logging.DEBUG):
        for logger in loggers:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def describe_graph(path: str | Path) -> GraphReport:
    """Size (graph + external weights), operator counts, inputs and outputs of an ONNX file."""
    import onnx

    path = Path(path)
    proto = onnx.load(str(path), load_external_data=False)
    data_files = {entry.value for tensor in proto.graph.initializer for entry in tensor.external_data
                  if entry.key == "location"}
    size = path.stat().st_size + sum((path.parent / name).stat().st_size for name in data_files)
    return GraphReport(
        path=str(path),
        bytes=size,
        nodes=len(proto.graph.node),
        initializers=len(proto.graph.initializer),
        op_counts=dict(Counter(node.op_type for node in proto.graph.node)),
        inputs={value.name: _shape(value) for value in proto.graph.input},
        outputs={value.name: _shape(value) for value in proto.graph.output},
        opset=max((entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx")), default=0),
    )


def _shape(value) -> list[int | str]:
    return [dim.dim_param or dim.dim_value for dim in value.type.tensor_type.shape.dim]


def library_versions() -> dict[str, str]:
    """Versions that decide what an export contains."""
    import onnx

    from geomotion_core import __version__

    return {"geomotion": __version__, "torch": torch.__version__, "onnx": onnx.__version__}


def read_manifest(folder: str | Path) -> dict[str, object]:
    """The manifest of an export folder (ConfigError when it is missing or unreadable)."""
    path = Path(folder) / MANIFEST
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a readable export manifest: {exc}") from exc
