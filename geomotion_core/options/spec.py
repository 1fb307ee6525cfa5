# SPDX-License-Identifier: Apache-2.0
"""The parts of the option table: a numeric range (:class:`Number`) and one option (:class:`Option`)."""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass

OptionValue = bool | int | float | str


@dataclass(frozen=True)
class Number:
    """A finite ``int`` or ``float`` in ``[low, high]``; also an argparse ``type`` parsing text.

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
        if not self.contains(value):
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

    def contains(self, value: float) -> bool:
        """Whether ``value`` (already a number) is finite and in the range."""
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return not self.multiple_of or value % self.multiple_of == 0


@dataclass(frozen=True)
class Option:
    """One user-facing option: defined once, read by the CLI, the ROS node and the dataclasses.

    ``name`` is the dotted name of the ROS parameter and of ``config/geomotion.yaml``; ``flag`` the
    command-line spelling (None: node only), ``aliases`` older spellings that still work and warn
    once. ``node_field`` names the node's settings field (None: command line only); ``live``
    options apply while the node runs, the others at configure. ``path`` (``file`` or ``dir``)
    makes the command line insist on an existing path; the node takes any text ("" for unset).
    ``pattern`` is a regular expression a text value must match in full.
    """

    name: str
    default: OptionValue
    help: str
    flag: str | None = None
    aliases: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    range: Number | None = None
    node_field: str | None = None
    live: bool = False
    path: str | None = None
    pattern: str | None = None
    metavar: str | None = None

    def __post_init__(self) -> None:
        problem = self.check(self.default)
        if problem:
            raise ValueError(f"option table entry {self.name}: default {problem}")
        if self.range is not None and self.range.kind is not self.kind:
            raise ValueError(f"option table entry {self.name}: a {self.kind.__name__} with a {self.range} range")

    @property
    def kind(self) -> type:
        """The value's type: bool, int, float or str (that of the default)."""
        return type(self.default)

    def check(self, value: object) -> str | None:
        """Why ``value`` is not allowed (``"<name> must be ..."``), or None when it is."""
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not self.kind:
            return f"{self.name} must be of type {self.kind.__name__}, got {value!r}"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}, got {value!r}"
        if self.range is not None and not self.range.contains(value):
            return f"{self.name} must be {self.range.describe()}, got {value!r}"
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.name} must match {self.pattern}, got {value!r}"
        return None

    def describe(self) -> str:
        """The accepted values in words (for documentation)."""
        if self.choices:
            return " | ".join(self.choices)
        if self.range is not None:
            return self.range.describe()
        if self.pattern is not None:
            return self.pattern
        if self.kind is bool:
            return "true | false"
        return f"a {self.path} path" if self.path else "text"
