# SPDX-License-Identifier: Apache-2.0
"""The one loader from mappings (YAML, JSON, ``NAME=VALUE`` text) to configuration dataclasses.

:func:`load` is strict: an unknown key is refused with the known ones listed, every value is
converted to its field's annotated type or refused (numbers written as text, as PyYAML reads
``5e-5`` or a command line gives ``0.75``, are converted; ``true``/``false``/``1``/``0`` are
booleans; ``none`` or an empty text clears an optional non-text field), numbers must be finite,
and a field made by :func:`~geomotion_core.options.table.option_field` is checked against its
option's choices and range. Nested dataclasses, lists and tuples are loaded recursively; the
dataclass's own validation (``__post_init__``) runs last.
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from geomotion_core.errors import ConfigError

T = TypeVar("T")
TRUE_WORDS = ("true", "1")
FALSE_WORDS = ("false", "0")
NONE_WORDS = ("none", "")


def load(cls: type[T], data: object, where: str = "", noun: str = "setting") -> T:
    """An instance of dataclass ``cls`` from the mapping ``data`` (absent keys keep their defaults).

    ``where`` prefixes field names in messages (``optim`` gives ``optim.lr``); ``noun`` names what
    a key is (``geometric setting``, ``model config key``). Raises ConfigError.
    """
    if not isinstance(data, typing.Mapping):
        raise ConfigError(f"{where or noun + 's'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {item.name: item for item in dataclasses.fields(cls) if item.init}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        inside = f" in {where}" if where else ""
        raise ConfigError(f"unknown {noun}(s) {', '.join(map(str, unknown))}{inside}; known: {', '.join(fields)}")
    values = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        values[name] = _value(hints[name], value, path, noun)
        table_option = fields[name].metadata.get("option")
        problem = table_option.check(values[name]) if table_option is not None else None
        if problem:
            raise ConfigError(f"{noun} {path}: {problem}")
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where or noun + 's'}: {error}") from error


def _value(hint: Any, value: object, path: str, noun: str) -> Any:
    """``value`` as the type ``hint`` (dataclass, list, tuple, optional or scalar) or ConfigError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        kinds = [kind for kind in typing.get_args(hint) if kind is not type(None)]
        if len(kinds) != 1 or len(typing.get_args(hint)) != 2:
            raise TypeError(f"{path}: only X | None unions can be loaded, not {hint}")
        if value is None or (kinds[0] is not str and isinstance(value, str) and value.strip().lower() in NONE_WORDS):
            return None
        return _value(kinds[0], value, path, noun)
    if value is None:
        raise ConfigError(f"{noun} {path} must not be empty")
    if dataclasses.is_dataclass(hint):
        return load(hint, value, path, noun)
    if origin in (list, tuple):
        return _sequence(hint, value, path, noun)
    return _scalar(hint, value, path, noun)


def _sequence(hint: Any, value: object, path: str, noun: str) -> list | tuple:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{noun} {path} must be a list, got {value!r}")
    args = typing.get_args(hint)
    if typing.get_origin(hint) is list or (len(args) == 2 and args[1] is Ellipsis):
        items = [_value(args[0], item, f"{path}[{index}]", noun) for index, item in enumerate(value)]
    else:
        if len(value) != len(args):
            raise ConfigError(f"{noun} {path} must have {len(args)} entries, got {len(value)}")
        items = [_value(kind, item, f"{path}[{index}]", noun) for index, (kind, item) in enumerate(zip(args, value))]
    return items if typing.get_origin(hint) is list else tuple(items)


def _scalar(kind: Any, value: object, path: str, noun: str) -> bool | int | float | str:
    if kind not in (bool, int, float, str):
        raise TypeError(f"{path}: fields of type {kind} cannot be loaded")
    if kind in (bool, str) and isinstance(value, kind):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value  # exact, however large
    text = value.strip().lower() if isinstance(value, str) else None
    if kind is bool and text in TRUE_WORDS + FALSE_WORDS:
        return text in TRUE_WORDS
    if kind in (int, float) and not isinstance(value, bool):
        number = _number(value)
        if number is not None and not math.isfinite(number):
            raise ConfigError(f"{noun} {path} must be a finite number, got {value!r}")
        if number is not None and (kind is float or number == int(number)):
            return kind(number)
    raise ConfigError(f"{noun} {path} needs a value of type {kind.__name__}, got {value!r}")


def _number(value: object) -> float | None:
    """``value`` as a float, or None when it is not a number or a text of one."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
