"""Alerts: what a detector says about a key in a window, in plain words."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from detector.domain.events import format_ts, parse_ts

MAX_EVIDENCE = 50


class Severity(IntEnum):
    """Ordered severities; arithmetic on them is clamped by :func:`shift`."""

    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        """Lower-case name used in JSON and tables."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Severity:
        """Parse ``low``/``medium``/``high``/``critical``."""
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(f"unknown severity {text!r}") from None

    def shift(self, steps: int) -> Severity:
        """Move up or down by ``steps`` levels, staying within low..critical."""
        return Severity(min(max(int(self) + steps, Severity.LOW), Severity.CRITICAL))


@dataclass(slots=True, frozen=True)
class Reason:
    """One unusual feature: its value, what is normal for it, and a sentence saying so."""

    feature: str
    value: float | str
    baseline: float | str | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"feature": self.feature, "value": self.value, "baseline": self.baseline, "text": self.text}


@dataclass(slots=True)
class Finding:
    """What one detector found in one window, before severity weighting and grouping."""

    detector: str
    key_id: str
    principal: str | None
    window_start: float
    window_end: float
    score: float
    severity: Severity
    reasons: list[Reason]
    event_ids: list[str] = field(default_factory=list)
    peers: tuple[str, ...] = ()  # other keys in the same shared surge, for a surge notice


@dataclass(slots=True)
class Alert:
    """A finding weighted by what the key protects, merged over consecutive windows."""

    alert_id: str
    key_id: str
    principal: str | None
    detector: str
    severity: Severity
    score: float
    window_start: float
    window_end: float
    first_window_start: float
    reasons: list[Reason]
    event_ids: list[str]
    count: int = 1
    environment: str = ""
    classification: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form, timestamps in RFC 3339."""
        return {
            "alert_id": self.alert_id,
            "key_id": self.key_id,
            "principal": self.principal,
            "detector": self.detector,
            "severity": self.severity.label,
            "score": round(self.score, 4),
            "window_start": format_ts(self.window_start),
            "window_end": format_ts(self.window_end),
            "first_window_start": format_ts(self.first_window_start),
            "count": self.count,
            "environment": self.environment,
            "classification": self.classification,
            "reasons": [r.to_dict() for r in self.reasons],
            "event_ids": self.event_ids,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Inverse of :meth:`to_dict`."""
        return cls(
            alert_id=data["alert_id"],
            key_id=data["key_id"],
            principal=data.get("principal"),
            detector=data["detector"],
            severity=Severity.parse(data["severity"]),
            score=float(data["score"]),
            window_start=parse_ts(data["window_start"]),
            window_end=parse_ts(data["window_end"]),
            first_window_start=parse_ts(data.get("first_window_start", data["window_start"])),
            reasons=[Reason(**r) for r in data.get("reasons", [])],
            event_ids=list(data.get("event_ids", [])),
            count=int(data.get("count", 1)),
            environment=data.get("environment", ""),
            classification=data.get("classification", ""),
        )


def alert_id_for(key_id: str, detector: str, principal: str | None, first_window_start: float) -> str:
    """Stable identity of an alert episode, so a replayed window never makes a second one.

    >>> alert_id_for("k1", "volume_spike", None, 60.0) == alert_id_for("k1", "volume_spike", None, 60.0)
    True
    """
    raw = f"{key_id}\x1f{detector}\x1f{principal or ''}\x1f{first_window_start:.3f}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]
