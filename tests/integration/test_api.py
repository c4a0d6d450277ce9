"""The REST API on SQLite and PostgreSQL: every role against every endpoint, auth, audit, runs, keys.

The role matrix is one table (``ENDPOINTS``); ``test_every_route_has_a_row`` fails when a route
is added without a row, so no endpoint escapes the authorization check.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pkcs11
import pytest
import sqlalchemy as sa
from api_support import Env, MemoryBackend, make_env
from softhsm import SampleKeys, SoftHsmToken, add_sample_keys, make_token

from detector.adapters.audit import Ledger
from detector.adapters.keys.pkcs11_backend import Pkcs11Backend
from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.adapters.store.feedback import FeedbackRepository
from detector.adapters.store.users import UserRepository
from detector.api import create_app
from detector.api.auth import FailedLogins
from detector.cli.main import build_parser, main
from detector.config import Settings
from detector.domain.incidents import incident_id_for
from detector.domain.suppressions import Match
from detector.domain.users import Role

pytestmark = pytest.mark.integration


# -- the role matrix --------------------------------------------------------------------------------


def _incident(env: Env) -> dict[str, str]:
    alert = env.alert()
    return {"incident_id": incident_id_for(alert), "alert_id": alert.alert_id}


def _run(env: Env) -> dict[str, str]:
    return {"run_id": env.waiting_run()}


def _key(env: Env) -> dict[str, str]:
    return {"key_id": f"prod/payments:{next(env.counter)}"}  # '/' and ':' on purpose


def _user(env: Env) -> dict[str, Any]:
    return {"body": {"name": f"user{next(env.counter)}", "role": "analyst"}}


def _existing_user(env: Env) -> dict[str, str]:
    """A fresh analyst with a token (``.`` and ``@`` in the name on purpose)."""
    name = f"team.user{next(env.counter)}@corp"
    UserRepository(env.store).add(name, Role.ANALYST)
    UserRepository(env.store).issue_token(name)
    return {"name": name}


def _disabled_user(env: Env) -> dict[str, str]:
    name = _existing_user(env)["name"]
    UserRepository(env.store).disable(name)
    return {"name": name}


def _suppression(env: Env) -> dict[str, str]:
    made = FeedbackRepository(env.store).add_suppression(
        Match(key_id=f"key-{next(env.counter)}"), "known batch job", time.time() + 86_400, "ada"
    )
    return {"suppression_id": made.suppression_id}


def _new_suppression(env: Env) -> dict[str, Any]:
    expires = datetime.fromtimestamp(time.time() + 86_400, UTC).isoformat()
    return {"body": {"key_id": f"key-{next(env.counter)}", "reason": "backup job", "expires_at": expires}}


def _model(env: Env) -> dict[str, str]:
    card = {"files": {"profiles.json.gz": str(next(env.counter))}}
    return {"version": FeedbackRepository(env.store).register_model("/models/m", card).version}


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str  # the route template, as FastAPI knows it
    url: str  # formatted with what ``setup`` returns
    role: Role | None  # the lowest role allowed; None: no authentication
    ok: int
    body: dict[str, Any] | None = None
    setup: Callable[[Env], dict[str, Any]] = lambda env: {}


INC, R, K, U = "/v1/incidents/{incident_id}", "/v1/runs/{run_id}", "/v1/keys/{key_id:path}", "/v1/users"
VER, SUP, MOD = "/v1/alerts/{alert_id}/verdict", "/v1/suppressions", "/v1/models"
# a table, one row per endpoint and lowest role: kept as written
# fmt: off
ENDPOINTS = [
    Endpoint("GET", "/healthz", "/healthz", None, 200),
    Endpoint("GET", "/readyz", "/readyz", None, 200),
    Endpoint("GET", "/metrics", "/metrics", None, 200),
    Endpoint("GET", "/v1/openapi.json", "/v1/openapi.json", None, 200),
    Endpoint("GET", "/v1/docs", "/v1/docs", None, 200),
    Endpoint("GET", "/v1/alerts", "/v1/alerts?severity=high&limit=500", Role.ANALYST, 200, setup=_incident),
    Endpoint("GET", "/v1/alerts/{alert_id}", "/v1/alerts/{alert_id}", Role.ANALYST, 200, setup=_incident),
    Endpoint("GET", "/v1/incidents", "/v1/incidents?status=open", Role.ANALYST, 200, setup=_incident),
    Endpoint("GET", INC, INC, Role.ANALYST, 200, setup=_incident),
    Endpoint(
        "POST", f"{INC}/status", f"{INC}/status", Role.ANALYST, 200, {"status": "acknowledged"}, _incident
    ),
    Endpoint(
        "POST", f"{INC}/status", f"{INC}/status", Role.RESPONDER, 200, {"status": "contained"}, _incident
    ),
    Endpoint("POST", f"{INC}/assignee", f"{INC}/assignee", Role.ANALYST, 200, {"assignee": "ann"}, _incident),
    Endpoint("POST", f"{INC}/notes", f"{INC}/notes", Role.ANALYST, 200, {"text": "looked at it"}, _incident),
    Endpoint(
        "POST",
        f"{INC}/runs",
        f"{INC}/runs",
        Role.RESPONDER,
        202,
        {"playbook": "api-test", "mode": "staged"},
        _incident,
    ),
    Endpoint(
        "POST",
        f"{INC}/runs",
        f"{INC}/runs",
        Role.RESPONDER,
        200,
        {"playbook": "api-test", "mode": "dry-run"},
        _incident,
    ),
    Endpoint("GET", "/v1/runs", "/v1/runs", Role.ANALYST, 200, setup=_run),
    Endpoint("GET", R, R, Role.ANALYST, 200, setup=_run),
    Endpoint("GET", "/v1/approvals", "/v1/approvals", Role.RESPONDER, 200, setup=_run),
    Endpoint(
        "POST", f"{R}/steps/{{step_index}}/approve", f"{R}/steps/1/approve", Role.RESPONDER, 200, setup=_run
    ),
    Endpoint(
        "POST",
        f"{R}/steps/{{step_index}}/deny",
        f"{R}/steps/1/deny",
        Role.RESPONDER,
        200,
        {"comment": "no"},
        _run,
    ),
    Endpoint("GET", "/v1/keys", "/v1/keys", Role.ANALYST, 200),
    Endpoint("POST", f"{K}/disable", "/v1/keys/{key_id}/disable", Role.RESPONDER, 200, setup=_key),
    Endpoint("POST", f"{K}/enable", "/v1/keys/{key_id}/enable", Role.RESPONDER, 200, setup=_key),
    Endpoint("POST", U, U, Role.ADMIN, 201, setup=_user),
    Endpoint("GET", U, U, Role.ADMIN, 200),
    Endpoint("POST", f"{U}/{{name:path}}/disable", f"{U}/{{name}}/disable", Role.ADMIN, 200, None,
             _existing_user),
    Endpoint("POST", f"{U}/{{name:path}}/enable", f"{U}/{{name}}/enable", Role.ADMIN, 200, None,
             _disabled_user),
    Endpoint("POST", f"{U}/{{name:path}}/rotate-token", f"{U}/{{name}}/rotate-token", Role.ADMIN, 200, None,
             _existing_user),
    Endpoint("GET", "/v1/me", "/v1/me", Role.ANALYST, 200),
    Endpoint("GET", "/v1/playbooks", "/v1/playbooks", Role.ANALYST, 200),
    # feedback (issue 5): verdicts, suppressions, model versions
    Endpoint("POST", VER, VER, Role.ANALYST, 200, {"verdict": "false_positive", "comment": "ok"}, _incident),
    Endpoint("GET", "/v1/verdicts", "/v1/verdicts", Role.ANALYST, 200, setup=_incident),
    Endpoint("GET", SUP, SUP, Role.ANALYST, 200, setup=_suppression),
    Endpoint("POST", SUP, SUP, Role.ADMIN, 201, setup=_new_suppression),
    Endpoint("DELETE", f"{SUP}/{{suppression_id}}", f"{SUP}/{{suppression_id}}", Role.ADMIN, 200, None,
             _suppression),
    Endpoint("POST", f"{SUP}/preview", f"{SUP}/preview", Role.ANALYST, 200, {"key_id": "key-0"}, _incident),
    Endpoint("GET", MOD, MOD, Role.ANALYST, 200, setup=_model),
    Endpoint("GET", f"{MOD}/active", f"{MOD}/active", Role.ANALYST, 200, setup=_model),
    Endpoint("POST", f"{MOD}/{{version}}/activate", f"{MOD}/{{version}}/activate", Role.ADMIN, 200, None,
             _model),
]
# fmt: on
CALLERS = {"none": None, "bad": None, "ann": Role.ANALYST, "rita": Role.RESPONDER, "ada": Role.ADMIN}


def _expected(endpoint: Endpoint, caller: str) -> int:
    if endpoint.role is None:
        return endpoint.ok
    role = CALLERS[caller]
    if role is None:
        return 401
    return endpoint.ok if role >= endpoint.role else 403


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.url} [{e.role}]")
def test_every_role_against_every_endpoint(env: Env, endpoint: Endpoint) -> None:
    for caller in CALLERS:
        values = endpoint.setup(env)
        body = values.pop("body", endpoint.body)
        headers = env.auth(caller) if caller in env.tokens else {}
        response = env.client.request(
            endpoint.method, endpoint.url.format(**values), json=body, headers=headers
        )
        expected = _expected(endpoint, caller)
        assert response.status_code == expected, (caller, response.text)
        if expected == 403:
            assert f"needs the {endpoint.role}" in response.json()["detail"]


def test_every_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(Settings(), Store(f"sqlite:///{tmp_path / 'unused.db'}"), backends={})
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    docs = {("GET", "/v1/openapi.json"), ("GET", "/v1/docs")}  # not in the schema themselves
    assert documented | docs == {(e.method, e.route.replace(":path", "")) for e in ENDPOINTS}


# -- authentication -----------------------------------------------------------------------------------


def test_missing_bad_or_disabled_token_is_401_with_a_bearer_challenge(env: Env) -> None:
    for headers in ({}, {"Authorization": "Bearer kw_nope"}, {"Authorization": "Basic YTpi"}):
        response = env.client.get("/v1/alerts", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert env.client.get("/v1/alerts", headers=env.auth("ann")).status_code == 200
    with env.store.writing() as conn:
        conn.execute(t.users.update().where(t.users.c.name == "ann").values(disabled=True))
    assert env.client.get("/v1/alerts", headers=env.auth("ann")).status_code == 401


def test_repeated_failed_logins_are_slowed_down(env: Env) -> None:
    now = [1000.0]
    env.client.app.state.keywatch.logins = FailedLogins(5, 60.0, clock=lambda: now[0])  # type: ignore[attr-defined]
    bad = {"Authorization": "Bearer kw_guess"}
    assert [env.client.get("/v1/alerts", headers=bad).status_code for _ in range(5)] == [401] * 5
    throttled = env.client.get("/v1/alerts", headers=bad)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "60"
    # while throttled, tokens are not even looked at: guessing gains nothing
    assert env.client.get("/v1/alerts", headers=env.auth("ann")).status_code == 429
    assert env.client.get("/healthz").status_code == 200
    now[0] += 61
    assert env.client.get("/v1/alerts", headers=env.auth("ann")).status_code == 200


def test_users_add_prints_a_token_once_and_stores_only_its_hash(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "add", "zed", "--role", "responder", "--db", db_url]) == 0
    token = capsys.readouterr().out.split()[-1]
    assert token.startswith("kw_") and len(token) == 46
    e = make_env(db_url, tmp_path)
    with e.store.reading() as conn:
        rows = {r.name: r.token_hash for r in conn.execute(sa.select(t.users))}
    assert rows["zed"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(rows)
    assert e.client.get("/v1/approvals", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    created = e.client.post(U, json={"name": "yan", "role": "analyst"}, headers=e.auth("ada"))
    assert created.status_code == 201
    assert e.client.get(
        "/v1/alerts", headers={"Authorization": f"Bearer {created.json()['token']}"}
    ).is_success
    assert e.client.post(U, json={"name": "yan", "role": "admin"}, headers=e.auth("ada")).status_code == 409


# -- runs and approvals ---------------------------------------------------------------------------------


def test_starting_a_run_only_enqueues_it(env: Env) -> None:
    incident = _incident(env)["incident_id"]
    body = {"playbook": "api-test", "mode": "staged"}
    response = env.client.post(f"/v1/incidents/{incident}/runs", json=body, headers=env.auth("rita"))
    assert response.status_code == 202
    run_id = response.json()["run_id"]
    assert response.headers["Location"] == f"/v1/runs/{run_id}"
    run = env.client.get(f"/v1/runs/{run_id}", headers=env.auth("ann")).json()
    assert run["status"] == "queued" and run["requested_by"] == "rita"
    assert [s["status"] for s in run["steps"]] == ["pending"] * 3
    with env.store.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(t.slack_outbox)).scalar_one() == 0

    env.runner.tick()  # what `keywatch respond` does

    run = env.client.get(f"/v1/runs/{run_id}", headers=env.auth("ann")).json()
    assert run["status"] == "waiting"
    assert [s["status"] for s in run["steps"]] == ["done", "waiting", "pending"]


def test_the_requester_can_never_approve_their_own_run(env: Env) -> None:
    incident = _incident(env)["incident_id"]
    body = {"playbook": "api-test", "mode": "staged"}
    run_id = env.client.post(f"/v1/incidents/{incident}/runs", json=body, headers=env.auth("rita")).json()[
        "run_id"
    ]
    env.runner.tick()
    pending = env.client.get("/v1/approvals", headers=env.auth("rob")).json()["items"]
    assert [(p["run_id"], p["step_index"]) for p in pending] == [(run_id, 1)]

    for verb in ("approve", "deny"):
        own = env.client.post(f"/v1/runs/{run_id}/steps/1/{verb}", headers=env.auth("rita"))
        assert own.status_code == 403
        assert "cannot approve" in own.json()["detail"]
    analyst = env.client.post(f"/v1/runs/{run_id}/steps/1/approve", headers=env.auth("ann"))
    assert analyst.status_code == 403
    assert env.client.post(f"/v1/runs/{run_id}/steps/0/approve", headers=env.auth("rob")).status_code == 409

    approved = env.client.post(f"/v1/runs/{run_id}/steps/1/approve", headers=env.auth("rob"))
    assert approved.status_code == 200
    assert approved.json()["status"] == "completed"
    assert env.client.post(f"/v1/runs/{run_id}/steps/1/approve", headers=env.auth("ada")).status_code == 409
    assert env.client.get("/v1/runs/nope", headers=env.auth("ann")).status_code == 404


# -- incidents, audit -------------------------------------------------------------------------------------


def test_incident_detail_and_status_rules(env: Env) -> None:
    ids = _incident(env)
    url = f"/v1/incidents/{ids['incident_id']}"
    detail = env.client.get(url, headers=env.auth("ann")).json()
    assert detail["alerts"][0]["reasons"][0]["text"] == "120 calls, usually 4"
    assert detail["evidence_event_ids"] == sorted(detail["alerts"][0]["event_ids"])
    assert (
        env.client.post(f"{url}/status", json={"status": "resolved"}, headers=env.auth("ann")).status_code
        == 403
    )
    assert env.client.post(f"{url}/status", json={"status": "resolved"}, headers=env.auth("rita")).is_success
    conflict = env.client.post(f"{url}/status", json={"status": "contained"}, headers=env.auth("rita"))
    assert conflict.status_code == 409
    assert env.client.get("/v1/incidents/nope", headers=env.auth("ann")).status_code == 404
    assert (
        env.client.post("/v1/incidents/nope/notes", json={"text": "x"}, headers=env.auth("ann")).status_code
        == 404
    )
    timeline = env.client.get(url, headers=env.auth("ann")).json()["timeline"]
    assert (timeline[-1]["actor"], timeline[-1]["text"]) == ("rita", "open -> resolved")
    assert env.client.get("/v1/alerts?since=not-a-time", headers=env.auth("ann")).status_code == 422
    assert env.client.get("/v1/alerts?limit=501", headers=env.auth("ann")).status_code == 422


def test_every_mutating_call_is_audited(env: Env) -> None:
    ids = _incident(env)
    url = f"/v1/incidents/{ids['incident_id']}"
    ann, rita, rob, ada = (env.auth(n) for n in ("ann", "rita", "rob", "ada"))
    env.client.post(f"{url}/status", json={"status": "acknowledged"}, headers=ann).raise_for_status()
    env.client.post(f"{url}/assignee", json={"assignee": "rita"}, headers=ann).raise_for_status()
    env.client.post(f"{url}/notes", json={"text": "on it"}, headers=ann).raise_for_status()
    run_id = env.client.post(f"{url}/runs", json={"playbook": "api-test", "mode": "staged"},
                             headers=rita).json()["run_id"]  # fmt: skip
    env.runner.tick()
    env.client.post(f"/v1/runs/{run_id}/steps/1/approve", headers=rob).raise_for_status()
    env.client.post("/v1/keys/prod/k:1/disable", headers=rita).raise_for_status()
    env.client.post("/v1/keys/prod/k:1/enable", headers=rita).raise_for_status()
    token = env.client.post(U, json={"name": "newbie", "role": "analyst"}, headers=ada).json()["token"]

    records = env.ledger.records()
    api = [(r.actor, r.action, r.target) for r in records if r.action.startswith("api.")]
    assert api == [
        ("ann", "api.incident_status", ids["incident_id"]),
        ("ann", "api.incident_assignee", ids["incident_id"]),
        ("ann", "api.incident_note", ids["incident_id"]),
        ("rita", "api.run_start", env.runner.get(run_id).key_id),
        ("rob", "api.run_approve", env.runner.get(run_id).key_id),
        ("rita", "api.key_disable", "prod/k:1"),
        ("rita", "api.key_enable", "prod/k:1"),
        ("ada", "api.user_add", "newbie"),
    ]
    assert {"playbook_start", "approval", "playbook_end"} <= {r.action for r in records}
    assert all(token not in str(r.details) for r in records)
    assert env.ledger.verify(env.signer.public_key()).ok


def test_key_and_run_changes_are_refused_without_a_signing_key(db_url: str, tmp_path: Path) -> None:
    e = make_env(db_url, tmp_path)
    e.client.app.state.keywatch.ledger = Ledger(e.store, None)  # type: ignore[attr-defined]
    refused = e.client.post("/v1/keys/k1/disable", headers=e.auth("rita"))
    assert refused.status_code == 503
    assert "audit.signing_key" in refused.json()["detail"]


# -- health, keys -------------------------------------------------------------------------------------------


def test_readiness_names_the_failing_component(db_url: str, tmp_path: Path) -> None:
    backend = MemoryBackend(outage=True)
    e = make_env(db_url, tmp_path, backends={"pkcs11": backend}, broker_check=lambda: None)
    response = e.client.get("/readyz")
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["store"] == {"status": "ok"} and components["broker"] == {"status": "ok"}
    assert components["key_backend:pkcs11"]["status"] == "error"
    backend.outage = False
    assert e.client.get("/readyz").status_code == 200
    keys = e.client.get("/v1/keys", headers=e.auth("ann")).json()
    assert [k["key_id"] for k in keys["items"]] == ["k0", "k1"] and keys["errors"] == []
    metrics = e.client.get("/metrics").text
    assert 'keywatch_api_requests_total{method="GET",route="/readyz",status="503"} 1.0' in metrics


def test_slack_interactions_are_mounted_when_a_signing_secret_is_set(db_url: str, tmp_path: Path) -> None:
    e = make_env(db_url, tmp_path, settings={"slack": {"signing_secret": "s3cret"}})
    assert e.client.post("/slack/interactions", content=b"payload=%7B%7D").status_code == 401


def test_keywatch_api_command_is_registered() -> None:
    args = build_parser().parse_args(["api", "--port", "9999", "--db", "sqlite:///x.db"])
    assert (args.host, args.port, args.db, args.handler.__name__) == (
        "127.0.0.1",
        9999,
        "sqlite:///x.db",
        "cmd_api",
    )


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    return make_token(tmp_path_factory.mktemp("softhsm-api"), label="kw-api", pin="kw-api-pin")


def test_keys_disable_and_enable_act_inside_a_softhsm_token(
    db_url: str, tmp_path: Path, token: SoftHsmToken
) -> None:
    keys: SampleKeys = add_sample_keys(token)
    key_id = "prod/payments:v1"  # an event key id with '/' and ':' mapped to the HSM label
    backend = Pkcs11Backend(token.module, token.label, token.pin, key_map={key_id: keys.aes})
    e = make_env(db_url, tmp_path, backends={"pkcs11": backend})
    listed = e.client.get("/v1/keys", headers=e.auth("ann")).json()["items"]
    assert keys.aes in {k["label"] for k in listed}

    with token.open() as app:
        aes = app.get_key(pkcs11.ObjectClass.SECRET_KEY, label=keys.aes)
        iv = bytes(16)
        ciphertext = bytes(aes.encrypt(b"secret", mechanism_param=iv))

        disabled = e.client.post(f"/v1/keys/{key_id}/disable", headers=e.auth("rita"))
        assert disabled.status_code == 200, disabled.text
        assert disabled.json()["outcome"] == "disabled"
        with pytest.raises(pkcs11.PKCS11Error, match="0x68"):  # CKR_KEY_FUNCTION_NOT_PERMITTED
            aes.decrypt(ciphertext, mechanism_param=iv)
        again = e.client.post(f"/v1/keys/{key_id}/disable", headers=e.auth("rita"))
        assert again.json()["outcome"] == "already_disabled"

        enabled = e.client.post(f"/v1/keys/{key_id}/enable", headers=e.auth("rita"))
        assert enabled.json()["outcome"] == "enabled"
        assert bytes(aes.decrypt(ciphertext, mechanism_param=iv)) == b"secret"
    missing = e.client.post("/v1/keys/no/such:key/disable", headers=e.auth("rita"))
    assert missing.status_code == 404


def test_keywatch_api_will_not_serve_unaudited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KEYWATCH_AUDIT__SIGNING_KEY", raising=False)
    assert main(["api", "--db", f"sqlite:///{tmp_path / 'a.db'}"]) == 2
    assert "audit.signing_key" in capsys.readouterr().err


def _with_nul(value: Any) -> Any:
    """Every string in ``value`` with a NUL byte inside (PostgreSQL text cannot hold one)."""
    if isinstance(value, str):
        return value[:1] + "\x00" + value[1:]
    if isinstance(value, dict):
        return {k: _with_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_nul(v) for v in value]
    return value


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.role], ids=lambda e: f"{e.method} {e.url}")
def test_nul_characters_anywhere_are_a_clear_422_never_a_server_error(env: Env, endpoint: Endpoint) -> None:
    """PostgreSQL text cannot hold NUL: without the guard a NUL in an id gave 500 there."""
    values = endpoint.setup(env)
    body = values.pop("body", endpoint.body)
    url = endpoint.url.format(**values)
    tries = [(url + ("&" if "?" in url else "?") + "limit=1%00", body, "the query string")]
    if "{" in endpoint.url:  # ids in the path
        nul_ids = {k: f"{v}"[:1] + "%00" + f"{v}"[1:] for k, v in values.items()}
        tries.append((endpoint.url.format(**nul_ids), body, "the path"))
    if _with_nul(body) != body:
        tries.append((url, _with_nul(body), "the request body"))
    for target, sent, where in tries:
        response = env.client.request(endpoint.method, target, json=sent, headers=env.auth("ada"))
        assert response.status_code == 422, (target, sent, response.text)
        assert response.json() == {"detail": f"NUL characters are not allowed in {where}"}


def test_the_text_backslash_u0000_is_not_a_nul(env: Env) -> None:
    incident = _incident(env)["incident_id"]
    text = "pasted from a log: \\u0000 and \\x00"
    notes = f"/v1/incidents/{incident}/notes"
    response = env.client.post(notes, json={"text": text}, headers=env.auth("ann"))
    assert response.status_code == 200, response.text
    detail = env.client.get(f"/v1/incidents/{incident}", headers=env.auth("ann")).json()
    assert any(text in entry["text"] for entry in detail["timeline"])
