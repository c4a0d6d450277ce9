"""A principal that has never used this key starts using it on data."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.operations import OpClass, classify
from detector.features.identity import principal_identity
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural

NAME = "new_principal"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag successful data calls by callers new to a mature key.

    High when the organisation has never seen the caller either. Reads of metadata and denied
    calls by new callers are left to other detectors (denials, administration).
    """
    cfg = ctx.settings.rules.new_principal
    if not cfg.enabled or not f.mature or not f.new_principals:
        return None
    uses: dict[str, int] = {}
    for e in f.window.events:
        if e.outcome == "success" and classify(e.source, e.operation) is OpClass.DATA:
            ident = principal_identity(e.principal)
            if ident in f.new_principals:
                uses[ident] = uses.get(ident, 0) + 1
    flagged = {p for p, n in uses.items() if n >= cfg.min_events}
    if not flagged:
        return None
    known = ctx.profiles.principals
    severity = Severity.HIGH if any(p not in known for p in flagged) else Severity.MEDIUM
    reasons = []
    for p in sorted(flagged, key=uses.__getitem__, reverse=True)[:5]:
        where = (
            "never seen anywhere in the organisation"
            if p not in known
            else "known elsewhere, never on this key"
        )
        reasons.append(
            Reason("new_principal_events", uses[p], 0, f"{plural(uses[p], 'data call')} by {p}, {where}")
        )
    ids = evidence(f.window.events, ctx.max_evidence, lambda e: principal_identity(e.principal) in flagged)
    top = max(flagged, key=uses.__getitem__)
    return finding(NAME, f, severity, float(sum(uses[p] for p in flagged)), reasons, ids, top)
