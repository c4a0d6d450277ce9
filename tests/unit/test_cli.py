"""The ``keywatch`` command line, run in-process: the whole chain, and one-line errors for mistakes."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from detector.adapters.model_store import CARD, PROFILES, load_model
from detector.cli.main import main
from detector.domain.alerts import Alert
from detector.domain.events import parse_ts
from detector.rules import DETECTORS
from detector.sources import decode_and_parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SMALL_FOREST = "forest:\n  n_estimators: 20\n"


@dataclass(frozen=True)
class Chain:
    """Files and printed lines of simulate -> train -> replay -> evaluate on a tiny simulation."""

    root: Path
    data: Path
    model: Path
    alerts: Path
    config: Path
    out: dict[str, str]


def _main(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("cli")
    data, model, alerts, config = root / "data", root / "model", root / "alerts.jsonl", root / "small.yaml"
    config.write_text(SMALL_FOREST, encoding="utf-8")
    steps = {
        "simulate": ["simulate", "--out", str(data), "--keys", "5", "--days", "2", "--test-days", "0.5",
                     "--seed", "3"],
        "train": ["train", str(data / "history.jsonl"), "--config", str(config), "--out", str(model)],
        "replay": ["replay", str(data / "test.jsonl"), "--config", str(config), "--model", str(model),
                   "--catalog", str(data / "catalog.yaml"), "--out", str(alerts),
                   "--dead-letter", str(root / "dead.jsonl")],
        "evaluate": ["evaluate", "--labels", str(data / "labels.json"), "--alerts", str(alerts)],
        "evaluate_json": ["evaluate", "--labels", str(data / "labels.json"), "--alerts", str(alerts),
                          "--json"],
    }  # fmt: skip
    out = {}
    for name, argv in steps.items():
        code, stdout, stderr = _main(argv)
        assert (code, stderr) == (0, ""), f"{name} failed: {stderr}"
        out[name] = stdout
    return Chain(root, data, model, alerts, config, out)


def test_simulate_writes_its_four_files(chain: Chain) -> None:
    assert {p.name for p in chain.data.iterdir()} == {
        "history.jsonl",
        "test.jsonl",
        "labels.json",
        "catalog.yaml",
    }
    first = orjson.loads(chain.data.joinpath("history.jsonl").read_bytes().splitlines()[0])
    assert decode_and_parse(orjson.dumps(first), "canonical").events
    assert "simulated" in chain.out["simulate"] and "attack scenarios" in chain.out["simulate"]


def test_train_writes_a_verified_model(chain: Chain) -> None:
    card = json.loads((chain.model / CARD).read_text(encoding="utf-8"))
    assert card["settings"]["forest"]["n_estimators"] == 20  # --config was honoured
    assert card["training"]["inputs"][0]["path"].endswith("history.jsonl")
    assert "trained on" in chain.out["train"] and "forest threshold" in chain.out["train"]


def test_replay_writes_alerts_that_parse_back(chain: Chain) -> None:
    lines = [line for line in chain.alerts.read_bytes().splitlines() if line.strip()]
    alerts = [Alert.from_dict(orjson.loads(line)) for line in lines]
    assert alerts, "the simulation holds attacks: replay must alert"
    assert len({a.alert_id for a in alerts}) == len(alerts)
    assert {a.detector for a in alerts} <= set(DETECTORS)
    assert all(a.reasons and a.reasons[0].text for a in alerts)
    assert any(a.environment == "production" for a in alerts)  # --catalog was honoured
    assert f"{len(alerts)} alerts" in chain.out["replay"]
    assert not (chain.root / "dead.jsonl").exists() or not (chain.root / "dead.jsonl").read_bytes()


def test_evaluate_prints_a_table_and_json(chain: Chain) -> None:
    table = chain.out["evaluate"]
    assert table.splitlines()[0].split()[:3] == ["scenario", "kind", "inst"]
    assert "overall recall" in table and "false alerts" in table
    report = json.loads(chain.out["evaluate_json"])
    assert {"rows", "overall_recall", "false_alerts"} <= set(report)
    assert 0.0 <= report["overall_recall"] <= 1.0


def test_normalize_a_published_record_with_dead_letters(tmp_path: Path) -> None:
    good = FIXTURES / "cloudtrail" / "kms_decrypt.json"
    bad = FIXTURES / "bad" / "truncated_cloudtrail.json"
    out, dead = tmp_path / "events.jsonl", tmp_path / "dead.jsonl"
    code, stdout, stderr = _main(["normalize", str(good), str(bad), "--out", str(out),
                                  "--dead-letter", str(dead), "--no-geo"])  # fmt: skip
    assert (code, stderr) == (0, "")
    assert "1 dead-lettered" in stdout
    (line,) = out.read_bytes().splitlines()
    (event,) = decode_and_parse(line, "canonical").events
    assert (event.operation, event.source, event.outcome) == ("Decrypt", "aws-kms", "success")
    assert event.principal == "arn:aws:iam::111122223333:user/Alice"
    (entry,) = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert entry["origin"] == bad.name
    assert "invalid JSON" in entry["error"]
    assert base64.b64decode(entry["raw_b64"]) == bad.read_bytes().strip()
    assert entry["raw_text"] == bad.read_text(encoding="utf-8").strip()


def test_normalize_geolocates_public_addresses_only(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    code, _, stderr = _main(["normalize", str(FIXTURES / "cloudtrail" / "ec2_example_two_records.json"),
                             "--out", str(out)])  # fmt: skip
    assert (code, stderr) == (0, "")
    events = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    by_ip = {e["source_ip"]: e for e in events}
    assert by_ip["AWS Internal"]["country"] == ""
    located = by_ip["172.172.172.172"]
    assert len(located["country"]) == 2 and located["country"].isupper()
    assert isinstance(located["lat"], float)


# --- user mistakes: one line on stderr, exit code 2, no traceback ----------------------------------


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("keywatch: error: ")
    assert captured.err.count("\n") == 1, f"not one line: {captured.err!r}"
    assert "Traceback" not in captured.err
    return captured.err


def test_missing_input_file(tmp_path: Path, capsys) -> None:
    err = _one_line_error(capsys, ["train", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "m")])
    assert "missing.jsonl" in err
    assert not (tmp_path / "m").exists()


def test_missing_labels_file(chain: Chain, tmp_path: Path, capsys) -> None:
    err = _one_line_error(
        capsys, ["evaluate", "--labels", str(tmp_path / "nope.json"), "--alerts", str(chain.alerts)]
    )
    assert "nope.json" in err


def test_unknown_format_is_refused_by_argparse(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["normalize", str(FIXTURES / "cloudtrail" / "kms_decrypt.json"), "--format", "xml",
              "--out", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'xml'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "says"),
    [("window:\n  seconds: -1\n", "window.seconds"), ("windows:\n  seconds: 30\n", "windows"),
     ("window: {seconds: 30\n", "not valid YAML")],
    ids=["bad-value", "unknown-key", "invalid-yaml"],
)  # fmt: skip
def test_bad_config_file(chain: Chain, tmp_path: Path, capsys, text: str, says: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")
    argv = ["replay", str(chain.data / "test.jsonl"), "--config", str(config), "--model", str(chain.model),
            "--out", str(tmp_path / "a.jsonl")]  # fmt: skip
    assert says in _one_line_error(capsys, argv)


def test_missing_config_file(chain: Chain, tmp_path: Path, capsys) -> None:
    argv = ["train", str(chain.data / "history.jsonl"), "--config", str(tmp_path / "none.yaml"),
            "--out", str(tmp_path / "m")]  # fmt: skip
    assert "none.yaml" in _one_line_error(capsys, argv)


def test_bad_catalog_file(chain: Chain, tmp_path: Path, capsys) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("keys:\n  - match: [unclosed\n", encoding="utf-8")
    argv = ["replay", str(chain.data / "test.jsonl"), "--model", str(chain.model), "--catalog", str(catalog),
            "--out", str(tmp_path / "a.jsonl")]  # fmt: skip
    assert "catalog" in _one_line_error(capsys, argv)


def test_model_dir_that_is_not_one(chain: Chain, tmp_path: Path, capsys) -> None:
    argv = [
        "replay",
        str(chain.data / "test.jsonl"),
        "--model",
        str(tmp_path),
        "--out",
        str(tmp_path / "a.jsonl"),
    ]
    assert "not a KeyWatch model directory" in _one_line_error(capsys, argv)
    assert not (tmp_path / "a.jsonl").exists()


@pytest.mark.parametrize(
    "content",
    [b"{not json}\n", b'{"alert_id": "a"}\n', b'{"alert_id": "a", "key_id": "k", "detector": "d", '
     b'"severity": "urgent", "score": 1, "window_start": "2024-05-01T00:00:00Z", '
     b'"window_end": "2024-05-01T00:01:00Z"}\n'],
    ids=["not-json", "missing-fields", "bad-severity"],
)  # fmt: skip
def test_malformed_alerts_file(chain: Chain, tmp_path: Path, capsys, content: bytes) -> None:
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_bytes(content)
    err = _one_line_error(
        capsys, ["evaluate", "--labels", str(chain.data / "labels.json"), "--alerts", str(alerts)]
    )
    assert "alerts.jsonl:1 is not a KeyWatch alert" in err


def test_labels_that_are_not_json(chain: Chain, tmp_path: Path, capsys) -> None:
    labels = tmp_path / "labels.json"
    labels.write_text("{oops", encoding="utf-8")
    err = _one_line_error(capsys, ["evaluate", "--labels", str(labels), "--alerts", str(chain.alerts)])
    assert "labels.json" in err


def test_replay_update_model_saves_what_it_learned(chain: Chain, tmp_path: Path) -> None:
    """``--update-model`` promises to save the profiles learned during replay into the model."""
    model = Path(shutil.copytree(chain.model, tmp_path / "model"))
    before = (model / PROFILES).read_bytes()
    argv = ["replay", str(chain.data / "test.jsonl"), "--config", str(chain.config), "--model", str(model),
            "--out", str(tmp_path / "a.jsonl"), "--update-model"]  # fmt: skip
    code, _, stderr = _main(argv)
    assert (code, stderr) == (0, "")
    assert (model / PROFILES).read_bytes() != before, "--update-model left the profiles untouched"
    test_start = parse_ts(json.loads((chain.data / "labels.json").read_text())["meta"]["test_start"])
    assert max(p.last_ts for p in load_model(model).profiles.keys.values()) >= test_start


def test_run_flags_override_the_kafka_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from detector.cli.main import build_parser
    from detector.cli.stream import settings_from

    monkeypatch.setenv("KEYWATCH_KAFKA__WORKERS", "3")
    args = build_parser().parse_args(["run", "--workers", "1", "--group", "g2"])
    kafka = settings_from(args).kafka
    assert (kafka.workers, kafka.group) == (1, "g2")
    assert settings_from(build_parser().parse_args(["run"])).kafka.workers == 3  # no flag: config
    for bad in ("-1", "65", "two"):
        with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
            build_parser().parse_args(["run", "--workers", bad])


def test_simulate_writes_either_generator_at_any_strength(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "fleet"
    args = ["simulate", "--out", str(out), "--keys", "12", "--days", "2", "--test-days", "1"]
    assert main([*args, "--generator", "fleet", "--strength", "0.3"]) == 0
    labels = orjson.loads((out / "labels.json").read_bytes())
    assert labels["meta"]["strength"] == 0.3 and labels["meta"]["generator"].startswith("keywatch-fleet")
    assert main([*args, "--strength", "1.5"]) == 2
    assert "--strength must be in (0, 1]" in capsys.readouterr().err
