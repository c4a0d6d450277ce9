"""A principal that has never used this key on data starts doing so."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.identity import principal_identity
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural

NAME = "new_principal"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag successful data calls by callers that never used a mature key on data before.

    High when the organisation has never seen the caller at all. Metadata reads and denied calls
    by new callers are left to other detectors (denials, administration); a caller that only ever
    read the key's metadata and now decrypts is flagged.
    """
    cfg = ctx.settings.rules.new_principal
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled or not f.mature or profile is None or "principals" in profile.saturated:
        return None
    known_users = profile.data_principals
    if f.data_callers.keys() <= known_users.keys():  # the common case: no new data caller
        return None
    uses = {p: n for p, n in f.data_callers.items() if p not in known_users and n >= cfg.min_events}
    if not uses:
        return None
    org = ctx.profiles.principals
    severity = Severity.HIGH if any(p not in org for p in uses) else Severity.MEDIUM
    reasons = []
    for p in sorted(uses, key=uses.__getitem__, reverse=True)[:5]:
        if p not in org:
            where = "never seen anywhere in the organisation"
        elif p in profile.principals:
            where = "which only ever read this key's metadata before"
        else:
            where = "known elsewhere, never on this key"
        reasons.append(
            Reason("new_principal_events", uses[p], 0, f"{plural(uses[p], 'data call')} by {p}, {where}")
        )
    ids = evidence(f.window.events, ctx.max_evidence, lambda e: principal_identity(e.principal) in uses)
    top = max(uses, key=uses.__getitem__)
    return finding(NAME, f, severity, float(sum(uses.values())), reasons, ids, top)
