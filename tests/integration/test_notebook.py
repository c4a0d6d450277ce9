"""The tuning notebook runs top to bottom on a small simulation, saves a model, and passes ruff."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from detector.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "tune_detector.ipynb"
SMALL_RUN = {
    "KEYWATCH_NB_KEYS": "8",
    "KEYWATCH_NB_DAYS": "3",
    "KEYWATCH_NB_TEST_DAYS": "1",
    "KEYWATCH_NB_SEED": "7",
    "KEYWATCH_NB_SMALL": "1",
}
# cells tagged in the notebook whose output a reader relies on, and a text each must show
TEXT_OUTPUTS = {
    "event-counts": "operation",
    "evaluation": "overall recall",
    "rule-table": "volume_spike",
    "forest-sweep": "train_share_above",
    "rule-sweep": "max_p_value",
    "choose": "'threshold_margin'",
    "tuned-evaluation": "overall recall",
    "model-card": "feature_schema_version",
}

pytestmark = pytest.mark.integration


def _text(cell: Any) -> str:
    """Everything a cell printed or displayed as plain text."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("display_data", "execute_result"):
            parts.append(out["data"].get("text/plain", ""))
    return "\n".join(parts)


def _tagged(nb: Any, tag: str) -> Any:
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, float]:
    """Run the notebook once on a small simulation; outputs go to a temporary directory."""
    tmp = tmp_path_factory.mktemp("notebook")
    env = {**SMALL_RUN, "KEYWATCH_NB_OUT": str(tmp / "model"), "KEYWATCH_NB_WORK": str(tmp / "work")}
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}
    )
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        started = time.perf_counter()
        try:
            client.execute()
        finally:
            nbformat.write(nb, tmp / "executed.ipynb")  # kept for a look when a cell fails
        seconds = time.perf_counter() - started
    return nb, tmp, seconds


def test_notebook_runs_and_saves_a_model(executed: tuple[Any, Path, float]) -> None:
    nb, tmp, seconds = executed
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o["output_type"] == "error"]
    assert not errors
    card = json.loads((tmp / "model" / "model_card.json").read_text(encoding="utf-8"))
    assert card["feature_schema_version"] >= 1
    assert {"forest.skops", "profiles.json.gz"} <= set(card["files"])
    assert card["training"]["inputs"][0]["path"].endswith("history.jsonl")
    tuned = load_settings(tmp / "work" / "tuned-settings.yaml")  # rejects unknown keys
    assert 0.0 <= tuned.forest.contamination <= 0.5
    assert tuned.forest.contamination == card["thresholds"]["forest_contamination"]
    assert tuned.forest.threshold_margin == card["thresholds"]["forest_margin"]
    print(f"notebook executed in {seconds:.1f} s")


def test_key_cells_show_their_results(executed: tuple[Any, Path, float]) -> None:
    nb, _, _ = executed
    for tag, expected in TEXT_OUTPUTS.items():
        assert expected in _text(_tagged(nb, tag)), f"cell {tag!r} did not show {expected!r}"
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    images = sum("image/png" in o.get("data", {}) for o in outputs)
    assert images >= 5, f"expected the notebook's plots, got {images} images"


def test_stored_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "threshold_quantile" not in NOTEBOOK.read_text(encoding="utf-8"), "a removed forest setting"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "parameters" in code[1].metadata.get("tags", []), "the second code cell holds the parameters"


def test_notebook_passes_ruff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nbqa", "ruff", str(NOTEBOOK.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
