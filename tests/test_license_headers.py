"""The project's license, Apache-2.0, named the same way everywhere: LICENSE, the package metadata
and the first line of every source file (``# SPDX-License-Identifier: Apache-2.0``)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = "# SPDX-License-Identifier: Apache-2.0\n"
SOURCE_FOLDERS = ("geomotion_core", "geomotion_ros", "launch")


def source_files() -> list[Path]:
    files = [path for folder in SOURCE_FOLDERS for path in sorted((ROOT / folder).rglob("*.py"))]
    return [*files, ROOT / "setup.py"]


def test_every_source_file_starts_with_the_spdx_line() -> None:
    files = source_files()
    missing = [str(path.relative_to(ROOT)) for path in files if not path.read_text(encoding="utf-8").startswith(HEADER)]
    assert len(files) > 100 and not missing, f"add {HEADER.strip()!r} as the first line of: {', '.join(missing)}"


def test_license_file_and_package_metadata_name_the_same_license() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text.splitlines()[0] and "Version 2.0" in text.splitlines()[1]
    assert re.search(r"<license>Apache-2\.0</license>", (ROOT / "package.xml").read_text(encoding="utf-8"))
    setup = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    licenses = [keyword.value.value for node in ast.walk(setup) if isinstance(node, ast.Call)
                for keyword in node.keywords if keyword.arg == "license"]
    assert licenses == ["Apache-2.0"]
