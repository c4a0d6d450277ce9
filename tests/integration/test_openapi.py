"""The OpenAPI document clients generate code from: named schemas, stable operation ids, documented errors.

Operation ids are part of the API: a generated client names its methods after them, so renaming
one breaks clients. ``OPERATION_IDS`` is the committed list; change it only on purpose.
"""

from __future__ import annotations

from typing import Any

import pytest
import test_api as api
from api_support import Env
from pydantic import BaseModel

from detector.adapters.store import Store
from detector.api import create_app
from detector.api.auth import FailedLogins
from detector.api.problems import Problem, ValidationProblem
from detector.config import Settings
from detector.domain.users import Role

pytestmark = pytest.mark.integration

# fmt: off
OPERATION_IDS = {
    ("GET", "/healthz"): "get_health",
    ("GET", "/readyz"): "get_readiness",
    ("GET", "/metrics"): "get_metrics",
    ("GET", "/v1/alerts"): "list_alerts",
    ("GET", "/v1/alerts/{alert_id}"): "get_alert",
    ("POST", "/v1/alerts/{alert_id}/verdict"): "set_verdict",
    ("GET", "/v1/verdicts"): "list_verdicts",
    ("GET", "/v1/incidents"): "list_incidents",
    ("GET", "/v1/incidents/{incident_id}"): "get_incident",
    ("POST", "/v1/incidents/{incident_id}/status"): "set_incident_status",
    ("POST", "/v1/incidents/{incident_id}/assignee"): "set_incident_assignee",
    ("POST", "/v1/incidents/{incident_id}/notes"): "add_incident_note",
    ("POST", "/v1/incidents/{incident_id}/runs"): "start_run",
    ("GET", "/v1/runs"): "list_runs",
    ("GET", "/v1/runs/{run_id}"): "get_run",
    ("GET", "/v1/approvals"): "list_pending_approvals",
    ("POST", "/v1/runs/{run_id}/steps/{step_index}/approve"): "approve_step",
    ("POST", "/v1/runs/{run_id}/steps/{step_index}/deny"): "deny_step",
    ("GET", "/v1/keys"): "list_keys",
    ("POST", "/v1/keys/{key_id}/disable"): "disable_key",
    ("POST", "/v1/keys/{key_id}/enable"): "enable_key",
    ("GET", "/v1/users"): "list_users",
    ("POST", "/v1/users"): "add_user",
    ("POST", "/v1/users/{name}/disable"): "disable_user",
    ("POST", "/v1/users/{name}/enable"): "enable_user",
    ("POST", "/v1/users/{name}/rotate-token"): "rotate_user_token",
    ("GET", "/v1/me"): "get_me",
    ("GET", "/v1/playbooks"): "list_playbooks",
    ("GET", "/v1/suppressions"): "list_suppressions",
    ("POST", "/v1/suppressions"): "add_suppression",
    ("DELETE", "/v1/suppressions/{suppression_id}"): "revoke_suppression",
    ("POST", "/v1/suppressions/preview"): "preview_suppression",
    ("GET", "/v1/models"): "list_models",
    ("GET", "/v1/models/active"): "get_active_model",
    ("POST", "/v1/models/{version}/activate"): "activate_model",
}
# fmt: on
RESOURCES = {
    "Alert",
    "AlertPage",
    "Incident",
    "IncidentDetail",
    "IncidentPage",
    "TimelineEntry",
    "Run",
    "RunStep",
    "RunPlan",
    "QueuedRun",
    "PendingApproval",
    "ApprovalPage",
    "Key",
    "KeyInventory",
    "KeyAction",
    "User",
    "UserList",
    "Me",
    "Playbook",
    "PlaybookLibrary",
    "VerdictRecord",
    "Suppression",
    "SuppressionPreview",
    "ModelVersion",
    "Health",
    "Readiness",
    "Problem",
    "ValidationProblem",
}  # fmt: skip


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(), Store("sqlite://"), backends={}).openapi()


def _operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m.upper(), path): op for path, ops in spec["paths"].items() for m, op in ops.items()}


def _authenticated() -> set[tuple[str, str]]:
    """Operations the role matrix of ``test_api`` calls with a token."""
    return {(e.method, e.route.replace(":path", "")) for e in api.ENDPOINTS if e.role is not None}


def test_every_resource_has_a_named_schema(spec: dict[str, Any]) -> None:
    assert RESOURCES - set(spec["components"]["schemas"]) == set()


def test_every_json_answer_is_a_named_schema(spec: dict[str, Any]) -> None:
    for (method, path), op in _operations(spec).items():
        for code, response in op["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                continue
            refs = [schema] if "$ref" in schema else schema.get("anyOf", [])
            assert refs and all("$ref" in r for r in refs), (method, path, code, schema)


def test_operation_ids_are_unique_and_as_committed(spec: dict[str, Any]) -> None:
    ids = {key: op.get("operationId") for key, op in _operations(spec).items()}
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)


def test_authenticated_operations_document_401_and_the_throttle(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    for key in _authenticated():
        assert {"401", "422", "429", "503"} <= set(operations[key]["responses"]), key


def test_403_is_documented_exactly_where_a_role_can_be_refused(spec: dict[str, Any]) -> None:
    """Every user is at least an analyst, so only operations needing more can answer 403."""
    refusing = {
        (e.method, e.route.replace(":path", "")) for e in api.ENDPOINTS if e.role and e.role > Role.ANALYST
    }
    documented = {key for key, op in _operations(spec).items() if "403" in op["responses"]}
    assert documented == refusing


def test_operations_with_a_path_parameter_document_404(spec: dict[str, Any]) -> None:
    for (method, path), op in _operations(spec).items():
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            assert "404" in op["responses"], (method, path)


def _conforms(model: type[BaseModel], body: Any) -> None:
    assert set(body) == set(model.model_fields), body
    model.model_validate(body)


def test_error_bodies_are_the_documented_problems(env: Env) -> None:
    client, ann = env.client, env.auth("ann")
    _conforms(Problem, client.get("/v1/alerts").json())  # 401
    _conforms(Problem, client.get("/v1/users", headers=ann).json())  # 403
    _conforms(Problem, client.get("/v1/alerts/nope", headers=ann).json())  # 404
    _conforms(ValidationProblem, client.get("/v1/alerts?limit=0", headers=ann).json())
    _conforms(ValidationProblem, client.get("/v1/me?x=%00", headers=ann).json())
    env.client.app.state.keywatch.logins = FailedLogins(1, 60.0)  # type: ignore[attr-defined]
    client.get("/v1/alerts", headers={"Authorization": "Bearer kw_guess"})
    throttled = client.get("/v1/alerts", headers=ann)
    assert throttled.status_code == 429
    _conforms(Problem, throttled.json())
