"""The `geomotion` command.

Sub-commands are plug-ins: each entry point of the group ``geomotion.commands`` names a
``register(subparsers)`` function that adds one parser and sets ``func(args) -> int`` as its
default. Modules import their heavy dependencies (torch, rclpy) inside ``func`` so that
``geomotion --help`` stays fast. A command whose module cannot be imported is still listed and
explains why when it is run.
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import EntryPoint, entry_points

from geomotion_core import __version__
from geomotion_core.errors import GeoMotionError

ENTRY_POINT_GROUP = "geomotion.commands"
EXIT_USER_ERROR = 2


def _register_unavailable(subparsers: argparse._SubParsersAction, name: str, reason: str) -> None:
    parser = subparsers.add_parser(name, help=f"(unavailable: {reason})")

    def fail(_: argparse.Namespace) -> int:
        raise GeoMotionError(f"the '{name}' command is unavailable: {reason}")

    parser.set_defaults(func=fail)


def _register_command(subparsers: argparse._SubParsersAction, entry_point: EntryPoint) -> None:
    try:
        register = entry_point.load()
    except ImportError as exc:
        _register_unavailable(subparsers, entry_point.name, f"{type(exc).__name__}: {exc}")
        return
    register(subparsers)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every installed sub-command."""
    parser = argparse.ArgumentParser(
        prog="geomotion",
        description="Motion segmentation and camera motion from a moving camera (GeoMotion).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        _register_command(subparsers, entry_point)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line and return exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        return int(args.func(args) or 0)
    except GeoMotionError as exc:
        print(f"geomotion {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"geomotion {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
