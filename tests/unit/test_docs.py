"""The docs match the code: generated references are current, and every relative link resolves."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from detector.cli.reference import main, references

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("name", sorted(references()))
def test_the_generated_reference_is_current(name: str) -> None:
    current = (ROOT / "docs" / name).read_text(encoding="utf-8")
    assert current == references()[name], f"docs/{name} is stale: run python -m detector.cli.reference"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert main(["--docs", str(tmp_path)]) == 0
    assert main(["--docs", str(tmp_path), "--check"]) == 0
    (tmp_path / "reference" / "cli.md").write_text("old\n", encoding="utf-8")
    assert main(["--docs", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    missing = [target for target in LINK.findall(text)
               if "://" not in target and not target.startswith("mailto:")
               and not (page.parent / target).exists()]  # fmt: skip
    assert not missing, f"{page.relative_to(ROOT)} links to missing files: {missing}"


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 150
