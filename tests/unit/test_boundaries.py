"""The import contracts in pyproject.toml hold today and catch a core module that reaches outward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / "pyproject.toml")], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not LINT.exists():
        pytest.fail(f"lint-imports is not installed beside {sys.executable}")
    root = tmp_path_factory.mktemp("house")
    shutil.copytree(ROOT / "detector", root / "detector", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_contracts_hold(copy: Path) -> None:
    result = _lint(copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("response/planning.py", "import sqlalchemy"),  # the playbook planner is pure
        ("rules/base.py", "import boto3"),  # a rule calls no cloud
        ("features/window.py", "import detector.cli.detection"),  # features know no command
        ("pipeline.py", "import detector.training"),  # the pipeline does not depend on what uses it
        ("features/geo.py", "import rich"),  # nor on a terminal
    ],
)
def test_a_core_module_reaching_outward_breaks_them(copy: Path, module: str, line: str) -> None:
    path = copy / "detector" / module
    original = path.read_text(encoding="utf-8")
    marker = "from __future__ import annotations\n"
    assert marker in original
    path.write_text(original.replace(marker, f"{marker}{line}  # noqa\n", 1), encoding="utf-8")
    try:
        result = _lint(copy)
    finally:
        path.write_text(original, encoding="utf-8")
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
