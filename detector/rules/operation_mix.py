"""A caller's operations changing character on a key: a usually minor data operation now most of its calls.

A service that encrypts and generates data keys all day and then decrypts at its usual volume
is reading back what it wrote; a role that verifies and starts signing is issuing. Volume,
caller and network may all be as usual. Each caller learns, per key and over its busy clock
hours (``busy_calls`` data calls or more), the largest share each data operation ever took (see
:mod:`detector.features.mix`). The current clock hour, alone or with the one before, alarms when
an operation's share exceeds that by ``min_shift`` (in this window too: what is left of an
earlier change does not alarm again) and a binomial test at that largest share gives the count
``max_p_value`` or less. The caller's own record is the yardstick, so callers whose mix swings
between hours need a larger change.
"""

from __future__ import annotations

from scipy.special import betainc

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.identity import principal_identity
from detector.features.mix import caller_data_ops, recent_spans
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural

NAME = "operation_mix"
_FLOOR = 0.01  # least share assumed for an operation never seen in one of the caller's busy hours


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag the caller and data operation whose share of this clock hour is most improbable."""
    cfg = ctx.settings.rules.operation_mix
    win = f.window
    profile = ctx.key_profile(win.key_id)
    if not cfg.enabled or not f.mature or profile is None or not f.values["data_events"]:
        return None
    hour = int(win.start // 3600)
    best: tuple[float, str, str, int, int, float, int] | None = None
    for ident, ops in caller_data_ops(f).items():
        record = profile.caller_mix.get(ident)
        if record is None or record[3] < cfg.min_busy_hours:
            continue
        in_window = sum(ops.values())
        for now, since in recent_spans(record, hour):  # this hour, and with the one before
            for op, c in ops.items():
                now[op] = now.get(op, 0) + c
            total = sum(now.values())
            if total < cfg.busy_calls:
                continue
            for op, c in now.items():
                if op not in profile.operations:
                    continue  # never performed on this key: new_operation's business
                usual = max(record[2].get(op, 0.0), _FLOOR)
                if c / total < usual + cfg.min_shift or ops.get(op, 0) / in_window < usual + cfg.min_shift:
                    continue  # not shifted, or not in this window: the rest of an earlier change
                tail = binomial_tail(c, total, usual)
                if tail <= cfg.max_p_value and (best is None or tail < best[0]):
                    best = (tail, ident, op, c, total, usual, since)
    if best is None:
        return None
    tail, ident, op, c, total, usual, since = best
    hours = profile.caller_mix[ident][3]
    text = (
        f"{op} made {c / total:.0%} of the {plural(total, 'data call')} {ident} made on this key since "
        f"{since % 24:02d}:00 UTC; in its {plural(hours, 'busy hour')} on this key its largest share was "
        f"{usual:.0%} (a count this high has a {tail:.0e} chance at that share)"
    )
    reasons = [Reason("operation_share", round(c / total, 3), round(usual, 3), text)]
    ids = evidence(win.events, ctx.max_evidence,
                   lambda e: e.operation == op and principal_identity(e.principal) == ident)  # fmt: skip
    return finding(NAME, f, Severity.MEDIUM, round(c / total - usual, 3), reasons, ids, ident)


def binomial_tail(count: int, total: int, share: float) -> float:
    """Chance of at least ``count`` of ``total`` calls when each is this operation with chance ``share``.

    >>> f"{binomial_tail(85, 100, 0.3):.0e}", round(binomial_tail(30, 100, 0.3), 2)
    ('5e-30', 0.54)
    """
    if count <= 0:
        return 1.0
    return float(betainc(count, total - count + 1, share))
