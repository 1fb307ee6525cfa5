"""Every sub-command refuses bad option values with exit 2, one stderr line, no traceback, and
writes nothing (issue 18: the CLI's one validation layer).

The walk covers every parser reachable from ``geomotion`` (entry-point plug-ins included, e.g.
``bag make`` and ``bag eval``), so a new option or command is covered without editing this file.
"""
from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from geomotion_core.cli import build_parser, main
from geomotion_core.cli.options import DeviceName, InputPath, Number, OutputPath

BAD_NUMBERS = ("nan", "inf", "-inf", "-1", "1e30", "1e400", "abc", "", "0x10", "1.5.2")
REPO = Path(__file__).resolve().parents[1]


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(argv prefix, parser) of every runnable sub-command, nested ones included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield prefix + (name,), child
                yield from _commands(child, prefix + (name,))


COMMANDS = [(" ".join(argv), argv, parser) for argv, parser in _commands(build_parser())]


def _valid_value(action: argparse.Action, place: Path) -> str:
    """A value the option accepts (only parsing is exercised, nothing runs with it)."""
    kind = action.type
    if action.choices:
        return str(next(iter(action.choices)))
    if isinstance(kind, Number):
        return str(kind.multiple_of or (kind.low if kind.low is not None and not kind.low_open else 1))
    if isinstance(kind, InputPath):
        return str(place / ("a_file.txt" if kind.kind == "file" else "a_dir"))
    if isinstance(kind, OutputPath):
        return str(place / "new_output")
    if isinstance(kind, DeviceName):
        return "cpu"
    return "x"


def _with_value(argv: tuple[str, ...], parser: argparse.ArgumentParser, target: argparse.Action, value: str,
                place: Path) -> list[str]:
    """The command with ``target`` set to ``value`` and every other required argument valid."""
    options, positionals = list(argv), []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        given = value if action is target else _valid_value(action, place)
        if not action.option_strings:
            if action is target or action.nargs not in ("*", "?"):
                positionals.append(given)
        elif action is target:
            options.append(f"{action.option_strings[-1]}={given}")
        elif action.required:
            options += [action.option_strings[0], given]
    return options + positionals


def _workspace(tmp_path: Path) -> Path:
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "a_file.txt").write_text("not what any option expects\n")
    return tmp_path


def _listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def _assert_refused(argv: list[str], capsys, place: Path) -> str:
    before = _listing(place)
    # objects left by earlier tests may print while collected (rclpy reports an executor task's
    # unretrieved exception from a node destroyed mid-callback): not this command's output
    gc.collect()
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    assert len(err.strip().splitlines()) == 1, (argv, err)
    assert "Traceback" not in err
    assert _listing(place) == before, f"{argv} wrote something"
    return err


def test_every_command_is_walked():
    names = {name for name, _, _ in COMMANDS}
    assert {"segment", "eval", "benchmark", "train", "demo", "weights", "weights download", "doctor",
            "bag", "bag make", "bag eval"} <= names


@pytest.mark.parametrize("name,argv,parser", COMMANDS, ids=[name for name, _, _ in COMMANDS])
def test_numeric_options_are_declared_with_a_range(name, argv, parser):
    """No option parses a bare int or float: each one names its range in the option table."""
    raw = [action.dest for action in parser._actions if action.type in (int, float)]
    assert raw == [], f"{name}: options without a declared range: {raw}"


PATH_METAVARS = {"PATH", "DIR", "OUT", "JSON", "ROOT", "PNG"}
NAMED_OR_PATH = {"--sam2-config"}  # a file, or a config name inside the sam2 package (checked when used)


@pytest.mark.parametrize("name,argv,parser", COMMANDS, ids=[name for name, _, _ in COMMANDS])
def test_path_options_are_declared_with_a_kind(name, argv, parser):
    """Every option taking a path says whether it is an input file/folder or an output."""
    untyped = [action.option_strings or action.dest for action in parser._actions
               if action.metavar in PATH_METAVARS and not isinstance(action.type, (InputPath, OutputPath))
               and not NAMED_OR_PATH & set(action.option_strings)]
    assert untyped == [], f"{name}: path options without a kind: {untyped}"


@pytest.mark.parametrize("name,argv,parser", COMMANDS, ids=[name for name, _, _ in COMMANDS])
def test_bad_numbers_are_refused(name, argv, parser, tmp_path, capsys):
    place = _workspace(tmp_path)
    numeric = [action for action in parser._actions if isinstance(action.type, Number)]
    for action in numeric:
        bad = list(BAD_NUMBERS)
        bad += [str(value) for value in (0, action.type.low, action.type.high) if value is not None
                and _out_of_range(action.type, value)]
        for value in bad:
            err = _assert_refused(_with_value(argv, parser, action, value, place), capsys, place)
            assert action.option_strings[0] in err or action.dest in err


@pytest.mark.parametrize("name,argv,parser", COMMANDS, ids=[name for name, _, _ in COMMANDS])
def test_bad_devices_are_refused(name, argv, parser, tmp_path, capsys):
    place = _workspace(tmp_path)
    for action in parser._actions:
        if isinstance(action.type, DeviceName):
            for value in ("bogus", "cuda:x", "", "nan", "-1"):
                _assert_refused(_with_value(argv, parser, action, value, place), capsys, place)


def _out_of_range(kind: Number, value: float) -> bool:
    try:
        kind(str(value))
    except argparse.ArgumentTypeError:
        return True
    return False


@pytest.mark.parametrize("name,argv,parser", COMMANDS, ids=[name for name, _, _ in COMMANDS])
def test_bad_paths_are_refused(name, argv, parser, tmp_path, capsys):
    place = _workspace(tmp_path)
    for action in parser._actions:
        kind = action.type
        if isinstance(kind, InputPath):
            bad = [str(place / "missing" / "nothing")]
            bad += {"file": [str(place / "a_dir")], "dir": [str(place / "a_file.txt")]}.get(kind.kind, [])
        elif isinstance(kind, OutputPath):
            bad = [str(place / "a_file.txt" / "below")]
            bad += {"file": [str(place / "a_dir")], "dir": [str(place / "a_file.txt")]}[kind.kind]
        else:
            continue
        for value in bad:
            _assert_refused(_with_value(argv, parser, action, value, place), capsys, place)


def test_ranges_accept_their_bounds_and_refuse_just_outside():
    rate = Number(float, 0.0, 1.0, high_open=True)
    assert rate("0") == 0.0 and rate("0.999") == pytest.approx(0.999)
    for text in ("1", "1.0", "-1e-9"):
        with pytest.raises(argparse.ArgumentTypeError):
            rate(text)
    size = Number(int, 14, 4088, multiple_of=14)
    assert size("56") == 56
    for text in ("15", "0", "56.0"):
        with pytest.raises(argparse.ArgumentTypeError):
            size(text)


def _geomotion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "geomotion_core.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("argv", [
    ["segment", "{frames}", "-o", "{out}", "--fps", "inf"],  # hung in cv2.VideoWriter
    ["segment", "{frames}", "-o", "{out}", "--fps", "1e9"],  # blamed overlay.mp4
    ["eval", "--gt", "{frames}", "--pred", "{frames}", "--pred-threshold", "-5"],
    ["eval", "--gt", "{frames}", "--pred", "{frames}", "--pred-threshold", "300"],
    ["eval", "--gt", "{frames}", "--pred", "{frames}", "--json", "{frames}"],  # --json at a folder
    ["bag", "make", "--benchmark", "davis2016", "--data", "{frames}", "--seq", "s", "-o", "{out}", "--fps", "nan"],
    ["bag", "make", "--benchmark", "davis2016", "--data", "{frames}", "--seq", "s", "-o", "{out}", "--fps", "1e-9"],
    ["bag", "eval", "{frames}", "--rate", "-1"],
    ["bag", "eval", "{frames}", "--protocol", "nope"],  # was checked after the whole replay
    ["weights", "download", "--timeout", "-1"],
    ["demo", "-o", "{file}"],  # output path that is a file
    ["train", "--config", "{file}", "--output-dir", "{file}"],
    ["train", "--config", "{file}", "--device", "gpu"],
    ["segment", "{garbage}", "-o", "{out}", "--backend", "geometric"],  # FFmpeg printed its own line first
    ["segment", "{frames}", "-o", "{out}"],  # no image in the folder
], ids=lambda argv: " ".join(argv[:1] + argv[-2:]))
def test_reported_cases_in_a_real_process(argv, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "garbage.mp4").write_bytes(bytes(range(256)) * 4)
    values = {"frames": str(frames), "out": str(tmp_path / "out"), "file": str(tmp_path / "file"),
              "garbage": str(tmp_path / "garbage.mp4")}
    result = _geomotion(*[part.format(**values) for part in argv])
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr and "PosixPath" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unexpected_error_is_one_line_with_a_debug_hint(monkeypatch, capsys, tmp_path):
    import geomotion_core.cli.weights as weights_cli

    def broken(_args):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(weights_cli, "run_list", broken)
    assert main(["weights"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "RuntimeError: boom second line" in err and "--debug" in err
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "weights"])


def test_geomotion_home_that_is_a_file_is_one_line(tmp_path):
    home = tmp_path / "home_file"
    home.write_text("x")
    result = _geomotion("weights", "--no-hash", env={"GEOMOTION_HOME": str(home)})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "GEOMOTION_HOME" in result.stderr
