"""Speed and peak memory of the GeoMotion network (random weights, official preset by default).

Reports ms/frame and peak memory for every combination of the requested sizes, clip lengths and
precisions. The full grid (N in 1, 8, 16, 32; 518x518 and 294x518; fp32 and bf16 autocast) is
meant for a GPU; on a CPU limit it, e.g.::

    .venv/bin/python -m benchmarks.bench_model --frames 1,2 --sizes 224x224,518x518 --precision fp32

``--engine onnxruntime`` / ``tensorrt`` time the exported graphs (``geomotion export``; split encoder +
decoder, the camera rotation projected in PyTorch) instead of the PyTorch model; ``tensorrt`` builds
one engine per precision and size (minutes each, cached in a temporary folder for the run).
``--compile --compile-mode reduce-overhead`` replays CUDA graphs (launch-bound small N).

Peak memory: CUDA's peak allocated bytes on a GPU; on Linux CPUs the process's peak resident set,
reset before each case through ``/proc/self/clear_refs``. On a shared CPU the process CPU time per
frame (``cpu ms/frame``) is steadier than the wall time.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from geomotion_core.backend import ENGINES
from geomotion_core.model import GeoMotion, GeoMotionConfig

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Case:
    height: int
    width: int
    frames: int
    precision: str
    sdpa: str
    engine: str = "torch"
    ms_per_frame: float | None = None
    ms_per_clip: float | None = None
    cpu_ms_per_frame: float | None = None
    peak_mib: float | None = None
    note: str = ""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--frames", default="1,8,16,32", help="comma-separated clip lengths N")
    parser.add_argument("--sizes", default="518x518,294x518", help="comma-separated HxW (multiples of 14)")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16, fp16 (autocast)")
    parser.add_argument("--threads", type=int, help="CPU intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", type=Path, help="JSON file whose 'model' object is a GeoMotionConfig")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model first")
    parser.add_argument("--compile-mode", default="default",
                        help="torch.compile mode: default, reduce-overhead (CUDA graphs), max-autotune")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="torch, or the exported graphs run by onnxruntime (fp32) or TensorRT")
    parser.add_argument(
        "--sdpa", default="default",
        help="comma-separated: default (PyTorch's choice) and/or math (forced, as the official code "
        "does for fp32; on a CPU it materialises the attention matrix)",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args(argv)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")


def peak_mib(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_case(model: Callable, case: Case, device: torch.device, args: argparse.Namespace) -> Case:
    generator = torch.Generator(device="cpu").manual_seed(0)
    images = torch.rand(1, case.frames, 3, case.height, case.width, generator=generator).to(device)
    flow = (torch.rand(1, case.frames, case.height, case.width, generator=generator) * 10).to(device)
    dtype = PRECISIONS[case.precision] if case.engine == "torch" else None  # engines carry their own
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    kernel = sdpa_kernel([SDPBackend.MATH]) if case.sdpa == "math" else contextlib.nullcontext()
    reset_peak(device)
    try:
        with torch.inference_mode(), autocast, kernel:
            for _ in range(args.warmup):
                model(images, flow)
            synchronise(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            for _ in range(args.repeats):
                model(images, flow)
            synchronise(device)
            elapsed = (time.perf_counter() - start) / args.repeats
            cpu_elapsed = (time.process_time() - cpu_start) / args.repeats
    except torch.OutOfMemoryError:
        case.note = "out of memory"
        return case
    finally:
        if device.type == "cuda":
            torch.cuda.empty_cache()
    case.ms_per_clip = elapsed * 1000
    case.ms_per_frame = case.ms_per_clip / case.frames
    case.cpu_ms_per_frame = cpu_elapsed * 1000 / case.frames
    case.peak_mib = peak_mib(device)
    return case


def engine_runner(model: torch.nn.Module, engine: str, precision: str, size: tuple[int, int],
                  device: torch.device, exported: dict[str, object]) -> Callable:
    """The model itself (torch), or the exported graphs of ``size`` run by ``engine`` at ``precision``."""
    if engine == "torch":
        return model
    from geomotion_core.export.engines import ExportedNetwork
    from geomotion_core.export.store import ExportStore

    store = exported.setdefault("store", ExportStore())  # one export per size, shared by the precisions
    if precision not in exported:
        exported[precision] = ExportedNetwork(engine, model, None, device, precision, store=store)
    return exported[precision].prepare(size)


def format_case(case: Case) -> str:
    head = f"{case.height}x{case.width:<4} {case.frames:>3} {case.precision:>5} {case.sdpa:>7} {case.engine:>11}"
    if case.note:
        return f"{head} {case.note}"
    peak = f"{case.peak_mib:9.0f}" if case.peak_mib is not None else f"{'-':>9}"
    return f"{head} {case.ms_per_frame:10.1f} {case.ms_per_clip:10.1f} {case.cpu_ms_per_frame:12.1f} {peak}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for value, allowed in ((args.sdpa, ("default", "math")), (args.precision, tuple(PRECISIONS))):
        unknown = set(value.split(",")) - set(allowed)
        if unknown:
            raise SystemExit(f"unknown choice(s) {sorted(unknown)}; allowed: {', '.join(allowed)}")
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    config = (
        GeoMotionConfig.from_dict(json.loads(args.config.read_text())["model"])
        if args.config else GeoMotionConfig.official()
    )
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    build_start = time.perf_counter()
    model = GeoMotion(config, device=device).eval()
    if args.compile:
        model = torch.compile(model, mode=args.compile_mode)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"built in {time.perf_counter() - build_start:.1f} s", flush=True)
    print(f"{'size':<9} {'N':>3} {'prec':>5} {'sdpa':>7} {'engine':>11} {'ms/frame':>10} {'ms/clip':>10} "
          f"{'cpu ms/frame':>12} {'peak MiB':>9}", flush=True)
    results = []
    exported: dict[str, object] = {}
    for size in args.sizes.split(","):
        height, width = (int(v) for v in size.lower().split("x"))
        for frames in (int(v) for v in args.frames.split(",")):
            for precision in args.precision.split(","):
                runner = engine_runner(model, args.engine, precision, (height, width), device, exported)
                for sdpa in args.sdpa.split(","):
                    case = run_case(runner, Case(height, width, frames, precision, sdpa, args.engine), device, args)
                    results.append(case)
                    print(format_case(case), flush=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(case) for case in results], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
