"""Playbooks: YAML documents saying when to respond and which steps to take (pure: text in, model out).

A playbook has a trigger (detectors, minimum severity, key tags), parameters, optional timed
auto-revert, and steps. Each step names an action of the registry
(:mod:`detector.response.actions`), its arguments (``with``), and optionally ``when``, ``retry``
and ``on_failure``. Loading validates everything against the registry and reports the first
problems with file, line and field, e.g.
``playbooks/x.yaml:14: steps[2].with.approvers: destructive steps need 2 approvers``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from detector.domain.alerts import Severity
from detector.domain.errors import KeyWatchError
from detector.response.actions import ACTIONS, ActionParams, ApprovalArgs


class PlaybookError(KeyWatchError):
    """A playbook that does not validate; the message names file, line and field."""


class Mode(StrEnum):
    """How much of a playbook runs: nothing, only reversible steps, or everything."""

    DRY_RUN = "dry-run"
    STAGED = "staged"
    ACTIVE = "active"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_WHEN = re.compile(
    r"^\s*(severity|environment|classification|detector|source)\s*(==|!=|>=|<=|>|<|in)\s*(.+?)\s*$"
)


class Retry(_Strict):
    attempts: int = Field(3, ge=1, le=20)
    backoff_seconds: float = Field(1.0, gt=0, le=600)


class Step(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    action: str
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    when: str | None = None
    retry: Retry = Retry()
    on_failure: Literal["abort", "continue", "escalate"] = "escalate"

    @field_validator("action")
    @classmethod
    def _known_action(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown action {value!r}; known: {', '.join(sorted(ACTIONS))}")
        return value

    @field_validator("when")
    @classmethod
    def _valid_when(cls, value: str | None) -> str | None:
        if value is not None:
            parse_when(value)
        return value

    def args(self) -> ActionParams:
        """The validated arguments of this step."""
        return ACTIONS[self.action].params.model_validate(self.with_)


class Trigger(_Strict):
    detectors: list[str] = []  # empty: any detector
    min_severity: Literal["low", "medium", "high", "critical"] = "high"
    key_tags: dict[Literal["environment", "classification", "service", "owner"], list[str]] = {}
    auto: bool = True  # start automatically on new or escalated incidents


class Playbook(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,127}$")
    description: str = ""
    trigger: Trigger = Trigger()
    parameters: dict[str, str | int | float | bool] = {}
    auto_revert_minutes: float | None = Field(None, gt=0)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _steps_hang_together(self) -> Playbook:
        seen: set[str] = set()
        approvers = 0
        for i, step in enumerate(self.steps):
            if step.id in seen:
                raise _StepError(i, "id", f"step id {step.id!r} is used twice")
            seen.add(step.id)
            try:
                args = step.args()
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"])
                raise _StepError(i, f"with.{field}" if field else "with", err["msg"]) from None
            if isinstance(args, ApprovalArgs):
                approvers = max(approvers, args.approvers)
            if ACTIONS[step.action].destructive and approvers < 2:
                raise _StepError(
                    i,
                    "action",
                    f"{step.action} is destructive: a require_approval step "
                    "with approvers: 2 or more must come before it",
                )
        return self

    @property
    def digest(self) -> str:
        """sha256 of the validated content (what a run records it ran)."""
        return hashlib.sha256(self.model_dump_json(by_alias=True).encode()).hexdigest()


class _StepError(ValueError):
    def __init__(self, index: int, field: str, message: str) -> None:
        super().__init__(message)
        self.index, self.field, self.message = index, field, message


def parse_when(text: str) -> tuple[str, str, str]:
    """Split a ``when`` condition into field, operator and value; raise ValueError if malformed.

    >>> parse_when("severity >= high")
    ('severity', '>=', 'high')
    """
    m = _WHEN.match(text)
    if m is None:
        raise ValueError(
            f"cannot read condition {text!r}: write FIELD OP VALUE with FIELD one of severity, "
            "environment, classification, detector, source and OP one of == != >= <= > < in"
        )
    field, op, value = m.groups()
    if field == "severity":
        for v in value.strip("[]").split(","):
            Severity.parse(v.strip().strip("'\""))
    return field, op, value


def load_playbook(text: str, source: str = "<playbook>") -> Playbook:
    """Parse and validate one playbook; raise :class:`PlaybookError` naming file, line and field."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise PlaybookError(f"{source}:{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise PlaybookError(f"{source}:1: a playbook is a mapping with name, trigger and steps")
    lines = _lines(root)
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _StepError):
            path: tuple[str | int, ...] = ("steps", ctx_error.index, *_split(ctx_error.field))
            message = ctx_error.message
        else:
            path = tuple(err["loc"])
            message = err["msg"].removeprefix("Value error, ")
        path = tuple("with" if p == "with_" else p for p in path)
        raise PlaybookError(f"{source}:{_line_of(lines, path)}: {_dotted(path)}: {message}") from None


def _split(field: str) -> tuple[str | int, ...]:
    return tuple(int(p) if p.isdigit() else p for p in field.split("."))


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _lines(node: yaml.Node | None) -> dict[tuple[str | int, ...], int]:
    """Line (1-based) of every mapping key and sequence item in the document."""
    out: dict[tuple[str | int, ...], int] = {}

    def walk(n: yaml.Node, path: tuple[str | int, ...]) -> None:
        out.setdefault(path, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key = (*path, str(k.value))
                out[key] = k.start_mark.line + 1
                walk(v, key)
        elif isinstance(n, yaml.SequenceNode):
            for i, item in enumerate(n.value):
                walk(item, (*path, i))

    if node is not None:
        walk(node, ())
    return out


def _line_of(lines: Mapping[tuple[str | int, ...], int], path: tuple[str | int, ...]) -> int:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1
