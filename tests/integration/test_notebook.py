"""The tuning notebook runs top to bottom on a small simulation, saves a model, and passes ruff.

It also reads analysts' verdicts from a PostgreSQL store: the fixture stores one alert per labelled
instance of the same simulation (an analyst's true-positive verdict on each attack, a
false-positive verdict on each benign surprise), and section 7 scores the settings against them.
The notebook runs once, so on PostgreSQL only; ``test_feedback`` reads verdict labels on both backends.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from detector.adapters.store import Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.config import load_settings
from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.domain.events import parse_ts
from detector.domain.suppressions import Verdict
from detector.simulation.classic import simulate

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "tune_detector.ipynb"
SIMULATION: dict[str, Any] = {"keys": 8, "days": 3.0, "test_days": 1.0, "seed": 7}
SMALL_RUN = {f"KEYWATCH_NB_{name.upper()}": str(value) for name, value in SIMULATION.items()}
SMALL_RUN["KEYWATCH_NB_SMALL"] = "1"
# cells tagged in the notebook whose output a reader relies on, and a text each must show
TEXT_OUTPUTS = {
    "event-counts": "operation",
    "evaluation": "overall recall",
    "rule-table": "volume_spike",
    "forest-sweep": "train_share_above",
    "rule-sweep": "max_p_value",
    "choose": "'threshold_margin'",
    "tuned-evaluation": "overall recall",
    "suite": "isolation_forest",
    "model-card": "feature_schema_version",
}

pytestmark = pytest.mark.integration
VERDICT_ROW = re.compile(r"^verdict_true_positive\s+attack\s+(\d+)\s+(\d+)\s+([\d.]+)", re.MULTILINE)


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
def verdicts(module_postgres_url: str) -> dict[Verdict, int]:
    """A store with a verdict on one alert per labelled instance of the notebook's simulation."""
    sim = simulate(**SIMULATION)
    counts = dict.fromkeys(Verdict, 0)
    with Store(module_postgres_url) as store:
        store.migrate()
        feedback = FeedbackRepository(store)
        for scenario in sim.labels["scenarios"]:
            key, principal = scenario["key_ids"][0], scenario["principal"]
            start, end = parse_ts(scenario["start"]), parse_ts(scenario["end"])
            alert = Alert(alert_id_for(key, "volume_spike", principal, start), key, principal, "volume_spike",
                          Severity.HIGH, 0.9, max(start, end - 60), end, start,
                          [Reason("calls", 1.0, 0.0, scenario["scenario"])], [])  # fmt: skip
            store.save_batch([alert])
            verdict = Verdict.TRUE_POSITIVE if scenario["kind"] == "attack" else Verdict.FALSE_POSITIVE
            feedback.set_verdict(alert.alert_id, verdict, scenario["id"], "ann")
            counts[verdict] += 1
    assert counts[Verdict.TRUE_POSITIVE] and counts[Verdict.FALSE_POSITIVE]
    return counts


@pytest.fixture(scope="module")
def executed(
    tmp_path_factory: pytest.TempPathFactory, module_postgres_url: str, verdicts: dict[Verdict, int]
) -> tuple[Any, Path, float]:
    """Run the notebook once on a small simulation; outputs go to a temporary directory."""
    tmp = tmp_path_factory.mktemp("notebook")
    env = {**SMALL_RUN, "KEYWATCH_NB_OUT": str(tmp / "model"), "KEYWATCH_NB_WORK": str(tmp / "work"),
           "KEYWATCH_NB_VERDICTS_DB": module_postgres_url}  # fmt: skip
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


def test_verdicts_from_the_store_score_the_settings(
    executed: tuple[Any, Path, float], verdicts: dict[Verdict, int]
) -> None:
    nb, _, _ = executed
    text = _text(_tagged(nb, "verdicts"))
    tp, fp = verdicts[Verdict.TRUE_POSITIVE], verdicts[Verdict.FALSE_POSITIVE]
    assert f"{tp} true-positive and {fp} false-positive verdicts" in text
    assert "verdict_false_positive" in text and "precision" in text
    row = VERDICT_ROW.search(text)
    assert row, text
    instances, detected, recall = int(row[1]), int(row[2]), float(row[3])
    assert instances == tp and 0 < detected <= tp  # the chosen settings catch confirmed attacks
    assert recall == pytest.approx(detected / tp, abs=0.005)
    assert "postgresql" not in text  # the URL is never shown


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
