"""The modules of geomotion_core and geomotion_ros import each other without a cycle.

Every import counts, wherever it is written (module level, inside a function, under
``TYPE_CHECKING``): a cycle hidden in a function is still a tangle a reader has to follow.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geomotion_core", "geomotion_ros")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (a package is its __init__)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(path: Path, module: str, is_package: bool) -> set[str]:
    """Absolute names of everything ``path`` imports (``from x import y`` gives ``x.y``: the module
    ``x.y`` if there is one, else a name from module ``x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the packages it imports (each imported name resolved to the longest
    module name it starts with)."""
    files = module_files()
    graph = {}
    for module, path in files.items():
        targets = set()
        for name in imported_names(path, module, path.name == "__init__.py"):
            while name and name not in files:
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        graph[module] = targets
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_packages_import_each_other_without_a_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100 and "geomotion_core.backends" in graph["geomotion_core.pipeline.segment"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_backend_interface_imports_no_implementation() -> None:
    imports = import_graph()["geomotion_core.backend"]
    assert imports <= {"geomotion_core.errors", "geomotion_core.types"}, sorted(imports)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"b"}}, ["b", "b"]),
])
def test_find_cycle_reports_the_cycle(graph: dict[str, set[str]], expected: list[str] | None) -> None:
    assert find_cycle(graph) == expected


def test_relative_and_function_level_imports_are_edges(tmp_path: Path) -> None:
    source = tmp_path / "module.py"
    source.write_text("from . import sibling\nfrom ..other import thing\n\ndef f():\n    import deep.name\n")
    names = imported_names(source, "pkg.sub.module", is_package=False)
    assert names == {"pkg.sub.sibling", "pkg.other.thing", "deep.name"}


def test_building_the_geometric_backend_imports_nothing_of_the_network() -> None:
    code = ("import sys; from geomotion_core.backends import BackendOptions, build_backend; "
            "build_backend(BackendOptions(backend='geometric')); "
            "print(sorted(m for m in sys.modules if m.startswith(('geomotion_core.model', "
            "'geomotion_core.pipeline', 'geomotion_core.refine', 'sam2'))))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            check=True)
    assert result.stdout.strip() == "[]"
