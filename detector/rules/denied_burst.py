"""Bursts of denied calls: on one key, or by one principal across many keys (probing)."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.identity import principal_identity
from detector.features.window import PrincipalWindow, WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural, top_principal

NAME = "denied_burst"
PROBING = "denied_probing"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag a key whose denied calls exceed the count, share and history limits."""
    cfg = ctx.settings.rules.denied_burst
    if not cfg.enabled or f.denied < cfg.min_denied:  # the common case, decided before any lookup
        return None
    profile = ctx.key_profile(f.window.key_id)
    n = f.values["events"]
    if f.denied / n < cfg.min_share:
        return None
    usual = profile.max_denied_window if profile else 0
    if f.denied <= cfg.history_factor * usual:
        return None
    text = (
        f"{plural(f.denied, 'denied call')} out of {int(n)} in one window (at most {usual} per window before)"
    )
    reasons = [Reason("denied_share", round(f.denied / n, 3), usual, text)]
    ids = evidence(f.window.events, ctx.max_evidence, lambda e: e.outcome == "denied")
    denied_callers: dict[str, int] = {}
    for e in f.window.events:
        if e.outcome == "denied":
            ident = principal_identity(e.principal)
            denied_callers[ident] = denied_callers.get(ident, 0) + 1
    return finding(NAME, f, Severity.MEDIUM, float(f.denied), reasons, ids, top_principal(denied_callers))


def check_principal(pw: PrincipalWindow, start: float, end: float, ctx: RuleContext) -> Finding | None:
    """Flag one principal denied on many keys, or far more often than it ever was.

    Many keys: in one window, or over the last ``probing_minutes`` (a slow probe, a key now and
    then) beyond ``history_factor`` times the most keys it was ever denied on over that span, while
    the probe goes on (this window adds a key): a denial after it ended is not the probe.
    """
    cfg = ctx.settings.rules.denied_burst
    if not cfg.enabled or not pw.denied:
        return None
    prof = ctx.principal_profile(pw.principal)
    usual = prof.max_denied_window if prof else 0
    usual_keys = prof.max_denied_keys if prof else 0
    many_keys = len(pw.denied_keys) >= cfg.principal_min_keys
    slow = (
        pw.new_denied_keys > 0
        and pw.recent_denied_keys >= cfg.probing_min_keys
        and pw.recent_denied_keys > cfg.history_factor * usual_keys
    )
    many_calls = pw.denied >= cfg.principal_min_denied and pw.denied > cfg.history_factor * usual
    if not (many_keys or many_calls or slow):
        return None
    text = (
        f"{pw.principal} was denied {plural(pw.denied, 'time')} on {plural(len(pw.denied_keys), 'key')} "
        f"in one window (at most {plural(usual, 'denial')} per window before)"
    )
    if slow:
        text += (f"; on {plural(pw.recent_denied_keys, 'key')} within {cfg.probing_minutes:g} min "
                 f"(at most {usual_keys} before)")  # fmt: skip
    reasons = [Reason("principal_denied_excess", pw.denied, usual, text)]
    key = max(pw.denied_keys, key=pw.denied_keys.__getitem__)
    return Finding(PROBING, key, pw.principal, start, end, float(pw.denied), Severity.HIGH, reasons,
                   list(pw.denied_event_ids))  # fmt: skip
