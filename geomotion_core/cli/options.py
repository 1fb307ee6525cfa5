# SPDX-License-Identifier: Apache-2.0
"""The one validation layer of the `geomotion` command line: typed option values.

Every numeric option is declared with a :class:`Number` (finite, in a stated range) and every
path option with an :class:`InputPath` or :class:`OutputPath`, passed as argparse's ``type``. So a
bad value (``nan``, ``inf``, ``-1``, ``1e30``, ``abc``, a folder where a file is expected, a file
where a folder is expected, a missing input) is refused while the command line is parsed, before
anything is read or written, with one line and exit code 2 (see :class:`OneLineParser`).

Options shared with the node and other commands come from the option table
(:mod:`geomotion_core.options.table`) through :func:`add_option`; the named ranges at the end are
those of options only one command has.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from geomotion_core.io.frames import MAX_FPS, MIN_FPS
from geomotion_core.options.spec import Number, Option
from geomotion_core.options.table import DEVICE_PATTERN, option

EXIT_USER_ERROR = 2
GLOB_CHARACTERS = frozenset("*?[")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2.

    Sub-parsers made by ``add_subparsers`` are of the same class, so every sub-command inherits it.
    """

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        sys.stderr.write(f"{self.prog}: error: {text} (see `{self.prog} --help`)\n")
        sys.exit(EXIT_USER_ERROR)


@dataclass(frozen=True)
class InputPath:
    """An argparse ``type``: a path that must exist as a ``file``, a ``dir`` or ``any`` of them.

    ``glob=True`` also lets through a quoted glob pattern (checked when it is expanded);
    ``keywords`` are words accepted as they are (e.g. ``auto``).
    """

    kind: str = "any"
    glob: bool = False
    keywords: tuple[str, ...] = ()

    @property
    def __name__(self) -> str:
        return "path"

    def __call__(self, text: str) -> Path | str:
        if text in self.keywords:
            return text
        if not text.strip():
            raise argparse.ArgumentTypeError("empty path")
        path = Path(text).expanduser()
        if self.glob and GLOB_CHARACTERS & set(text) and not path.exists():
            return text
        if not path.exists():
            raise argparse.ArgumentTypeError(f"{text} does not exist")
        if self.kind == "file" and not path.is_file():
            raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file")
        if self.kind == "dir" and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, expected a folder")
        return path


@dataclass(frozen=True)
class OutputPath:
    """An argparse ``type``: where a ``file`` or a ``dir`` will be written.

    Refused: an existing path of the other kind, and a path below an existing file. Nothing is
    created here; the command creates it when it writes.
    """

    kind: str = "dir"

    @property
    def __name__(self) -> str:
        return "path"

    def __call__(self, text: str) -> Path:
        if not text.strip():
            raise argparse.ArgumentTypeError("empty path")
        path = Path(text).expanduser()
        if self.kind == "dir" and path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file, expected a folder")
        if self.kind == "file" and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file name")
        ancestor = next((parent for parent in path.absolute().parents if parent.exists()), None)
        if ancestor is not None and not ancestor.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is inside {ancestor}, which is a file")
        return path


@dataclass(frozen=True)
class DeviceName:
    """An argparse ``type``: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (whether that device
    exists is checked where it is used)."""

    pattern: str = DEVICE_PATTERN

    @property
    def __name__(self) -> str:
        return "device"

    def __call__(self, text: str) -> str:
        if not re.fullmatch(self.pattern, text.strip()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a device: expected auto, cpu, cuda, cuda:N or mps")
        return text.strip()


class DeprecatedFlag(argparse.Action):
    """An older spelling of an option: sets the same value and prints one warning line to use ``replacement``."""

    def __init__(self, option_strings: list[str], dest: str, replacement: str, **kwargs: Any) -> None:
        self.replacement = replacement
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        sys.stderr.write(f"{parser.prog}: warning: {option_string} is deprecated; use {self.replacement}\n")
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


def option_type(entry: Option) -> Any:
    """The argparse ``type`` of a table entry: its range, path kind or pattern (None: plain text)."""
    if entry.range is not None:
        return entry.range
    if entry.path is not None:
        return InputPath(entry.path)
    if entry.pattern is not None:
        return DeviceName(entry.pattern)
    return None


def add_option(parser: argparse.ArgumentParser | argparse._ArgumentGroup, name: str, *,
               default: Any = ..., aliases: tuple[str, ...] = (), help_text: str | None = None) -> argparse.Action:
    """Add table option ``name`` (its flag, type, choices, default and help) to ``parser``.

    ``default`` replaces the table's for this command (None: "not given"; ``help_text`` says what then);
    ``aliases`` are older spellings of this command on top of the table's. Text options whose table
    default is empty default to None. A boolean becomes ``--flag`` / ``--no-flag``. The action
    records the entry as ``action.option`` and the older spellings as ``action.aliases`` (tests and
    docs/options.md compare the CLI and the node through them).
    """
    entry = option(name)
    if entry.flag is None:
        raise ValueError(f"option {name} has no command-line flag")
    value = (None if entry.default == "" else entry.default) if default is ... else default
    text = help_text or entry.help
    shown = "" if value is None or entry.kind is bool or "default:" in text else " (default: %(default)s)"
    keywords: dict[str, Any] = {"dest": entry.flag.removeprefix("--").replace("-", "_"), "default": value,
                                "help": text + shown}
    if entry.kind is bool:
        action = parser.add_argument(entry.flag, action=argparse.BooleanOptionalAction, **keywords)
        alias_keywords: dict[str, Any] = {"nargs": 0, "const": True}
    else:
        kind = option_type(entry)
        keywords.update(type=kind, choices=entry.choices or None, metavar=entry.metavar)
        action = parser.add_argument(entry.flag, **keywords)
        alias_keywords = {"type": kind, "choices": entry.choices or None, "metavar": entry.metavar}
    action.aliases = (*entry.aliases, *aliases)
    for alias in action.aliases:
        parser.add_argument(alias, action=DeprecatedFlag, replacement=entry.flag, dest=keywords["dest"],
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS, **alias_keywords)
    action.option = entry
    return action


# ------------------------------------------------------------------ ranges of single-command options

FRAME_RATE = Number(float, MIN_FPS, MAX_FPS)  # frames per second of stamps / videos
PLAYBACK_RATE = Number(float, 0.0, 1_000.0)  # bag replay speed; 0 = as fast as the node takes frames
PIXEL_THRESHOLD = Number(float, 0.0, 255.0, high_open=True)  # 8-bit grey level of predicted masks
NETWORK_SIZE = option("inference.size").range  # export --height / --width
FRAME_COUNT = Number(int, 1, 10_000_000)
DEMO_FRAMES = Number(int, 2, 10_000)
WORKERS = Number(int, 1, 1_024)
LOADER_WORKERS = Number(int, 0, 256)
STEPS = Number(int, 1, 10**9)
EPOCHS = Number(int, 1, 1_000_000)
LEARNING_RATE = Number(float, 0.0, 1.0, low_open=True)
BATCH_SIZE = Number(int, 1, 4_096)
ACCUMULATE = Number(int, 1, 4_096)
SEQUENCE_LENGTH = Number(int, 2, 1_000)
SEED = Number(int, 0, 2**32 - 1)
TIMEOUT_S = Number(float, 0.0, 86_400.0, low_open=True)
EXPORT_FRAMES = Number(int, 1, 1_024)  # frame count N of an exported graph (fixed, or the dynamic maximum)
ONNX_OPSET = Number(int, 18, 28)  # 18: first with antialiased Resize; 28: the newest onnx 1.23 knows
EXPORT_TOLERANCE = Number(float, 0.0, 1.0, low_open=True)  # exported vs PyTorch outputs

DEVICE = DeviceName()
INPUT_FILE = InputPath("file")
INPUT_DIR = InputPath("dir")
INPUT_ANY = InputPath("any")
OUTPUT_DIR = OutputPath("dir")
OUTPUT_FILE = OutputPath("file")
