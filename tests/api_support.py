"""The REST API as its tests see it: an app on a fresh store with four users and an in-memory backend."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fakes
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from detector.adapters.audit import Ledger
from detector.adapters.store import Store
from detector.adapters.store.users import UserRepository
from detector.api import create_app
from detector.config import Settings
from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.domain.incidents import incident_id_for
from detector.domain.runs import Status
from detector.domain.users import Role
from detector.response.planning import Context
from detector.response.playbook import Mode, load_playbook
from detector.response.runner import PlaybookRunner

T0 = 1_714_348_800.0
REQUESTER = "keywatch"  # who requested the runs the matrix approves (nobody calling the API)
PLAYBOOK = """\
name: api-test
description: notify, wait for one responder, note
trigger: {auto: false, min_severity: low}
steps:
  - id: tell
    action: notify
    with: {message: "looking at $key_id"}
  - id: agree
    action: require_approval
    with: {role: responder, approvers: 1, timeout_minutes: 60}
  - id: mark
    action: annotate_incident
    with: {note: "approved"}
"""


def MemoryBackend(outage: bool = False) -> fakes.MemoryBackend:  # noqa: N802 - stands for the class
    """The shared in-memory backend: any key id exists, ``k0`` and ``k1`` are listed; named like PKCS#11."""
    return fakes.MemoryBackend(name="pkcs11", keys=("k0", "k1"), outage=int(outage), any_key=True)


@dataclass
class Env:
    store: Store
    client: TestClient
    ledger: Ledger
    signer: Ed25519PrivateKey
    runner: PlaybookRunner
    tokens: dict[str, str]
    counter: Iterator[int] = field(default_factory=itertools.count)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def alert(self, severity: Severity = Severity.HIGH) -> Alert:
        """A new alert on a new key, hence a new incident."""
        n = next(self.counter)
        key, start = f"key-{n}", T0 + 7200 * n
        alert = Alert(alert_id_for(key, "volume_spike", "p1", start), key, "p1", "volume_spike", severity,
                      0.9, start, start + 60, start, [Reason("calls", 120.0, 4.0, "120 calls, usually 4")],
                      [f"e{n}a"], environment="production", classification="restricted")  # fmt: skip
        self.store.save_batch([alert])
        return alert

    def waiting_run(self) -> str:
        """A run requested by REQUESTER, waiting at its approval step (index 1)."""
        alert = self.alert()
        pb = load_playbook(PLAYBOOK, "api-test.yaml")
        ctx = Context(key_id=alert.key_id, incident_id=incident_id_for(alert))
        run_id = self.runner.start(pb, ctx, Mode.STAGED, REQUESTER)
        assert self.runner.get(run_id).status == Status.WAITING
        return run_id


def make_env(db_url: str, tmp_path: Path, **kwargs: Any) -> Env:
    store = Store(db_url)
    store.migrate()
    (tmp_path / "playbooks").mkdir(exist_ok=True)
    (tmp_path / "playbooks" / "api-test.yaml").write_text(PLAYBOOK)
    settings = Settings(response={"playbooks_dir": tmp_path / "playbooks"}, **kwargs.pop("settings", {}))
    signer = Ed25519PrivateKey.generate()
    ledger = Ledger(store, signer)
    backends = kwargs.pop("backends", None) or {"pkcs11": MemoryBackend()}
    app = create_app(settings, store, backends=backends, ledger=ledger, **kwargs)
    users = UserRepository(store)
    tokens = {"bad": "kw_not-a-real-token"}
    for name, role in (("ann", Role.ANALYST), ("rita", Role.RESPONDER), ("rob", Role.RESPONDER),
                       ("ada", Role.ADMIN)):  # fmt: skip
        users.add(name, role)
        tokens[name] = users.issue_token(name)
    return Env(store, TestClient(app), ledger, signer, app.state.keywatch.runner, tokens)


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> Iterator[Env]:
    """The API on an empty store of each backend in turn."""
    e = make_env(db_url, tmp_path)
    yield e
    e.client.close()
    e.store.close()
