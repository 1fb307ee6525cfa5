# SPDX-License-Identifier: Apache-2.0
"""`geomotion weights`: which weight files GeoMotion expects, where they are looked for, which exist.

``geomotion weights`` lists every expected file with the paths looked at, and for present files
their size and sha256. ``geomotion weights download [KEYS]`` fetches missing files into
GEOMOTION_HOME where a network exists; without one it fails with one clear message.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from geomotion_core import weights
from geomotion_core.cli import options as option_types
from geomotion_core.errors import GeoMotionError

# CLI options naming an explicit file for a weight key (the same spelling as `geomotion segment`).
EXPLICIT_OPTIONS = {
    "pi3": "--pi3",
    "geomotion": "--checkpoint",
    "raft": "--raft-weights",
    "sam2": "--sam2-checkpoint",
    "sam2_config": "--sam2-config",
}


@dataclass
class WeightStatus:
    """What is known about one expected file on this machine."""

    key: str
    filename: str
    description: str
    licence: str
    source: str | None
    looked_at: list[str]
    path: str | None = None
    size: int | None = None
    sha256: str | None = None
    sha256_matches: bool | None = None  # against the published prefix, where there is one


def _explicit_path(args: argparse.Namespace, key: str) -> str | None:
    return getattr(args, f"explicit_{key}", None)


def _source(spec: weights.WeightSpec) -> str | None:
    return f"huggingface.co/{spec.hf_repo}" if spec.hf_repo and not spec.url else spec.url


def weight_status(spec: weights.WeightSpec, explicit: str | None, with_hash: bool) -> WeightStatus:
    """The status of one expected file: where it was looked for, and its size and hash if found."""
    candidates = weights.candidate_paths(spec.key, explicit)
    status = WeightStatus(
        spec.key, spec.filename, spec.description, spec.licence, _source(spec), [str(p) for p in candidates]
    )
    found = next((path for path in candidates if path.is_file()), None)
    if found is None:
        return status
    status.path, status.size = str(found), found.stat().st_size
    if with_hash:
        status.sha256 = _hash_with_progress(found)
        if spec.sha256_prefix:
            status.sha256_matches = status.sha256.startswith(spec.sha256_prefix)
    return status


def _hash_with_progress(path: Path) -> str:
    from tqdm import tqdm

    with tqdm(
        total=path.stat().st_size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", leave=False, disable=None
    ) as bar:
        return weights.file_sha256(path, progress=bar.update)


def _human_size(size: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    power = min(max(size, 1).bit_length() - 1, 10 * (len(units) - 1)) // 10
    return f"{size} B" if power == 0 else f"{size / 1024**power:.1f} {units[power]}"


def _print_table(statuses: list[WeightStatus]) -> None:
    home = weights.weights_home()
    print(f"Weights folder: {home}  (set ${weights.HOME_VARIABLE} to change it)\n")
    for status in statuses:
        state = "present" if status.path else "missing"
        print(f"{status.key:<12} {status.filename:<40} {state}")
        print(f"{'':<12} {status.description}; licence {status.licence}")
        if status.path:
            print(f"{'':<12} path:   {status.path}")
            print(f"{'':<12} size:   {_human_size(status.size or 0)} ({status.size} bytes)")
            if status.sha256:
                verdict = {True: " (matches the published prefix)", False: " (DOES NOT match the published prefix)"}
                print(f"{'':<12} sha256: {status.sha256}{verdict.get(status.sha256_matches, '')}")
        else:
            print(f"{'':<12} looked at: {', '.join(status.looked_at)}")
        if status.source:
            print(f"{'':<12} source: {status.source}")
        print()
    missing = [status.key for status in statuses if not status.path]
    print(f"{len(statuses) - len(missing)} of {len(statuses)} files present.", end="")
    if missing:
        print(f" Fetch the missing ones with `geomotion weights download {' '.join(missing)}`.")
    else:
        print()


def run_list(args: argparse.Namespace) -> int:
    """List the expected files; always succeeds (a missing file is information, not an error)."""
    statuses = [weight_status(spec, _explicit_path(args, spec.key), not args.no_hash) for spec in weights.WEIGHT_SPECS]
    if args.json:
        print(json.dumps({"home": str(weights.weights_home()), "weights": [asdict(s) for s in statuses]}, indent=2))
    else:
        _print_table(statuses)
    return 0


def run_download(args: argparse.Namespace) -> int:
    """Fetch the named (default: all missing) files into GEOMOTION_HOME."""
    from geomotion_core.download import fetch_weight

    known = [spec.key for spec in weights.WEIGHT_SPECS]
    unknown = [key for key in args.keys if key not in known]
    if unknown:
        raise GeoMotionError(f"unknown weight key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    home = weights.weights_home()
    failures = []
    for key in args.keys or known:
        found = weights.find_weight(key)
        if found is not None and not args.force:
            print(f"{key}: present at {found}")
            continue
        try:
            print(f"{key}: saved to {fetch_weight(weights.weight_spec(key), home, args.timeout)}")
        except GeoMotionError as exc:
            failures.append(f"{key}: {exc}")
    if failures:
        raise GeoMotionError(
            f"{len(failures)} download(s) failed ({'; '.join(failures)}); without a network, copy the files "
            f"into {home} by hand (see `geomotion weights`)"
        )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `weights` sub-command (list by default, `download` to fetch)."""
    parser = subparsers.add_parser(
        "weights", help="list expected weight files, where they are looked for, sizes and sha256; download them"
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.add_argument("--no-hash", action="store_true", help="skip the sha256 of present files (fast)")
    for key, option in EXPLICIT_OPTIONS.items():
        filename = weights.weight_spec(key).filename
        # a named weight file must exist; the SAM2 config may also be a name inside the sam2 package
        kind = None if weights.weight_spec(key).bundled else option_types.INPUT_FILE
        parser.add_argument(option, dest=f"explicit_{key}", metavar="PATH", type=kind,
                            help=f"an explicit {filename} to check")
    parser.set_defaults(func=run_list)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    download = actions.add_parser("download", help="fetch missing weight files into GEOMOTION_HOME")
    keys = ", ".join(spec.key for spec in weights.WEIGHT_SPECS)
    download.add_argument("keys", nargs="*", metavar="KEY", help=f"files to fetch (default: all missing): {keys}")
    download.add_argument("--force", action="store_true", help="download even if the file is present")
    download.add_argument("--timeout", type=option_types.TIMEOUT_S, default=30.0, help="network timeout in seconds (default 30)")
    download.set_defaults(func=run_download)
