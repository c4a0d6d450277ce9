"""Users and pending approvals on SQLite and PostgreSQL: the API, the CLI, the ledger.

Admins list users (never a token hash), disable them (their token gets 401 at once) and rotate
their tokens (the old one gets 401, the new one is shown once); the last enabled admin cannot be
disabled, by the API or the CLI (409 / exit 2). ``GET /v1/approvals`` is one paged store query:
an approval waiting behind more newer runs than the old 500-run scan looked at is still listed.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from api_support import REQUESTER, Env, make_env

from detector.adapters.audit import Ledger, generate_signing_key
from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.users import UserRepository
from detector.cli.main import main
from detector.domain.runs import Status
from detector.domain.users import Role

pytestmark = pytest.mark.integration
U = "/v1/users"
OLD_SCAN = 500  # how many newest runs GET /v1/approvals used to look at


def _hashes(store: Store) -> dict[str, str | None]:
    with store.reading() as conn:
        return {r.name: r.token_hash for r in conn.execute(sa.select(t.users.c.name, t.users.c.token_hash))}


# -- the API ------------------------------------------------------------------------------------------


def test_admins_list_users_with_whether_a_token_is_set_never_the_hash(env: Env) -> None:
    UserRepository(env.store).add("zoe", Role.RESPONDER, "U024BE7LH")  # no token issued yet
    listed = env.client.get(U, headers=env.auth("ada"))
    assert listed.status_code == 200
    items = {u["name"]: u for u in listed.json()["items"]}
    assert list(items) == ["ada", "ann", "rita", "rob", "zoe"]
    assert set(items["zoe"]) == {"name", "role", "slack_user_id", "disabled", "has_token", "created_at"}
    assert (items["zoe"]["role"], items["zoe"]["slack_user_id"], items["zoe"]["has_token"]) == (
        "responder", "U024BE7LH", False)  # fmt: skip
    assert items["ann"]["has_token"] is True and items["ann"]["disabled"] is False
    for token_hash in filter(None, _hashes(env.store).values()):
        assert token_hash not in listed.text
    assert env.client.get(U, headers=env.auth("rita")).status_code == 403


def test_disabling_a_user_revokes_their_token_at_once(env: Env) -> None:
    ada, ann = env.auth("ada"), env.auth("ann")
    assert env.client.get("/v1/me", headers=ann).status_code == 200
    disabled = env.client.post(f"{U}/ann/disable", headers=ada)
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"name": "ann", "role": "analyst", "disabled": True, "has_token": False}
    assert env.client.get("/v1/me", headers=ann).status_code == 401
    assert _hashes(env.store)["ann"] is None
    listed = {u["name"]: u for u in env.client.get(U, headers=ada).json()["items"]}
    assert (listed["ann"]["disabled"], listed["ann"]["has_token"]) == (True, False)
    assert env.client.post(f"{U}/ann/disable", headers=ada).status_code == 200  # harmless twice
    refused = env.client.post(f"{U}/ann/rotate-token", headers=ada)
    assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
    assert env.client.get("/v1/me", headers=ann).status_code == 401
    assert env.client.post(f"{U}/nobody/disable", headers=ada).status_code == 404
    assert env.client.post(f"{U}/nobody/rotate-token", headers=ada).status_code == 404


def test_enabling_a_disabled_user_gives_a_new_token_and_keeps_the_old_revoked(env: Env) -> None:
    ada, old = env.auth("ada"), env.auth("ann")
    env.client.post(f"{U}/ann/disable", headers=ada).raise_for_status()
    enabled = env.client.post(f"{U}/ann/enable", headers=ada)
    assert enabled.status_code == 200, enabled.text
    token = enabled.json().pop("token")
    assert enabled.json() == {"name": "ann", "role": "analyst", "disabled": False, "token": token}
    assert env.client.get("/v1/me", headers=old).status_code == 401  # revoked for good
    me = env.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "ann", "role": "analyst"}
    assert _hashes(env.store)["ann"] == hashlib.sha256(token.encode()).hexdigest()
    again = env.client.post(f"{U}/ann/enable", headers=ada)  # would silently replace a token in use
    assert again.status_code == 409 and "not disabled" in again.json()["detail"]
    assert env.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert env.client.post(f"{U}/nobody/enable", headers=ada).status_code == 404
    assert env.client.post(f"{U}/ann/enable", headers=env.auth("rita")).status_code == 403
    trail = [(r.actor, r.action, r.target) for r in env.ledger.records() if r.action.startswith("api.user_")]
    assert trail[-2:] == [("ada", "api.user_disable", "ann"), ("ada", "api.user_enable", "ann")]


def test_rotating_a_token_shows_the_new_one_once_and_retires_the_old(env: Env) -> None:
    old = env.auth("rita")
    rotated = env.client.post(f"{U}/rita/rotate-token", headers=env.auth("ada"))
    assert rotated.status_code == 200, rotated.text
    token = rotated.json()["token"]
    assert rotated.json()["name"] == "rita" and token.startswith("kw_") and len(token) == 46
    assert env.client.get("/v1/me", headers=old).status_code == 401
    me = env.client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {"name": "rita", "role": "responder"}
    assert _hashes(env.store)["rita"] == hashlib.sha256(token.encode()).hexdigest()
    listed = env.client.get(U, headers=env.auth("ada")).text
    assert token not in listed


def test_the_last_enabled_admin_cannot_be_disabled(env: Env) -> None:
    ada = env.auth("ada")
    refused = env.client.post(f"{U}/ada/disable", headers=ada)
    assert refused.status_code == 409
    assert "ada is the last enabled admin" in refused.json()["detail"]
    assert env.client.get("/v1/me", headers=ada).status_code == 200  # nothing changed

    bo = env.client.post(U, json={"name": "bo", "role": "admin"}, headers=ada).json()["token"]
    bo_auth = {"Authorization": f"Bearer {bo}"}
    assert env.client.post(f"{U}/ada/disable", headers=ada).status_code == 200  # another admin remains
    assert env.client.get("/v1/me", headers=ada).status_code == 401
    last = env.client.post(f"{U}/bo/disable", headers=bo_auth)
    assert last.status_code == 409 and "bo is the last enabled admin" in last.json()["detail"]
    assert env.client.post(f"{U}/ann/disable", headers=bo_auth).status_code == 200


def test_user_changes_are_audited_without_tokens(env: Env) -> None:
    ada = env.auth("ada")
    token = env.client.post(f"{U}/rob/rotate-token", headers=ada).json()["token"]
    env.client.post(f"{U}/ann/disable", headers=ada).raise_for_status()
    env.client.post(f"{U}/ada/disable", headers=ada)  # refused: nothing to record
    records = [r for r in env.ledger.records() if r.action.startswith("api.user")]
    assert [(r.actor, r.action, r.target) for r in records] == [
        ("ada", "api.user_token_rotate", "rob"),
        ("ada", "api.user_disable", "ann"),
    ]
    assert all(token not in str(r.details) for r in records)
    assert env.ledger.verify(env.signer.public_key()).ok


# -- the CLI ------------------------------------------------------------------------------------------


def test_users_cli_lists_disables_enables_and_rotates(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "audit.key"
    generate_signing_key(key)
    monkeypatch.setenv("KEYWATCH_AUDIT__SIGNING_KEY", str(key))
    db = ["--db", db_url]
    assert main(["users", "add", "zed", "--role", "admin", *db]) == 0
    assert main(["users", "add", "yan", "--role", "analyst", "--slack-id", "U0YAN", *db]) == 0
    capsys.readouterr()
    assert main(["users", "disable", "zed", *db]) == 2
    assert "zed is the last enabled admin" in capsys.readouterr().err

    assert main(["users", "rotate-token", "yan", *db]) == 0
    token = capsys.readouterr().out.split()[-1]
    assert main(["users", "list", "--json", *db]) == 0
    listed = {u["name"]: u for u in json.loads(capsys.readouterr().out)}
    yan_row = {k: v for k, v in listed["yan"].items() if k != "created_at"}
    assert yan_row == {"name": "yan", "role": "analyst", "slack_user_id": "U0YAN", "disabled": False,
                       "has_token": True}  # fmt: skip
    e = make_env(db_url, tmp_path)
    yan = {"Authorization": f"Bearer {token}"}
    assert e.client.get("/v1/me", headers=yan).status_code == 200

    assert main(["users", "disable", "yan", *db]) == 0
    assert e.client.get("/v1/me", headers=yan).status_code == 401
    assert main(["users", "list", *db]) == 0
    table = capsys.readouterr().out
    assert any(line.split()[:2] == ["yan", "analyst"] and "disabled" in line for line in table.splitlines())
    assert main(["users", "disable", "nobody", *db]) == 2
    assert "no user nobody" in capsys.readouterr().err
    assert main(["users", "rotate-token", "yan", *db]) == 2
    assert "disabled" in capsys.readouterr().err

    assert main(["users", "enable", "yan", *db]) == 0
    again = {"Authorization": f"Bearer {capsys.readouterr().out.split()[-1]}"}
    assert e.client.get("/v1/me", headers=again).status_code == 200
    assert e.client.get("/v1/me", headers=yan).status_code == 401  # the old token stays revoked
    assert main(["users", "enable", "yan", *db]) == 2
    assert "not disabled" in capsys.readouterr().err

    actor = f"cli:{getpass.getuser()}"
    cli = [(r.actor, r.action, r.target) for r in Ledger(e.store, None).records() if r.actor == actor]
    assert cli == [(actor, "cli.user_add", "zed"), (actor, "cli.user_add", "yan"),
                   (actor, "cli.user_token_rotate", "yan"), (actor, "cli.user_disable", "yan"),
                   (actor, "cli.user_enable", "yan")]  # fmt: skip
    e.client.close()
    e.store.close()


# -- pending approvals ----------------------------------------------------------------------------------


def _newer_finished_runs(store: Store, count: int) -> None:
    """``count`` completed runs created after every run so far, in one insert."""
    later = datetime.now(UTC) + timedelta(days=1)
    run = {"playbook": "api-test", "playbook_digest": "0" * 64, "mode": "staged", "status": Status.COMPLETED,
           "requested_by": REQUESTER, "params": {"context": {"key_id": "k"}},
           "updated_at": later}  # fmt: skip
    rows = [run | {"run_id": uuid.uuid4().hex, "created_at": later + timedelta(seconds=n)}
            for n in range(count)]  # fmt: skip
    with store.writing() as conn:
        conn.execute(t.playbook_runs.insert(), rows)


def test_pending_approvals_are_paged_and_none_is_dropped(env: Env) -> None:
    waiting = [env.waiting_run() for _ in range(5)]
    denied = env.waiting_run()
    env.client.post(f"/v1/runs/{denied}/steps/1/deny", headers=env.auth("rob")).raise_for_status()
    _newer_finished_runs(env.store, OLD_SCAN + 10)

    rob = env.auth("rob")
    pages = [env.client.get("/v1/approvals", params={"limit": 2, "offset": o}, headers=rob).json()
             for o in (0, 2, 4, 6)]  # fmt: skip
    assert [p["total"] for p in pages] == [5] * 4
    assert [len(p["items"]) for p in pages] == [2, 2, 1, 0]
    listed = [(i["run_id"], i["step_index"], i["step_id"]) for p in pages for i in p["items"]]
    assert listed == [(run_id, 1, "agree") for run_id in reversed(waiting)]  # newest run first
    first = pages[0]["items"][0]
    run = env.runner.get(waiting[-1])
    assert (first["key_id"], first["incident_id"], first["requested_by"], first["playbook"]) == (
        run.key_id, run.incident_id, REQUESTER, "api-test")  # fmt: skip
    assert first["deadline"] == run.steps[1]["next_attempt_at"]
    assert env.client.get("/v1/approvals", params={"limit": 501}, headers=rob).status_code == 422
