"""One principal in two places farther apart than anyone can travel in the time between."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, finding

NAME = "impossible_travel"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag the window's fastest implied hop when it beats ``max_kmh`` over at least ``min_km``.

    The hop is computed at ingestion between consecutive located events of one principal
    (across keys); see :mod:`detector.features.travel` for which hops count.
    """
    hop = f.window.travel
    if hop is None:
        return None
    cfg = ctx.settings.rules.impossible_travel
    if not cfg.enabled or hop.kmh < cfg.max_kmh or hop.km < cfg.min_km:
        return None
    later = f"{hop.minutes * 60:.0f} seconds" if hop.minutes < 1 else f"{hop.minutes:.1f} minutes"
    text = (
        f"{hop.principal} was in {hop.from_country or 'an unknown country'} and then "
        f"{hop.to_country or 'an unknown country'} {hop.km:,.0f} km away {later} later "
        f"(implies {hop.kmh:,.0f} km/h, limit {cfg.max_kmh:,.0f})"
    )
    reasons = [Reason("max_travel_kmh", round(hop.kmh, 1), cfg.max_kmh, text)]
    return finding(NAME, f, Severity.HIGH, hop.kmh, reasons, list(hop.event_ids), hop.principal)
