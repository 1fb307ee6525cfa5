# SPDX-License-Identifier: Apache-2.0
"""`geomotion doctor`: what this machine has for GeoMotion, and where weights are looked for."""
from __future__ import annotations

import argparse
import importlib
import platform
from dataclasses import dataclass

from geomotion_core.weights import WEIGHT_SPECS, find_weight, looked_at

OPTIONAL_MODULES = (
    ("sam2", "SAM2 refinement"),
    ("rclpy", "ROS 2 client library (node, bag eval)"),
    ("cv_bridge", "ROS image conversion (optional; numpy fallback)"),
    ("message_filters", "ROS message filters (optional; the node pairs camera_info by stamp without them)"),
    ("launch", "ros2 launch (optional)"),
    ("launch_ros", "ros2 launch ROS actions (optional)"),
    ("rosbags", "bag reading and writing"),
)


@dataclass
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


def _module_check(module: str, purpose: str) -> Check:
    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # any failure to import means "not usable here"
        return Check(module, False, f"not importable ({type(exc).__name__}: {exc}) - {purpose}")
    version = getattr(imported, "__version__", "")
    return Check(module, True, f"{version or 'available'} - {purpose}")


def _torch_checks() -> list[Check]:
    try:
        import torch
    except ImportError as exc:
        return [Check("torch", False, f"not importable: {exc}")]
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())]
    checks = [
        Check("torch", True, f"{torch.__version__} (threads: {torch.get_num_threads()})"),
        Check("devices", True, ", ".join(devices)),
    ]
    try:
        import torchvision

        checks.append(Check("torchvision", True, torchvision.__version__))
    except ImportError as exc:
        checks.append(Check("torchvision", False, f"not importable: {exc}"))
    return checks


def _weight_checks() -> list[Check]:
    checks = []
    for spec in WEIGHT_SPECS:
        found = find_weight(spec.key)
        detail = f"found {found}" if found else f"missing (looked at: {looked_at(spec.key)})"
        checks.append(Check(f"weights:{spec.key}", found is not None, f"{detail} - {spec.description}"))
    return checks


def collect_checks() -> list[Check]:
    """Every check of the report, in display order."""
    checks = [Check("python", True, f"{platform.python_version()} on {platform.machine()}")]
    checks += _torch_checks()
    checks += [_module_check(module, purpose) for module, purpose in OPTIONAL_MODULES]
    checks += _weight_checks()
    return checks


def run(args: argparse.Namespace) -> int:
    """Print the report; always succeeds (missing pieces are information, not errors)."""
    checks = collect_checks()
    width = max(len(check.name) for check in checks)
    for check in checks:
        print(f"[{'ok' if check.ok else '--'}] {check.name:<{width}}  {check.detail}")
    missing_weights = [c.name for c in checks if c.name.startswith("weights:") and not c.ok]
    if missing_weights:
        print("\nWeights are never downloaded automatically; see `geomotion weights`.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `doctor` sub-command."""
    parser = subparsers.add_parser("doctor", help="report torch, devices, sam2, ROS 2 and weight files")
    parser.set_defaults(func=run)
