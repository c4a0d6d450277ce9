"""Careless operators and odd names: a killed run resumes, user names cannot spoof or traverse, the
store is not readable by other users."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from fakes import Clock, Incidents, MemoryBackend, MemoryRunStore, Recorder, make_alert

from detector.adapters.store import Store
from detector.domain.keys import ActionResult
from detector.domain.runs import Status
from detector.domain.users import UserError, check_name
from detector.response.planning import Context
from detector.response.playbook import Mode, load_playbook
from detector.response.runner import PlaybookRunner

PLAYBOOK = load_playbook("""\
name: contain
steps:
  - id: disable
    action: disable_key
  - id: tell
    action: notify
    with: {message: "disabled $key_id"}
""", "contain.yaml")  # fmt: skip


class Killed(BaseException):
    """The runner's process dies."""


class DiesOnce(MemoryBackend):
    def disable(self, key_id: str, *, dry_run: bool = False) -> ActionResult:
        result = super().disable(key_id, dry_run=dry_run)
        if not getattr(self, "died", False):
            self.died = True
            raise Killed("SIGKILL after the HSM call")
        return result


def test_a_run_killed_midway_resumes_and_does_not_repeat_the_change() -> None:
    backend, rec = DiesOnce(), Recorder()
    runs = MemoryRunStore(rec)
    runner = PlaybookRunner(runs, lambda key: backend, rec, rec, Incidents(), clock=Clock())
    with pytest.raises(Killed):
        runner.start(PLAYBOOK, Context(key_id="k1"), Mode.ACTIVE, "keywatch", run_id="r1")
    assert runner.get("r1").status == Status.RUNNING
    assert runner.resume("r1", "bob") == Status.COMPLETED
    assert backend.changes == [("disable", "k1")]
    assert runner.get("r1").steps[0]["result"]["outcome"] == "already_disabled"
    assert "playbook_resume" in [action for _, action, _ in rec.audit]


@pytest.mark.parametrize(
    "name",
    [
        "../etc",
        "a/b",
        "a\\b",
        "eve\u202egnp.exe",
        "zero\u200bwidth",
        "-rf",
        ".hidden",
        "a b",
        "",
        "x" * 129,
        "a..b",
    ],
)
def test_user_names_that_spoof_or_traverse_are_refused(name: str) -> None:
    with pytest.raises(UserError):
        check_name(name)


@pytest.mark.parametrize("name", ["ann", "rita.o", "dev-ops_2", "ada@example.org", "josé", "李"])
def test_ordinary_user_names_pass(name: str) -> None:
    assert check_name(name) == name


def test_the_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with Store(f"sqlite:///{tmp_path / 'kw' / 'store.db'}") as store:
            store.migrate()
            store.save_batch([make_alert()])
        created = [p for p in (tmp_path / "kw").iterdir() if p.name.startswith("store.db")]
    finally:
        os.umask(old)
    assert created
    for path in created:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
