"""Key used from a country it has never been used from."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.identity import principal_identity
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural

NAME = "new_geography"


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag countries never seen on a mature key.

    A country the organisation already works from, reached by callers that already use this key,
    is an expansion (a service deployed to another region, an employee at another office):
    learned, not alerted. So is a country every caller there routinely works from across the
    organisation's keys (an administrator rotating a key from the office it always works from):
    the caller is not new there, only the key is. Unknown callers there, or any country new to the
    organisation, alert.
    """
    if not f.new_countries:  # the common case, decided before any lookup
        return None
    cfg = ctx.settings.rules.new_geography
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled or not f.mature or profile is None:
        return None
    org = ctx.profiles.org.countries
    reasons: list[Reason] = []
    severity = Severity.LOW
    flagged: set[str] = set()
    for country in sorted(f.new_countries):
        n = f.countries[country]
        if n < cfg.min_events:
            continue
        callers = {principal_identity(e.principal) for e in f.window.events if e.country == country}
        expansion = country in org and callers <= profile.principals.keys()
        if expansion and not cfg.alert_known_org_country_by_known_principal:
            continue
        if _routine(callers, country, ctx, cfg.routine_min_events):
            continue
        usual = ", ".join(sorted(profile.countries, key=profile.countries.__getitem__, reverse=True)[:5])
        if country in org:
            who = "by callers that already use it" if expansion else "by callers new to this key"
            text = (
                f"{plural(n, 'call')} from {country}, where this key was never used (usually {usual}), {who}"
            )
            level = Severity.LOW if expansion else Severity.MEDIUM
        else:
            text = (
                f"{plural(n, 'call')} from {country}, a country never seen for this key "
                f"(usually {usual}) nor anywhere in the organisation"
            )
            level = Severity.HIGH
        severity = max(severity, level)
        reasons.append(Reason("new_country_events", n, usual, text))
        flagged.add(country)
    if not reasons:
        return None
    ids = evidence(f.window.events, ctx.max_evidence, lambda e: e.country in flagged)
    principal = principal_identity(next(e.principal for e in f.window.events if e.country in flagged))
    return finding(NAME, f, severity, float(len(reasons)), reasons, ids, principal)


def _routine(callers: set[str], country: str, ctx: RuleContext, min_events: int) -> bool:
    """Whether every caller has made at least ``min_events`` calls from ``country`` on any key."""
    for ident in callers:
        prof = ctx.principal_profile(ident)
        if prof is None or prof.countries.get(country, 0) < min_events:
            return False
    return True
