# SPDX-License-Identifier: Apache-2.0
"""The `geomotion` command.

Sub-commands are plug-ins: each entry point of the group ``geomotion.commands`` names a
``register(subparsers)`` function that adds one parser and sets ``func(args) -> int`` as its
default. Modules import their heavy dependencies (torch, rclpy) inside ``func`` so that
``geomotion --help`` stays fast. A command whose module cannot be imported is still listed and
explains why when it is run.

Errors: a bad option value is refused while parsing (:mod:`geomotion_core.cli.options`); a user
error (``GeoMotionError``) or a file-system error (``OSError``: missing, unreadable, disk full)
prints one line and exits 2; any other exception prints one line with a hint to rerun with
``--debug``, which shows the traceback instead, and exits 1.
"""
from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import EntryPoint, entry_points

from geomotion_core import __version__
from geomotion_core.cli.options import EXIT_USER_ERROR, OneLineParser
from geomotion_core.errors import GeoMotionError

ENTRY_POINT_GROUP = "geomotion.commands"
EXIT_INTERNAL_ERROR = 1
EXIT_INTERRUPTED = 130


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
    parser = OneLineParser(
        prog="geomotion",
        description="Motion segmentation and camera motion from a moving camera (GeoMotion).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        _register_command(subparsers, entry_point)
    return parser


def one_line(text: object) -> str:
    """``text`` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(text).split())


def describe_user_error(error: GeoMotionError) -> str:
    """The error on one line, followed by the command-line flags of the options it names."""
    from geomotion_core.options.table import OPTIONS_BY_NAME

    flags = [OPTIONS_BY_NAME[name].flag for name in error.options if name in OPTIONS_BY_NAME]
    flags = [flag for flag in flags if flag]
    return one_line(error) + (f" (options: {', '.join(flags)})" if flags else "")


def describe_os_error(error: OSError) -> str:
    """An OSError as ``<reason>: <path>``, without the class name and the errno tuple."""
    reason = error.strerror or one_line(error) or type(error).__name__
    paths = [str(name) for name in (error.filename, error.filename2) if name is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


def main(argv: list[str] | None = None) -> int:
    """Run the CLI: user errors print one line and return 2, other failures one line and 1."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a refused value (one line already printed)
        return stop.code if isinstance(stop.code, int) else EXIT_USER_ERROR
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    prefix = f"geomotion {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # noqa: BLE001 - every failure becomes one line (or a traceback with --debug)
        if args.debug:
            raise
        if isinstance(error, GeoMotionError):
            print(f"{prefix}: error: {describe_user_error(error)}", file=sys.stderr)
            return EXIT_USER_ERROR
        if isinstance(error, OSError):
            print(f"{prefix}: error: {describe_os_error(error)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(f"{prefix}: internal error: {type(error).__name__}: {one_line(error)} "
              "(rerun with `geomotion --debug ...` for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
