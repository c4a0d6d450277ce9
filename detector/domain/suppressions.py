"""Analyst feedback, pure: verdicts on alerts, suppressions that silence known-benign alerts.

A suppression names at least one of key, principal, detector and country; an alert matches
when every field the suppression sets equals the alert's. Alerts carry no country of their
own: geography rules say it in their reasons. ``new_geography`` reasons (feature
``new_country_events``) hold the count as value and the country in the text ("3 calls from
BR, where ..."); ``impossible_travel`` reasons (``max_travel_kmh``) name both ends ("was in US
and then DE ..."). :func:`alert_countries` reads those, plus any string value of a feature
named after countries, and never the "usually US, DE" baseline.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from detector.domain.alerts import Alert
from detector.domain.errors import KeyWatchError
from detector.domain.events import Event, format_ts

DAY = 86_400.0
MAX_DAYS = 90  # the longest a suppression may last
PROPOSED_DAYS = 7  # what a false-positive verdict proposes
PREVIEW_DAYS = 7  # how far back a preview looks
MATCH_FIELDS = ("key_id", "principal", "detector", "country")
GEO_FEATURES = frozenset({"new_country_events", "max_travel_kmh"})
_FROM = re.compile(r"\bfrom ([A-Z]{2})\b")
_TRAVEL = re.compile(r"\bwas in ([A-Z]{2}) and then ([A-Z]{2})\b")


class FeedbackError(KeyWatchError):
    """A verdict or suppression that cannot be accepted; the message says why (HTTP 422)."""


class Verdict(StrEnum):
    """What an analyst decided about an alert."""

    TRUE_POSITIVE = "true_positive"
    FALSE_POSITIVE = "false_positive"


@dataclass(slots=True, frozen=True)
class VerdictRecord:
    """One alert's verdict (the latest one given replaces the earlier)."""

    alert_id: str
    verdict: Verdict
    comment: str | None
    author: str
    decided_at: float

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"alert_id": self.alert_id, "verdict": self.verdict.value, "comment": self.comment,
                "author": self.author, "decided_at": format_ts(self.decided_at)}  # fmt: skip


@dataclass(slots=True, frozen=True)
class Match:
    """What a suppression matches; None fields match anything."""

    key_id: str | None = None
    principal: str | None = None
    detector: str | None = None
    country: str | None = None

    def is_empty(self) -> bool:
        """True when no field is set (such a match would silence everything)."""
        return all(getattr(self, name) is None for name in MATCH_FIELDS)

    def matches(self, alert: Alert) -> bool:
        """Every set field equals the alert's (country: one of :func:`alert_countries`)."""
        if self.is_empty():
            return False
        checks = (
            self.key_id is None or self.key_id == alert.key_id,
            self.principal is None or self.principal == alert.principal,
            self.detector is None or self.detector == alert.detector,
            self.country is None or self.country in alert_countries(alert),
        )
        return all(checks)

    def to_dict(self) -> dict[str, str | None]:
        """JSON form of the match fields."""
        return {name: getattr(self, name) for name in MATCH_FIELDS}


@dataclass(slots=True, frozen=True)
class Suppression:
    """A match with a reason and an end; it applies from creation until expiry or revocation."""

    suppression_id: str
    match: Match
    reason: str
    author: str
    created_at: float
    expires_at: float
    revoked_at: float | None = None

    def active_at(self, now: float) -> bool:
        """Whether it applies at ``now`` (epoch seconds)."""
        revoked = self.revoked_at is not None and self.revoked_at <= now
        return self.created_at <= now < self.expires_at and not revoked

    def matches(self, alert: Alert) -> bool:
        """Whether ``alert`` is one this suppression silences (ignoring time)."""
        return self.match.matches(alert)

    def to_dict(self, now: float | None = None) -> dict[str, Any]:
        """JSON form; ``active`` when ``now`` is given."""
        revoked = format_ts(self.revoked_at) if self.revoked_at is not None else None
        data = {"id": self.suppression_id, **self.match.to_dict(), "reason": self.reason,
                "author": self.author, "created_at": format_ts(self.created_at),
                "expires_at": format_ts(self.expires_at), "revoked_at": revoked}  # fmt: skip
        return data if now is None else data | {"active": self.active_at(now)}


def alert_countries(alert: Alert) -> set[str]:
    """The countries an alert's geography reasons name (see the module docstring)."""
    found: set[str] = set()
    for reason in alert.reasons:
        if "country" in reason.feature and isinstance(reason.value, str) and reason.value:
            found.add(reason.value)
        if reason.feature == "new_country_events":
            found.update(_FROM.findall(reason.text)[:1])
        elif reason.feature == "max_travel_kmh":
            for pair in _TRAVEL.findall(reason.text):
                found.update(pair)
    return found


def check_suppression(match: Match, reason: str, expires_at: float, now: float) -> None:
    """Raise FeedbackError unless a new suppression is acceptable at ``now``."""
    if match.is_empty():
        raise FeedbackError(f"a suppression needs at least one of {', '.join(MATCH_FIELDS)}")
    if not reason.strip():
        raise FeedbackError("a suppression needs a reason")
    if expires_at <= now:
        raise FeedbackError("expires_at must be in the future")
    if expires_at > now + MAX_DAYS * DAY:
        raise FeedbackError(f"a suppression lasts at most {MAX_DAYS} days")


def first_active(suppressions: Iterable[Suppression], alert: Alert, now: float) -> Suppression | None:
    """The first suppression active at ``now`` that matches ``alert``, or None."""
    return next((s for s in suppressions if s.active_at(now) and s.matches(alert)), None)


def proposal(alert: Alert, now: float) -> dict[str, Any]:
    """The suppression a false-positive verdict suggests (not created): key, principal, detector, 7 days."""
    match = Match(key_id=alert.key_id, principal=alert.principal, detector=alert.detector)
    return {**match.to_dict(), "reason": f"false positive: alert {alert.alert_id}",
            "expires_at": format_ts(now + PROPOSED_DAYS * DAY)}  # fmt: skip


@dataclass(slots=True, frozen=True)
class Span:
    """Events of ``key_id`` in ``[start, end)``: the windows of a false-positive alert."""

    key_id: str
    start: float
    end: float

    @classmethod
    def of(cls, alert: Alert) -> Span:
        """The span an alert covers (it merges consecutive windows)."""
        return cls(alert.key_id, alert.first_window_start, alert.window_end)


def exclude_spans(events: Sequence[Event], spans: Iterable[Span]) -> tuple[list[Event], int]:
    """``events`` without those inside any span, and how many were left out.

    >>> from detector.domain.events import Event
    >>> e = [Event(str(i), float(i), "k", "Decrypt", "p", "", "ok", "t") for i in range(5)]
    >>> kept, dropped = exclude_spans(e, [Span("k", 1.0, 3.0)])
    >>> [x.event_id for x in kept], dropped
    (['0', '3', '4'], 2)
    """
    by_key: dict[str, list[Span]] = {}
    for span in spans:
        by_key.setdefault(span.key_id, []).append(span)
    if not by_key:
        return list(events), 0
    kept = [e for e in events if not any(s.start <= e.ts < s.end for s in by_key.get(e.key_id, ()))]
    return kept, len(events) - len(kept)
