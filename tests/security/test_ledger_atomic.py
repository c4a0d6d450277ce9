"""A change and its ledger record commit together: a crash between them leaves both or neither.

The crash is an auditor that dies while writing the record of one action (inside the change's
transaction). Afterwards the change must not be there either, a restarted runner does it again,
and the ledger verifies with every record present: the run start, each approval and denial.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fakes import Clock, MemoryBackend, Recorder

from detector.adapters.audit import Ledger
from detector.adapters.responder import LedgerAuditor
from detector.adapters.runner import playbook_runner
from detector.adapters.store import Store
from detector.adapters.store.runs import RunRepository
from detector.domain.runs import RunError, Status
from detector.domain.users import Role, User
from detector.response.planning import Context
from detector.response.playbook import Mode, Playbook, load_playbook
from detector.response.runner import PlaybookRunner

pytestmark = pytest.mark.integration
LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"
BOB, CAROL = User("bob", Role.RESPONDER), User("carol", Role.ADMIN)


class Crash(BaseException):
    """The process dies (not an error anybody handles)."""


class DyingAuditor(LedgerAuditor):
    """The ledger, except that writing the record of ``action`` kills the process once."""

    def __init__(self, ledger: Ledger, action: str) -> None:
        super().__init__(ledger)
        self.action = action

    def record(
        self, actor: str, action: str, target: str, details: dict[str, Any], *, conn: Any = None
    ) -> None:
        if action == self.action:
            self.action = ""
            raise Crash(f"killed while recording {action}")
        super().record(actor, action, target, details, conn=conn)


def _pb(name: str) -> Playbook:
    path = LIBRARY / f"{name}.yaml"
    return load_playbook(path.read_text(encoding="utf-8"), str(path))


def _runner(store: Store, ledger: Ledger, backend: MemoryBackend, dies_on: str = "") -> PlaybookRunner:
    auditor = DyingAuditor(ledger, dies_on) if dies_on else LedgerAuditor(ledger)
    return playbook_runner(store, lambda key: backend, Recorder(), auditor, clock=Clock())


def _actions(ledger: Ledger) -> list[str]:
    return [r.action for r in ledger.records()]


def test_a_crash_while_recording_a_run_start_leaves_no_run(store: Store) -> None:
    signer = Ed25519PrivateKey.generate()
    ledger, backend = Ledger(store, signer), MemoryBackend()
    with pytest.raises(Crash):
        _runner(store, ledger, backend, "playbook_start").start(
            _pb("foreign-geography"), Context(key_id="k1"), Mode.ACTIVE, "keywatch", run_id="r1"
        )
    runner = _runner(store, ledger, backend)
    with pytest.raises(RunError, match="no playbook run"):
        runner.get("r1")
    assert not backend.changes and _actions(ledger) == []
    runner.start(_pb("foreign-geography"), Context(key_id="k1"), Mode.ACTIVE, "keywatch", run_id="r1")
    assert runner.get("r1").status == Status.COMPLETED
    assert _actions(ledger)[0] == "playbook_start"
    assert ledger.verify(signer.public_key()).ok


@pytest.mark.parametrize("decision", ["approval", "denial"])
def test_a_crash_while_recording_an_approval_leaves_no_approval(store: Store, decision: str) -> None:
    signer = Ed25519PrivateKey.generate()
    ledger, backend = Ledger(store, signer), MemoryBackend()
    ctx = Context(key_id="k2", detector="unusual_admin", severity="high")
    run_id = _runner(store, ledger, backend).start(
        _pb("destructive-control-plane"), ctx, Mode.ACTIVE, "alice"
    )
    dying = _runner(store, ledger, backend, decision)
    decide = dying.approve if decision == "approval" else dying.deny
    with pytest.raises(Crash):
        decide(run_id, 2, BOB)
    runner = _runner(store, ledger, backend)
    assert runner.get(run_id).status == Status.WAITING
    assert decision not in _actions(ledger)
    assert RunRepository(store, LedgerAuditor(ledger)).decisions(run_id, 2) == [], "stored without its record"
    if decision == "approval":
        runner.approve(run_id, 2, BOB)
        assert runner.approve(run_id, 2, CAROL) == Status.COMPLETED
        assert _actions(ledger).count("approval") == 2
    else:
        assert runner.deny(run_id, 2, BOB) == Status.DENIED
        assert _actions(ledger).count("denial") == 1
    assert ledger.verify(signer.public_key()).ok
