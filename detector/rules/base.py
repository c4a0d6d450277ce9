"""What every rule detector receives, and small helpers they share."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from detector.config import DetectionSettings
from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.events import Event
from detector.features.profiles import KeyProfile, PrincipalProfile, Profiles
from detector.features.seasonal import Expectation, VolumeState
from detector.features.window import PrincipalWindow, WindowFeatures


@dataclass(slots=True)
class RuleContext:
    """Settings and learned state as they were before the window being judged."""

    settings: DetectionSettings
    profiles: Profiles
    drift: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (score, last window)
    hourly: dict[str, tuple[int, int, bool]] = field(default_factory=dict)  # slot -> (hour, calls, new net)
    volume: dict[str, VolumeState] = field(default_factory=dict)  # key -> its seasonal volume test
    seasonal: dict[str, tuple[int, Expectation]] = field(default_factory=dict)  # key -> (hour, expectation)
    period: dict[str, PrincipalWindow] = field(default_factory=dict)  # principals of the period being judged

    @property
    def max_evidence(self) -> int:
        """Cap on event ids attached to a finding."""
        return self.settings.window.max_evidence

    def key_profile(self, key_id: str) -> KeyProfile | None:
        """Profile of a key, if learned."""
        return self.profiles.keys.get(key_id)

    def principal_profile(self, principal: str) -> PrincipalProfile | None:
        """Profile of a principal identity, if learned."""
        return self.profiles.principals.get(principal)


KeyRule = Callable[[WindowFeatures, RuleContext], "Finding | None"]
PrincipalRule = Callable[[PrincipalWindow, float, float, RuleContext], "Finding | None"]


def evidence(events: Iterable[Event], cap: int, keep: Callable[[Event], bool] | None = None) -> list[str]:
    """Ids of up to ``cap`` events, optionally only those ``keep`` accepts."""
    out: list[str] = []
    for ev in events:
        if keep is None or keep(ev):
            out.append(ev.event_id)
            if len(out) >= cap:
                break
    return out


def finding(
    detector: str,
    f: WindowFeatures,
    severity: Severity,
    score: float,
    reasons: list[Reason],
    event_ids: list[str],
    principal: str | None = None,
) -> Finding:
    """A finding about the key window ``f``."""
    w = f.window
    return Finding(detector, w.key_id, principal, w.start, w.end, score, severity, reasons, event_ids)


def top_principal(counts: dict[str, int]) -> str | None:
    """The principal with the most events, if any."""
    return max(counts, key=counts.__getitem__) if counts else None


def plural(n: float, word: str) -> str:
    """``3 events`` / ``1 event``.

    >>> plural(1, "event"), plural(2.0, "call")
    ('1 event', '2 calls')
    """
    count = int(n) if float(n).is_integer() else n
    return f"{count:,} {word}{'' if count == 1 else 's'}"
