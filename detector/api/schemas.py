"""The JSON bodies the REST API answers with: the named schemas of its OpenAPI document.

Each model is exactly what a route returns, key for key and in the same order; most are the
``to_dict()`` of a domain object, which the route returns and FastAPI validates against the model.
Models refuse unknown keys, so a ``to_dict()`` that gains a key without its model fails the API
tests instead of losing the key silently. Times are RFC 3339 strings in UTC unless a field says
epoch seconds.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from detector.domain.incidents import IncidentStatus
from detector.domain.keys import KeyState, Outcome
from detector.domain.suppressions import Verdict
from detector.domain.users import Role
from detector.response.playbook import Mode

SeverityLabel = Literal["low", "medium", "high", "critical"]
Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, examples=["2024-04-29T08:00:00.000Z"])
]
EpochSeconds = Annotated[float, Field(description="epoch seconds")]
PageLimit = Annotated[int, Field(description="the page size asked for")]
PageOffset = Annotated[int, Field(description="how many items the page skipped")]
RUN_STATUSES = (
    "running, waiting, retrying, completed, failed, escalated, denied, rolled_back, planned, queued"
)
STEP_STATUSES = "pending, running, waiting, retrying, done, skipped, failed, rolled_back"


class Schema(BaseModel):
    """A response body: exactly these keys, in this order."""

    model_config = ConfigDict(extra="forbid")


# -- alerts and incidents --------------------------------------------------------------------------


class Reason(Schema):
    """One unusual feature: its value, what is normal for it, and a sentence saying so."""

    feature: str
    value: int | float | str
    baseline: int | float | str | None
    text: str


class Alert(Schema):
    """What a detector says about a key in a window, weighted by what the key protects."""

    alert_id: str
    key_id: str
    principal: str | None
    detector: str
    severity: SeverityLabel
    score: float = Field(description="higher is more anomalous")
    window_start: Timestamp
    window_end: Timestamp
    first_window_start: Timestamp = Field(description="start of the first window the alert merges")
    count: int = Field(description="windows merged")
    environment: str
    classification: str
    reasons: list[Reason]
    event_ids: list[str] = Field(description="evidence, at most 50")


class AlertPage(Schema):
    """A page of alerts, newest first."""

    items: list[Alert]
    limit: PageLimit
    offset: PageOffset


class Incident(Schema):
    """Alerts about one key, or one principal across keys, grouped into one story to work."""

    incident_id: str
    title: str
    status: IncidentStatus
    severity: SeverityLabel = Field(description="the highest of its alerts")
    assignee: str | None
    first_seen: Timestamp
    last_seen: Timestamp
    key_ids: list[str]
    principals: list[str]
    alert_count: int
    alert_ids: list[str]


class TimelineEntry(Schema):
    """One thing that happened to an incident: when, who, what kind, in words."""

    at: Timestamp
    actor: str
    kind: str
    text: str


class IncidentDetail(Incident):
    """An incident with its timeline, its alerts (with reasons) and the evidence event ids."""

    timeline: list[TimelineEntry]
    alerts: list[Alert]
    evidence_event_ids: list[str]


class IncidentPage(Schema):
    """A page of incidents, most recently active first."""

    items: list[Incident]
    limit: PageLimit
    offset: PageOffset


# -- playbook runs ---------------------------------------------------------------------------------


class RunPlan(Schema):
    """What a dry run would do, in plain words; nothing is stored."""

    playbook: str
    mode: Mode
    plan: list[str]


class QueuedRun(Schema):
    """A run stored for ``keywatch respond`` to execute (``Location`` names it)."""

    run_id: str
    status: Literal["queued"]
    playbook: str
    mode: Mode


class RunStep(Schema):
    """One step of a run, numbered from 0 by ``step_index``."""

    step_index: int
    step_id: str
    action: str
    status: str = Field(description=f"one of {STEP_STATUSES}")
    attempts: int
    result: Any = Field(description="what the action reported (JSON), or null")
    error: str | None
    next_attempt_at: EpochSeconds | None = Field(description="epoch seconds: next retry or approval deadline")


class Run(Schema):
    """A playbook run with its steps; an enqueued run nobody picked up yet is ``queued``."""

    run_id: str
    playbook: str
    mode: Mode
    status: str = Field(description=f"one of {RUN_STATUSES}")
    incident_id: str | None
    key_id: str
    requested_by: str
    revert_at: EpochSeconds | None = Field(description="epoch seconds of a timed auto-revert")
    error: str | None
    steps: list[RunStep]


class RunList(Schema):
    """Runs, newest first."""

    items: list[Run]


class PendingApproval(Schema):
    """An approval step waiting for a decision."""

    run_id: str
    playbook: str
    key_id: str
    incident_id: str | None
    requested_by: str
    step_index: int
    step_id: str
    deadline: EpochSeconds | None = Field(description="epoch seconds; null: no timeout")


class ApprovalPage(Schema):
    """A page of waiting approval steps, newest run first; ``total`` counts them all."""

    items: list[PendingApproval]
    total: int
    limit: PageLimit
    offset: PageOffset


# -- keys ------------------------------------------------------------------------------------------


class AlertSummary(Schema):
    """The newest alert on a key."""

    alert_id: str
    detector: str
    severity: SeverityLabel
    window_end: Timestamp


class Key(Schema):
    """A key as its backend reports it, with who called it lately and its newest alert."""

    key_id: str
    backend: str
    label: str
    key_type: str
    state: KeyState
    allowed_uses: list[str]
    version: int
    recent_callers: list[str] = Field(description="principals of the key's recent alerts")
    last_alert: AlertSummary | None


class BackendError(Schema):
    """A key backend whose inventory could not be read."""

    backend: str
    error: str


class KeyInventory(Schema):
    """Every key of every configured backend; unreachable backends under ``errors``."""

    items: list[Key]
    errors: list[BackendError]


class KeyAction(Schema):
    """What disabling or enabling a key did (``already_*``: nothing needed doing)."""

    key_id: str
    backend: str
    outcome: Outcome
    detail: dict[str, Any] = Field(description="backend-specific detail")


# -- users and the session -------------------------------------------------------------------------


class User(Schema):
    """A user as admins see them: whether an API token is set, never its hash."""

    name: str
    role: Role
    slack_user_id: str | None
    disabled: bool
    has_token: bool
    created_at: Timestamp


class UserList(Schema):
    """Every user by name."""

    items: list[User]


class CreatedUser(Schema):
    """A new user with their API token, shown only in this answer."""

    name: str
    role: Role
    slack_user_id: str | None
    token: str


class DisabledUser(Schema):
    """A disabled user; their token is revoked."""

    name: str
    role: Role
    disabled: bool
    has_token: bool


class EnabledUser(Schema):
    """A user enabled again with a new API token, shown only in this answer."""

    name: str
    role: Role
    disabled: bool
    token: str


class UserToken(Schema):
    """A user's new API token, shown only in this answer."""

    name: str
    token: str


class Me(Schema):
    """Who the bearer token belongs to."""

    name: str
    role: Role


class PlaybookStep(Schema):
    """A step of a playbook: its id and the action it runs."""

    id: str
    action: str


class Playbook(Schema):
    """A playbook a run may name."""

    name: str
    description: str
    steps: list[PlaybookStep]


class PlaybookLibrary(Schema):
    """The playbooks, and the modes a run may use."""

    items: list[Playbook]
    modes: list[Mode]


# -- feedback: verdicts, suppressions, model versions ----------------------------------------------


class VerdictRecord(Schema):
    """An analyst's verdict on an alert (the latest replaces the earlier)."""

    alert_id: str
    verdict: Verdict
    comment: str | None
    author: str
    decided_at: Timestamp


class SuppressionProposal(Schema):
    """The suppression a false-positive verdict suggests; it is not created."""

    key_id: str | None
    principal: str | None
    detector: str | None
    country: str | None
    reason: str
    expires_at: Timestamp


class FalsePositiveVerdict(VerdictRecord):
    """A false-positive verdict, with the 7-day suppression it proposes."""

    proposed_suppression: SuppressionProposal


class VerdictPage(Schema):
    """A page of verdicts, newest first."""

    items: list[VerdictRecord]
    limit: PageLimit
    offset: PageOffset


class Suppression(Schema):
    """A match that silences known-benign alerts from creation until expiry or revocation."""

    id: str
    key_id: str | None
    principal: str | None
    detector: str | None
    country: str | None
    reason: str
    author: str
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    active: bool = Field(description="whether it applies now")


class SuppressionPage(Schema):
    """A page of suppressions, newest first."""

    items: list[Suppression]
    limit: PageLimit
    offset: PageOffset


class SuppressionPreview(Schema):
    """Stored alerts of the last ``days`` days a match would have suppressed (at most 100 shown)."""

    days: int
    matched: int
    items: list[Alert]


class ModelVersion(Schema):
    """A registered model version with its card; exactly one is active once any exists."""

    version: str
    path: str
    card: dict[str, Any]
    registered_at: Timestamp
    active: bool


class ModelList(Schema):
    """Every registered version, newest first."""

    items: list[ModelVersion]


# -- health ----------------------------------------------------------------------------------------


class Health(Schema):
    """The process answers."""

    status: Literal["ok"]


class ComponentReady(Schema):
    """A component that answers."""

    status: Literal["ok"]


class ComponentFailed(Schema):
    """A component that does not answer, and why."""

    status: Literal["error"]
    error: str


class Readiness(Schema):
    """Per-component status: the store, the broker (when checked), each key backend."""

    status: Literal["ready", "not ready"]
    components: dict[str, ComponentReady | ComponentFailed]
