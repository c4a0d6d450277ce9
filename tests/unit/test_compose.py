"""docker-compose.yml: every KeyWatch service is configured only through settings that exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from detector.config import Settings, load_settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _keywatch_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("build") or "keywatch" in str(svc.get("image", ""))
    }


def _setting_exists(model: type[BaseModel], path: list[str]) -> bool:
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    if len(path) == 1:
        return True
    inner = field.annotation
    return isinstance(inner, type) and issubclass(inner, BaseModel) and _setting_exists(inner, path[1:])


def test_two_consumers_kafka_and_postgres(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"kafka", "postgres"} <= services.keys()
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    runners = [n for n, s in _keywatch_services(compose).items() if s.get("command") == ["run"]]
    assert len(runners) == 2


def test_every_keywatch_variable_names_a_setting(compose: dict[str, Any]) -> None:
    services = _keywatch_services(compose)
    assert services
    for name, svc in services.items():
        env = svc.get("environment") or {}
        assert env, f"{name} has no environment"
        for var in env:
            assert var.startswith("KEYWATCH_"), f"{name}: {var} is not a KeyWatch setting"
            path = var.removeprefix("KEYWATCH_").lower().split("__")
            if path == ["config"]:
                continue
            assert _setting_exists(Settings, path), f"{name}: {var} matches no setting"


def test_the_loader_reads_the_consumer_environment(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["services"]["detector-1"]["environment"]
    for var, value in env.items():
        monkeypatch.setenv(var, str(value))
    settings = load_settings(None)
    assert settings.kafka.bootstrap_servers == env["KEYWATCH_KAFKA__BOOTSTRAP_SERVERS"]
    assert settings.kafka.group == env["KEYWATCH_KAFKA__GROUP"]
    assert settings.store.url == env["KEYWATCH_STORE__URL"]
    assert str(settings.store.password_file) == env["KEYWATCH_STORE__PASSWORD_FILE"]
    assert settings.metrics.port == int(env["KEYWATCH_METRICS__PORT"])
    assert str(settings.model) == env["KEYWATCH_MODEL"]


def test_store_reads_its_password_from_a_secret_file(tmp_path: Path) -> None:
    from detector.adapters.store import Store, StoreError

    secret = tmp_path / "pw"
    secret.write_text("s3cret\n", encoding="utf-8")
    store = Store("postgresql+psycopg://keywatch@db:5432/keywatch", password_file=secret)
    assert store.url.password == "s3cret"
    assert "s3cret" not in store.safe_url
    store.close()
    with pytest.raises(StoreError, match="password file"):
        Store("postgresql+psycopg://keywatch@db/keywatch", password_file=tmp_path / "missing")
