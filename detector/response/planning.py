"""Which playbook applies to an incident, and what a run of it would do (pure).

A :class:`Context` is what the runner knows about the incident it responds to. ``plan`` says,
step by step, whether the step would run in a mode and why not, with its rendered arguments, and
how far the change reaches (the key's recent callers: the blast radius).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from string import Template
from typing import Any

from detector.domain.alerts import Severity
from detector.response.actions import ACTIONS
from detector.response.playbook import Mode, Playbook, Step, parse_when


@dataclass(frozen=True, slots=True)
class Context:
    """The incident a run responds to, as templates and conditions see it."""

    key_id: str
    incident_id: str | None = None
    principal: str = ""
    detector: str = ""
    severity: str = "medium"
    environment: str = "unknown"
    classification: str = "internal"
    service: str = ""
    owner: str = ""
    source: str = ""
    reasons: tuple[str, ...] = ()
    recent_callers: tuple[str, ...] = ()  # principals seen on the key lately: who a change would hit
    detectors: tuple[str, ...] = ()  # every detector of the incident's alerts

    def variables(self, params: dict[str, Any]) -> dict[str, str]:
        """Template variables: the playbook's parameters, then the context's fields."""
        out = {k: str(v) for k, v in params.items()}
        out.update(
            key_id=self.key_id,
            incident_id=self.incident_id or "",
            principal=self.principal or "unknown",
            detector=self.detector,
            severity=self.severity,
            environment=self.environment,
            classification=self.classification,
            service=self.service,
            owner=self.owner,
            source=self.source,
        )
        return out


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One step of a plan: whether it runs in the chosen mode, and with which arguments."""

    index: int
    step_id: str
    action: str
    runs: bool
    reason: str  # why it is skipped, or what it will do
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a run of a playbook in a mode would do for a context."""

    playbook: str
    mode: Mode
    key_id: str
    steps: tuple[PlannedStep, ...]
    blast_radius: tuple[str, ...]

    def lines(self) -> list[str]:
        """The plan in plain words, one line per step."""
        head = f"playbook {self.playbook} in {self.mode} mode on key {self.key_id}"
        callers = ", ".join(self.blast_radius[:10]) or "none seen"
        more = f" (+{len(self.blast_radius) - 10} more)" if len(self.blast_radius) > 10 else ""
        out = [head, f"blast radius: {len(self.blast_radius)} recent callers: {callers}{more}"]
        for s in self.steps:
            mark = "run " if s.runs else "skip"
            out.append(f"  {s.index + 1}. [{mark}] {s.step_id} ({s.action}): {s.reason}")
        return out


def matches(playbook: Playbook, ctx: Context) -> bool:
    """Whether the playbook's trigger fires for this incident."""
    t = playbook.trigger
    detectors = set(ctx.detectors or (ctx.detector,))
    if t.detectors and not detectors & set(t.detectors):
        return False
    if Severity.parse(ctx.severity) < Severity.parse(t.min_severity):
        return False
    tags = {
        "environment": ctx.environment,
        "classification": ctx.classification,
        "service": ctx.service,
        "owner": ctx.owner,
    }
    return all(tags[name] in allowed for name, allowed in t.key_tags.items())


def condition_holds(step: Step, ctx: Context) -> bool:
    """Evaluate a step's ``when`` (no code is ever evaluated: a fixed grammar)."""
    if step.when is None:
        return True
    name, op, raw = parse_when(step.when)
    values = [v.strip().strip("'\"") for v in raw.strip("[]").split(",")]
    actual = getattr(ctx, name)
    if name == "severity":
        have, want = Severity.parse(actual), [Severity.parse(v) for v in values]
        return _compare(have, op, want)
    return _compare(actual, op, values)


def _compare(have: Any, op: str, want: list[Any]) -> bool:
    first = want[0]
    if op == "in":
        return have in want
    result: bool = {
        "==": have == first,
        "!=": have != first,
        ">=": have >= first,
        "<=": have <= first,
        ">": have > first,
        "<": have < first,
    }[op]
    return result


def render(value: Any, variables: dict[str, str]) -> Any:
    """Substitute ``$name`` templates in strings (recursively); unknown names stay as written."""
    if isinstance(value, str):
        return Template(value).safe_substitute(variables)
    if isinstance(value, dict):
        return {k: render(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, variables) for v in value]
    return value


def step_args(playbook: Playbook, step: Step, ctx: Context) -> dict[str, Any]:
    """A step's arguments, validated and rendered for this context."""
    args = step.args().model_dump()
    if step.action == "notify" and not args.get("channel"):
        args["channel"] = playbook.parameters.get("channel")
    rendered: dict[str, Any] = render(args, ctx.variables(playbook.parameters))
    return rendered


def skip_reason(playbook: Playbook, step: Step, ctx: Context, mode: Mode) -> str | None:
    """Why a step does not run in ``mode`` for ``ctx`` (None: it runs)."""
    if not condition_holds(step, ctx):
        return f"condition not met: {step.when}"
    if mode is Mode.STAGED and not ACTIONS[step.action].reversible:
        return "staged mode runs reversible steps only"
    return None


def plan(playbook: Playbook, ctx: Context, mode: Mode) -> Plan:
    """What a run would do, step by step; a dry run changes nothing."""
    steps = []
    for i, step in enumerate(playbook.steps):
        args = step_args(playbook, step, ctx)
        why = skip_reason(playbook, step, ctx, mode)
        spec = ACTIONS[step.action]
        if why is None:
            what = describe(step.action, args)
            if mode is Mode.DRY_RUN:
                what = f"would {what}"
            steps.append(PlannedStep(i, step.id, step.action, mode is not Mode.DRY_RUN, what, args))
        else:
            steps.append(PlannedStep(i, step.id, step.action, False, why, args))
        if spec.destructive and why is None and mode is Mode.DRY_RUN:
            steps[-1] = PlannedStep(
                i, step.id, step.action, False, f"{steps[-1].reason} (irreversible)", args
            )
    return Plan(playbook.name, mode, ctx.key_id, tuple(steps), ctx.recent_callers)


def describe(action: str, args: dict[str, Any]) -> str:
    """A step in plain words."""
    key = args.get("key", "")
    return {
        "notify": lambda: (
            f"post to {args.get('channel') or 'the default channel'}: {str(args.get('message'))[:80]}"
        ),
        "annotate_incident": lambda: f"note on the incident{_status(args)}: {args.get('note')}",
        "require_approval": lambda: f"wait for {args.get('approvers')} approval(s) by a {args.get('role')}",
        "wait": lambda: f"wait {args.get('seconds')} s",
        "disable_key": lambda: f"disable key {key} (turn off its usage attributes; enable restores them)",
        "enable_key": lambda: f"enable key {key} (restore what was turned off)",
        "rotate_key": lambda: f"rotate key {key} (successor created; the old key stays decrypt-only)",
        "revoke_key": lambda: (
            f"revoke key {key} ({'wrapped backup kept, ' if args.get('backup') else ''}destroyed)"
        ),
        "webhook": lambda: f"POST to {args.get('url')}",
    }[action]()


def _status(args: dict[str, Any]) -> str:
    return f" and mark it {args['status']}" if args.get("status") else ""
