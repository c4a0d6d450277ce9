"""One principal opening far more distinct secrets, parameters or objects than it ever did."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.window import PrincipalWindow
from detector.rules.base import RuleContext, plural

NAME = "object_harvest"


def check(pw: PrincipalWindow, start: float, end: float, ctx: RuleContext) -> Finding | None:
    """Flag a principal whose distinct objects within the horizon exceed its own record.

    The objects are what the key protected, as the log names them (a Secrets Manager secret, an
    SSM parameter, an S3 object: the encryption context). A service reads its own few secrets over
    and over; a stolen credential or an insider harvesting secrets opens dozens within minutes.
    The limit is ``factor`` times the most the principal ever opened within the horizon, and at
    least ``min_objects`` (the organisation's prior for a principal without such a record).
    """
    cfg = ctx.settings.rules.object_harvest
    if not cfg.enabled or pw.recent_objects < cfg.min_objects:
        return None
    prof = ctx.principal_profile(pw.principal)
    record = prof.max_objects if prof is not None else 0
    limit = max(cfg.min_objects, cfg.factor * record)
    if pw.recent_objects < limit:
        return None
    keys = len(pw.keys)
    severity = Severity.HIGH if pw.recent_objects >= 2 * limit else Severity.MEDIUM
    before = (f"at most {plural(record, 'object')} within {cfg.horizon_minutes:g} minutes before"
              if prof is not None else "a principal never seen before")  # fmt: skip
    text = (
        f"{pw.principal} opened {plural(pw.recent_objects, 'distinct secret or object')} within "
        f"{cfg.horizon_minutes:g} minutes through {plural(keys, 'key')} ({before}; limit {limit:g})"
    )
    reasons = [Reason("recent_objects", pw.recent_objects, record, text)]
    key = sorted(pw.keys)[0]
    return Finding(NAME, key, pw.principal, start, end, float(pw.recent_objects), severity, reasons,
                   list(pw.resource_event_ids))  # fmt: skip
