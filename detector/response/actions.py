"""The actions a playbook step can take: a registry of typed parameters, flags and what each one does.

An action registers with :func:`action`: its parameter model (validated when a playbook loads),
whether staged mode may run it and rollback can undo it (``reversible``), whether it needs two
approvers before it (``destructive``), whether it acts on a key in its backend (``changes_keys``),
and how to undo it. Registering a name twice is an error. Performing an action returns
:class:`Done` with what it did, or :class:`Wait` when the step must wait (a timer, an approval);
only the unexpected raises (``BackendUnavailable`` is retried, other ``KeyWatchError`` fails the
step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from detector.domain.errors import KeyWatchError
from detector.domain.incidents import IncidentStatus
from detector.domain.keys import ActionResult, KeyBackend, KeyBackendError
from detector.domain.ports import IncidentLog, Notifier
from detector.domain.runs import RunView, Status

log = logging.getLogger(__name__)


class ActionParams(BaseModel):
    """Parameters of an action (a step's ``with``): strict, nothing unknown."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NotifyArgs(ActionParams):
    channel: str | None = None  # default: the playbook's `channel` parameter, then slack.default_channel
    message: str = Field(min_length=1, max_length=3000)


class AnnotateArgs(ActionParams):
    note: str = Field(min_length=1, max_length=3000)
    status: Literal["acknowledged", "contained", "resolved"] | None = None


class ApprovalArgs(ActionParams):
    role: Literal["responder", "admin"] = "responder"
    approvers: int = Field(1, ge=1, le=5)
    timeout_minutes: float = Field(60.0, gt=0)


class WaitArgs(ActionParams):
    seconds: float = Field(ge=0, le=7 * 86400)


class KeyArgs(ActionParams):
    key: str = "$key_id"  # template; the incident's key by default


class RevokeArgs(KeyArgs):
    backup: bool = True


class WebhookArgs(ActionParams):
    url: str = Field(pattern=r"^https?://")
    body: dict[str, Any] = {}
    timeout_seconds: float = Field(5.0, gt=0, le=60)


@dataclass(frozen=True, slots=True)
class Ports:
    """What actions act through."""

    backend_for: Callable[[str], KeyBackend]
    notifier: Notifier
    incidents: IncidentLog
    clock: Callable[[], float]


@dataclass(frozen=True, slots=True)
class StepCall:
    """One step about to be performed: its run, position, rendered arguments and idempotency key."""

    run: RunView
    index: int
    step_id: str
    idempotency_key: str  # <run_id>:<index>: repeats of the same step carry the same one
    args: dict[str, Any]  # rendered (templates filled in) and validated by the action's model
    key_id: str  # the run's key (the incident's)
    incident_id: str | None
    next_attempt_at: float | None  # the step's stored timer, if it has one
    ports: Ports


@dataclass(frozen=True, slots=True)
class Done:
    """The step did its work; ``result`` is stored with it and goes into the audit record."""

    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Wait:
    """The step waits: its status becomes ``step_status`` (and the run's ``run_status``) until ``until``."""

    until: float | None = None  # None: keep the stored timer
    step_status: str | None = None  # None: leave the step as it is
    run_status: str | None = None


Perform = Callable[[StepCall], Done | Wait]
Undo = Callable[[KeyBackend, str], ActionResult]


@dataclass(frozen=True, slots=True)
class Action:
    """A registered action."""

    name: str
    params: type[ActionParams]
    reversible: bool  # staged mode runs only these; rollback can undo them (or they change nothing)
    destructive: bool  # needs a require_approval step with at least two approvers before it
    changes_keys: bool  # acts on the key in its backend
    perform: Perform
    undo: Undo | None = None  # how rollback reverses it; None: nothing to undo


ACTIONS: dict[str, Action] = {}


def action(
    name: str,
    params: type[ActionParams],
    *,
    reversible: bool,
    destructive: bool = False,
    changes_keys: bool = False,
    undo: Undo | None = None,
) -> Callable[[Perform], Perform]:
    """Register the decorated function as the action ``name``; a name registered twice is an error."""

    def register(perform: Perform) -> Perform:
        if name in ACTIONS:
            raise ValueError(f"action {name!r} is registered twice")
        ACTIONS[name] = Action(name, params, reversible, destructive, changes_keys, perform, undo)
        return perform

    return register


def _key_result(res: ActionResult) -> Done:
    return Done({"outcome": str(res.outcome), "backend": res.backend, "key_id": res.key_id,
                 "detail": res.detail})  # fmt: skip


@action("notify", NotifyArgs, reversible=True)
def _notify(call: StepCall) -> Done | Wait:
    call.ports.notifier.notify(
        dedupe_key=call.idempotency_key,
        channel=call.args.get("channel"),
        text=call.args["message"],
        kind="playbook_step",
        data={"run_id": call.run.run_id, "key_id": call.key_id},
    )
    return Done({"outcome": "queued"})


@action("annotate_incident", AnnotateArgs, reversible=True)
def _annotate(call: StepCall) -> Done | Wait:
    if call.incident_id is None:
        return Done({"outcome": "no incident"})
    actor, args, incidents = f"playbook:{call.run.playbook}", call.args, call.ports.incidents
    if args.get("status"):
        try:
            status = IncidentStatus(args["status"])
            incidents.set_incident_status(call.incident_id, status, actor, args["note"])
            return Done({"outcome": f"incident {args['status']}"})
        except KeyWatchError as exc:  # e.g. already resolved: keep the note at least
            log.info("incident %s status unchanged: %s", call.incident_id, exc)
    incidents.add_incident_note(call.incident_id, actor, args["note"])
    return Done({"outcome": "noted"})


@action("require_approval", ApprovalArgs, reversible=True)
def _require_approval(call: StepCall) -> Done | Wait:
    args, run = call.args, call.run
    call.ports.notifier.notify(
        dedupe_key=call.idempotency_key,
        channel=None,
        text=f"Approval needed: {run.playbook} on {call.key_id} ({args['approvers']} × {args['role']})",
        kind="approval",
        data={
            "run_id": run.run_id,
            "step_index": call.index,
            "step_id": call.step_id,
            "key_id": call.key_id,
            "requested_by": run.requested_by,
            "approvers": int(args["approvers"]),
            "summary": f"Playbook {run.playbook} ({run.mode}) waits for {args['approvers']} "
            f"approval(s) by a {args['role']} before it goes on.",
        },
    )
    deadline = call.ports.clock() + float(args["timeout_minutes"]) * 60
    return Wait(until=deadline, step_status=Status.WAITING, run_status=Status.WAITING)


@action("wait", WaitArgs, reversible=True)
def _wait(call: StepCall) -> Done | Wait:
    seconds, now = float(call.args["seconds"]), call.ports.clock()
    if call.next_attempt_at is None:
        return Wait(until=now + seconds, step_status=Status.RETRYING)
    if call.next_attempt_at > now:
        return Wait()
    return Done({"outcome": "waited", "seconds": seconds})


def _enable(backend: KeyBackend, key_id: str) -> ActionResult:
    return backend.enable(key_id)


def _cancel_revoke(backend: KeyBackend, key_id: str) -> ActionResult:
    return backend.rollback_revoke(key_id)


@action("disable_key", KeyArgs, reversible=True, changes_keys=True, undo=_enable)
def _disable_key(call: StepCall) -> Done | Wait:
    key_id = str(call.args["key"])
    return _key_result(call.ports.backend_for(key_id).disable(key_id))


@action("enable_key", KeyArgs, reversible=True, changes_keys=True)
def _enable_key(call: StepCall) -> Done | Wait:
    key_id = str(call.args["key"])
    return _key_result(call.ports.backend_for(key_id).enable(key_id))


@action("rotate_key", KeyArgs, reversible=False, changes_keys=True)
def _rotate_key(call: StepCall) -> Done | Wait:
    key_id = str(call.args["key"])
    return _key_result(call.ports.backend_for(key_id).rotate(key_id))


@action("revoke_key", RevokeArgs, reversible=False, destructive=True, changes_keys=True, undo=_cancel_revoke)
def _revoke_key(call: StepCall) -> Done | Wait:
    key_id = str(call.args["key"])
    backup = bool(call.args.get("backup", True))
    return _key_result(call.ports.backend_for(key_id).revoke(key_id, approved=True, backup=backup))


@action("webhook", WebhookArgs, reversible=False)
def _webhook(call: StepCall) -> Done | Wait:
    raise KeyBackendError("webhook steps are validated but not executed")
