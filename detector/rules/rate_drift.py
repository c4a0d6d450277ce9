"""Low and slow: a sustained rise above baseline while callers new to the key take part."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, top_principal

NAME = "rate_drift"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """One-sided CUSUM of the window z-score, fed only while unfamiliar sources take part.

    Unfamiliar: callers new to the key, or networks new to it at places where the caller has long
    worked from (a stolen credential used next door).
    A legitimate surge by familiar sources does not accumulate; a slow exfiltration does, even
    when no single window is a spike. New networks at *new* places do not feed it: that is what a
    deployment to a new region looks like (see docs/explanation/limits.md).
    Each window adds at most ``max_step_sigma`` (spikes are the spike rule's business) and the
    sum is capped at ``threshold + max_step_sigma``. "New" lasts ``profile.recent_hours``, so
    learning a caller in its first window does not hide its rise.
    """
    cfg = ctx.settings.rules.rate_drift
    key = f.window.key_id
    if not cfg.enabled or not f.mature or f.baseline.basis == "none":
        return None
    width = f.window.end - f.window.start
    score, last = ctx.drift.get(key, (0.0, f.window.start - width))
    gap = max(round((f.window.start - last) / width) - 1, 0)
    score = max(0.0, score - cfg.slack_sigma * gap)
    n = f.values["events"]
    fresh = f.recent_source_events
    if n and fresh / n >= cfg.min_unfamiliar_share:
        score = max(0.0, score + min(f.values["rate_z"], cfg.max_step_sigma) - cfg.slack_sigma)
    else:
        score = max(0.0, score - cfg.slack_sigma)
    # Capped just above the threshold: a drift that goes on keeps alarming (one merged alert),
    # one that stops falls below the threshold within a few windows instead of a long tail.
    score = min(score, cfg.threshold + cfg.max_step_sigma)
    ctx.drift[key] = (score, f.window.start)
    if score < cfg.threshold:
        return None
    text = (
        f"calls have run above this key's usual {f.baseline.mean:.1f} per window for a sustained "
        f"period (cumulative excess {score:.1f}σ, limit {cfg.threshold:.0f}σ) while callers or "
        "networks new to this key were active"
    )
    reasons = [Reason("rate_z", round(f.values["rate_z"], 2), round(f.baseline.mean, 2), text)]
    ids = evidence(f.window.events, ctx.max_evidence)
    return finding(NAME, f, Severity.MEDIUM, score, reasons, ids, top_principal(f.principals))
