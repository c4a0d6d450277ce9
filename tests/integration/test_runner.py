"""The playbook runner on a real database: approvals, crashes, retries, escalation, rollback, revert.

The key backend here is an in-memory implementation of the backend interface that counts the
changes it really makes, so the tests can say "disabled once" after a crash; the SoftHSM2 and
moto backends are exercised in test_keys_* and in the end-to-end test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fakes import Clock, MemoryBackend, Recorder

from detector.adapters.runner import playbook_runner
from detector.adapters.store import Store
from detector.domain.runs import RunError, Status
from detector.domain.users import Role, User
from detector.response.planning import Context
from detector.response.playbook import Mode, load_playbook
from detector.response.runner import PlaybookRunner

pytestmark = pytest.mark.integration
LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"
CTX = Context(
    key_id="k1", principal="arn:aws:iam::1:user/mallory", detector="volume_spike", severity="critical",
    environment="production", classification="restricted",
)  # fmt: skip
ALICE, BOB, CAROL = User("alice", Role.RESPONDER), User("bob", Role.RESPONDER), User("carol", Role.ADMIN)
ANN = User("ann", Role.ANALYST)


def _runner(store: Store, backend: MemoryBackend, rec: Recorder, clock: Clock) -> PlaybookRunner:
    return playbook_runner(store, lambda key: backend, rec, rec, clock=clock)


def _pb(name: str):  # type: ignore[no-untyped-def]
    return load_playbook((LIBRARY / f"{name}.yaml").read_text(), name)


def test_staged_run_disables_then_waits_for_a_second_person(store: Store) -> None:
    backend, rec, clock = MemoryBackend(), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    run_id = runner.start(_pb("contain-exfiltration"), CTX, Mode.STAGED, "alice")
    assert runner.get(run_id).status == Status.WAITING
    assert backend.changes == [("disable", "k1")]
    with pytest.raises(RunError, match="requested this run"):
        runner.approve(run_id, 3, ALICE)
    with pytest.raises(RunError, match="needs the responder role"):
        runner.approve(run_id, 3, ANN)
    assert runner.approve(run_id, 3, BOB) == Status.COMPLETED
    view = runner.get(run_id)
    assert [s["status"] for s in view.steps] == ["done", "done", "done", "done", "skipped", "done"]
    assert backend.changes == [("disable", "k1")], "staged mode never rotates"
    assert view.revert_at is None, "an approval keeps the containment"
    actions = [a for _, a, _ in rec.audit]
    assert actions[0] == "playbook_start" and "disable_key" in actions and "approval" in actions
    assert actions[-1] == "playbook_end"


def test_destructive_steps_need_two_approvers_and_a_denial_stops(store: Store) -> None:
    backend, rec, clock = MemoryBackend(), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    ctx = Context(key_id="k2", detector="unusual_admin", severity="high", environment="staging")
    run_id = runner.start(_pb("destructive-control-plane"), ctx, Mode.ACTIVE, "alice")
    assert runner.approve(run_id, 2, BOB) == Status.WAITING, "one approval is not enough"
    with pytest.raises(RunError, match="already decided"):
        runner.approve(run_id, 2, BOB)
    assert runner.approve(run_id, 2, CAROL) == Status.COMPLETED
    assert backend.changes == [("disable", "k2"), ("revoke", "k2")]

    run2 = runner.start(_pb("destructive-control-plane"), Context(key_id="k3", environment="staging"),
                        Mode.ACTIVE, "alice")  # fmt: skip
    assert runner.deny(run2, 2, BOB, "legit maintenance") == Status.DENIED
    assert ("revoke", "k3") not in backend.changes


def test_a_crash_between_action_and_bookkeeping_never_disables_twice(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend, rec, clock = MemoryBackend(), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    real = PlaybookRunner._set_step

    def crash_once(self: PlaybookRunner, run_id: str, i: int, status: str, **values: Any) -> None:
        if i == 0 and status == Status.DONE:
            monkeypatch.setattr(PlaybookRunner, "_set_step", real)
            raise SystemExit("killed after the HSM call")
        real(self, run_id, i, status, **values)

    monkeypatch.setattr(PlaybookRunner, "_set_step", crash_once)
    with pytest.raises(SystemExit):
        runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch", run_id="r-crash")
    restarted = _runner(store, backend, rec, clock)
    assert restarted.advance("r-crash") == Status.COMPLETED
    assert backend.changes == [("disable", "k1")], "the repeated step found the key already disabled"
    assert restarted.get("r-crash").steps[0]["result"]["outcome"] == "already_disabled"
    assert len([k for k in rec.messages if k.startswith("r-crash:1")]) == 1


def test_unreachable_hsm_is_retried_then_escalated_and_resumed(store: Store) -> None:
    backend, rec, clock = MemoryBackend(outage=50), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    run_id = runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch")
    delays = []
    while runner.get(run_id).status == Status.RETRYING:
        due = runner.get(run_id).steps[0]["next_attempt_at"]
        delays.append(round(due - clock.now, 3))
        clock.now = due
        runner.tick()
    assert delays == [0.5, 1.0, 2.0, 4.0], "exponential backoff between the 5 attempts"
    assert runner.get(run_id).status == Status.ESCALATED
    assert any(m["kind"] == "escalation" for m in rec.messages.values())
    backend.outage = 0
    assert runner.resume(run_id, "bob") == Status.COMPLETED
    assert backend.changes == [("disable", "k1")]


def test_rollback_and_timed_auto_revert(store: Store) -> None:
    backend, rec, clock = MemoryBackend(), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    run_id = runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch")
    view = runner.get(run_id)
    assert view.status == Status.COMPLETED and view.revert_at == pytest.approx(clock.now + 3600)
    clock.now += 3599
    runner.tick()
    assert "k1" in backend.disabled
    clock.now += 2
    runner.tick()
    assert runner.get(run_id).status == Status.ROLLED_BACK
    assert backend.changes == [("disable", "k1"), ("enable", "k1")]

    kept = runner.start(_pb("foreign-geography"), Context(key_id="k9"), Mode.ACTIVE, "keywatch")
    runner.keep(kept, "bob")
    clock.now += 7200
    runner.tick()
    assert "k9" in backend.disabled
    assert runner.rollback(kept, "bob") == Status.ROLLED_BACK
    assert "k9" not in backend.disabled


def test_dry_run_changes_nothing(store: Store) -> None:
    backend, rec, clock = MemoryBackend(), Recorder(), Clock()
    runner = _runner(store, backend, rec, clock)
    pb = _pb("contain-exfiltration")
    run_id = runner.start(pb, CTX, Mode.DRY_RUN, "alice")
    assert runner.get(run_id).status == Status.PLANNED
    assert backend.changes == [] and not rec.messages
    assert any("would disable key k1" in line for line in runner.plan_for(pb, CTX, Mode.DRY_RUN))
