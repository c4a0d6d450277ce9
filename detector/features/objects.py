"""Distinct objects (secrets, parameters, files: the encryption context) each principal opens lately."""

from __future__ import annotations

from collections.abc import Collection


class ObjectTracker:
    """Per principal, the objects it opened within the last ``horizon_seconds`` and when.

    >>> t = ObjectTracker(600.0, cap=100)
    >>> t.observe("p", {"s1", "s2"}, 0.0), t.observe("p", {"s2", "s3"}, 300.0), t.observe("p", {"s4"}, 700.0)
    (2, 3, 3)
    """

    def __init__(self, horizon_seconds: float, cap: int) -> None:
        self.horizon = horizon_seconds
        self.cap = cap
        self.seen: dict[str, dict[str, float]] = {}

    def fresh(self, principal: str, objects: Collection[str]) -> int:
        """How many of ``objects`` the principal has not opened within the horizon (before observing them).

        >>> t = ObjectTracker(600.0, cap=100)
        >>> t.observe("p", {"s1"}, 0.0), t.fresh("p", {"s1", "s2"}), t.fresh("q", {"s1"})
        (1, 1, 1)
        """
        held = self.seen.get(principal, {})
        return sum(1 for obj in objects if obj not in held)

    def observe(self, principal: str, objects: Collection[str], now: float) -> int:
        """Record ``objects`` opened at ``now``; return how many distinct ones within the horizon."""
        held = self.seen.setdefault(principal, {})
        for obj in objects:
            if obj in held or len(held) < self.cap:
                held[obj] = now
        cutoff = now - self.horizon
        if min(held.values(), default=now) < cutoff:
            for old in [o for o, ts in held.items() if ts < cutoff]:
                del held[old]
        return len(held)

    def evict(self, before: float) -> None:
        """Forget principals with nothing opened since ``before``."""
        for principal in [p for p, held in self.seen.items() if max(held.values(), default=0.0) < before]:
            del self.seen[principal]
