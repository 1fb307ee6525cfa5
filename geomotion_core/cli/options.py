"""The one validation layer of the `geomotion` command line: typed option values.

Every numeric option is declared with a :class:`Number` (finite, in a stated range) and every
path option with an :class:`InputPath` or :class:`OutputPath`, passed as argparse's ``type``. So a
bad value (``nan``, ``inf``, ``-1``, ``1e30``, ``abc``, a folder where a file is expected, a file
where a folder is expected, a missing input) is refused while the command line is parsed, before
anything is read or written, with one line and exit code 2 (see :class:`OneLineParser`).
The named constants below are the option table: each sub-command takes its ranges from here.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from geomotion_core.io.frames import MAX_FPS, MIN_FPS

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
class Number:
    """An argparse ``type``: a finite ``int`` or ``float`` in ``[low, high]``.

    ``low_open`` / ``high_open`` exclude the bound itself (e.g. a positive frame rate).
    """

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    multiple_of: int | None = None

    @property
    def __name__(self) -> str:  # argparse names the type in some messages
        return self.kind.__name__

    def describe(self) -> str:
        """The accepted range in words, e.g. ``a number in (0, 1000]``."""
        what = "an integer" if self.kind is int else "a number"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        multiple = f", a multiple of {self.multiple_of}" if self.multiple_of else ""
        return f"{what} in {left}{low}, {high}{right}{multiple}"

    def __call__(self, text: str) -> int | float:
        value = self._parse(text)
        if not self._in_range(value):
            raise argparse.ArgumentTypeError(f"{text!r} is out of range: expected {self.describe()}")
        return value

    def _parse(self, text: str) -> int | float:
        try:
            value = int(text, 10) if self.kind is int else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {self.describe()}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not finite: expected {self.describe()}")
        return value

    def _in_range(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return not self.multiple_of or value % self.multiple_of == 0


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

    pattern: str = r"auto|cpu|mps|cuda(:[0-9]+)?"

    @property
    def __name__(self) -> str:
        return "device"

    def __call__(self, text: str) -> str:
        if not re.fullmatch(self.pattern, text.strip()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a device: expected auto, cpu, cuda, cuda:N or mps")
        return text.strip()


# ------------------------------------------------------------------ the option table (ranges)

FRAME_RATE = Number(float, MIN_FPS, MAX_FPS)  # frames per second of stamps / videos
PLAYBACK_RATE = Number(float, 0.0, 1_000.0)  # bag replay speed; 0 = as fast as the node takes frames
PROBABILITY_THRESHOLD = Number(float, 0.0, 1.0, high_open=True)
PIXEL_THRESHOLD = Number(float, 0.0, 255.0, high_open=True)  # 8-bit grey level of predicted masks
NETWORK_SIZE = Number(int, 14, 4088, multiple_of=14)
CHUNK_SIZE = Number(int, 1, 10_000)
WINDOW = Number(int, 2, 1_000)
STRIDE = Number(int, 1, 1_000)
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
IMAGE_SIZE = Number(int, 14, 4088, multiple_of=14)
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
