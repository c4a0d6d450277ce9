"""Operations a key has never performed, in volume (e.g. a re-encryption sweep)."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.operations import OpClass, classify
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural, top_principal

NAME = "new_operation"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag data operations never seen on a mature key once they reach ``min_events`` in a window."""
    cfg = ctx.settings.rules.new_operation
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled or not f.mature or profile is None or "operations" in profile.saturated:
        return None
    if f.operations.keys() <= profile.operations.keys():  # the common case: nothing new
        return None
    source = f.window.events[0].source
    fresh = {
        op: n
        for op, n in f.operations.items()
        if op not in profile.operations and n >= cfg.min_events and classify(source, op) is OpClass.DATA
    }
    if not fresh:
        return None
    usual = ", ".join(sorted(profile.operations, key=profile.operations.__getitem__, reverse=True)[:4])
    reasons = [
        Reason(
            "new_operation_events",
            n,
            usual,
            f"{plural(n, op + ' call')}, an operation this key has never performed (usually {usual})",
        )
        for op, n in sorted(fresh.items(), key=lambda kv: -kv[1])
    ]
    ids = evidence(f.window.events, ctx.max_evidence, lambda e: e.operation in fresh)
    return finding(
        NAME, f, Severity.MEDIUM, float(sum(fresh.values())), reasons, ids, top_principal(f.principals)
    )
