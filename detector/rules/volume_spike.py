"""Far more calls in a window than the key's own baseline for that hour."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.events import format_ts
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural, top_principal

NAME = "volume_spike"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag windows at ``ratio``× the baseline (``unfamiliar_ratio``× when new sources drive it).

    The count must also beat ``z`` standard deviations and, unless new sources drive it, the
    busiest window this key ever had at this hour of day by ``busiest_factor``.
    """
    cfg = ctx.settings.rules.volume_spike
    base = f.baseline
    if not cfg.enabled or not f.mature or base.basis == "none":
        return None
    n = f.values["events"]
    unfamiliar = max(f.values["new_principal_events"], f.values["new_prefix_events"]) >= 0.2 * n
    limit = cfg.unfamiliar_ratio if unfamiliar else cfg.ratio
    ratio = f.values["rate_ratio"]
    if n < cfg.min_events or ratio < limit or n - base.mean < cfg.z * (base.std + 1.0):
        return None
    profile = ctx.key_profile(f.window.key_id)
    busiest = profile.hod_max[int(f.window.start // 3600) % 24] if profile else 0
    if base.hours >= 2 and n <= cfg.busiest_factor * busiest and not unfamiliar:
        return None
    severity = Severity.HIGH if ratio >= cfg.high_ratio or unfamiliar else Severity.MEDIUM
    when = format_ts(f.window.start)[11:16]
    text = (
        f"{plural(n, 'call')} in {f.window.end - f.window.start:.0f} s, {ratio:.1f}× the usual "
        f"{base.mean:.1f} for {when} UTC ({base.basis} baseline over {base.hours} h; busiest window "
        f"ever at this hour: {busiest})"
    )
    reasons = [Reason("rate_ratio", round(ratio, 2), round(base.mean, 2), text)]
    if unfamiliar:
        reasons.append(
            Reason(
                "new_prefix_events",
                f.values["new_prefix_events"],
                0,
                "much of it from callers or networks new to this key",
            )
        )
    ids = evidence(f.window.events, ctx.max_evidence)
    return finding(NAME, f, severity, ratio, reasons, ids, top_principal(f.principals))
