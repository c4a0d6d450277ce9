"""The run state machine on in-memory ports: no database, the same outcomes as on the SQL store."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import Clock, Incidents, MemoryBackend, MemoryRunStore, Recorder

from detector.domain.runs import RunError, Status
from detector.domain.users import Role, User
from detector.response.planning import Context
from detector.response.playbook import Mode, Playbook, load_playbook
from detector.response.runner import PlaybookRunner

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"
CTX = Context(
    key_id="k1", incident_id="i1", principal="mallory", detector="new_geography", severity="critical"
)
BOB, CAROL = User("bob", Role.RESPONDER), User("carol", Role.ADMIN)


def _pb(name: str) -> Playbook:
    path = LIBRARY / f"{name}.yaml"
    return load_playbook(path.read_text(encoding="utf-8"), str(path))


def _runner(backend: MemoryBackend, clock: Clock) -> tuple[PlaybookRunner, Recorder, Incidents]:
    rec, incidents = Recorder(), Incidents()
    runner = PlaybookRunner(MemoryRunStore(rec), lambda key: backend, rec, rec, incidents, clock=clock)
    return runner, rec, incidents


def test_an_active_run_contains_notifies_annotates_and_reverts_on_time() -> None:
    backend, clock = MemoryBackend(), Clock()
    runner, rec, incidents = _runner(backend, clock)
    run_id = runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch", run_id="r1")
    assert runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch", run_id="r1") == "r1"
    view = runner.get(run_id)
    assert view.status == Status.COMPLETED and backend.changes == [("disable", "k1")]
    assert [s["idempotency_key"] for s in view.steps] == ["r1:0", "r1:1", "r1:2"]
    assert "r1:1" in rec.messages and incidents.statuses == [("i1", "contained")]
    assert [a for _, a, _ in rec.audit] == ["playbook_start", "disable_key", "notify", "annotate_incident",
                                            "playbook_end"]  # fmt: skip
    clock.now += 3601
    assert runner.tick() == [run_id]
    assert runner.get(run_id).status == Status.ROLLED_BACK and backend.changes[-1] == ("enable", "k1")


def test_approvals_are_counted_per_person_and_a_denial_stops_the_run() -> None:
    backend, clock = MemoryBackend(), Clock()
    runner, _rec, _ = _runner(backend, clock)
    ctx = Context(key_id="k2", detector="unusual_admin", severity="high", environment="staging")
    run_id = runner.start(_pb("destructive-control-plane"), ctx, Mode.ACTIVE, "alice")
    assert runner.approve(run_id, 2, BOB) == Status.WAITING
    with pytest.raises(RunError, match="already decided"):
        runner.approve(run_id, 2, BOB)
    assert runner.approve(run_id, 2, CAROL) == Status.COMPLETED
    assert backend.changes == [("disable", "k2"), ("revoke", "k2")]
    run2 = runner.start(_pb("destructive-control-plane"), Context(key_id="k3"), Mode.ACTIVE, "alice")
    assert runner.deny(run2, 2, BOB) == Status.DENIED and ("revoke", "k3") not in backend.changes


def test_an_outage_is_retried_with_backoff_then_escalated() -> None:
    backend, clock = MemoryBackend(outage=50), Clock()
    runner, _rec, _ = _runner(backend, clock)
    run_id = runner.start(_pb("foreign-geography"), CTX, Mode.ACTIVE, "keywatch")
    delays = []
    while runner.get(run_id).status == Status.RETRYING:
        due = runner.get(run_id).steps[0]["next_attempt_at"]
        delays.append(round(due - clock.now, 3))
        clock.now = due
        runner.tick()
    assert delays == [0.5, 1.0, 2.0, 4.0] and runner.get(run_id).status == Status.ESCALATED
    backend.outage = 0
    assert runner.resume(run_id, "bob") == Status.COMPLETED


def test_a_dry_run_plans_and_touches_nothing() -> None:
    backend, clock = MemoryBackend(), Clock()
    runner, rec, incidents = _runner(backend, clock)
    run_id = runner.start(_pb("contain-exfiltration"), CTX, Mode.DRY_RUN, "alice")
    assert runner.get(run_id).status == Status.PLANNED
    assert not backend.changes and not rec.messages and not incidents.notes
