"""Settings: the documented defaults file equals the code, environment beats file, clear errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from detector.config import DEFAULTS_FILE, DetectionSettings, Settings, load_settings
from detector.domain.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KEYWATCH_* variable from the developer's shell leaks into these tests."""
    for name in [n for n in os.environ if n.startswith("KEYWATCH_")]:
        monkeypatch.delenv(name)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keywatch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _keys(tree: Any, prefix: str = "") -> set[str]:
    if not isinstance(tree, dict):
        return {prefix}
    out: set[str] = set()
    for k, v in tree.items():
        # free-form maps (severity shifts) are values, not settings names
        out |= {f"{prefix}{k}"} if k.endswith("_shift") else _keys(v, f"{prefix}{k}.")
    return out


def test_documented_defaults_equal_the_code() -> None:
    assert load_settings(DEFAULTS_FILE) == Settings()


def test_documented_defaults_name_every_setting() -> None:
    documented = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    assert _keys(documented) == _keys(Settings().model_dump())


def test_detection_part_is_the_pure_core_settings() -> None:
    settings = load_settings(DEFAULTS_FILE)
    assert settings.detection == DetectionSettings()
    assert set(DetectionSettings.model_fields) < set(Settings.model_fields)


def test_no_file_means_defaults() -> None:
    assert load_settings() == Settings()


def test_file_values_override_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "window:\n  seconds: 120\nrules:\n  volume_spike:\n    ratio: 10\n")
    s = load_settings(path)
    assert s.window.seconds == 120 and s.rules.volume_spike.ratio == 10
    assert s.window.allowed_lateness_seconds == 30.0  # untouched siblings keep their defaults
    assert s.rules.volume_spike.min_events == 30


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write(tmp_path, "window:\n  seconds: 120\n  allowed_lateness_seconds: 10\n")
    monkeypatch.setenv("KEYWATCH_WINDOW__SECONDS", "30")
    monkeypatch.setenv("KEYWATCH_RULES__VOLUME_SPIKE__RATIO", "12.5")
    s = load_settings(path)
    assert s.window.seconds == 30.0
    assert s.window.allowed_lateness_seconds == 10.0  # the file still applies where env is silent
    assert s.rules.volume_spike.ratio == 12.5


def test_config_path_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYWATCH_CONFIG", str(_write(tmp_path, "alerts:\n  merge_gap_windows: 9\n")))
    assert load_settings().alerts.merge_gap_windows == 9


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(Exception, match="frozen"):
        s.window.seconds = 5  # type: ignore[misc]


def _error(path: Path | str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.strip() and "\n" not in message, f"not one line: {message!r}"
    return message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("window:\n  seconds: -1\n", "window.seconds"),
        ("window:\n  seconds: lots\n", "window.seconds"),
        ("window:\n  second: 30\n", "window.second"),
        ("unknown_section: {}\n", "unknown_section"),
        ("rules:\n  volume_spike:\n    ratio: 0.5\n", "rules.volume_spike.ratio"),
        ("forest:\n  n_estimators: 1\n", "forest.n_estimators"),
        ("- a list\n- not a mapping\n", "mapping"),
    ],
)
def test_bad_values_and_unknown_keys_say_where(tmp_path: Path, text: str, says: str) -> None:
    assert says in _error(_write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    assert "not found" in _error(tmp_path / "nope.yaml")


def test_invalid_yaml_is_one_line(tmp_path: Path) -> None:
    message = _error(_write(tmp_path, "window: {seconds: 30\n"))
    assert "not valid YAML" in message and "line 2, column 1" in message and "\n" not in message


def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEYWATCH_WINDOW__SECONDS", "soon")
    assert "window.seconds" in _error(DEFAULTS_FILE)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(_write(tmp_path, "# nothing set\n")) == Settings()
