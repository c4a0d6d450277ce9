"""Use of a key at an hour when the key, or the caller, is normally idle."""

from __future__ import annotations

from scipy.stats import poisson

from detector.config import OffHoursSettings
from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.operations import OpClass, classify
from detector.features.identity import ip_prefix, is_human, principal_identity
from detector.features.profiles import usual_share
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, evidence, finding, plural, top_principal

NAME = "off_hours"
_READ = OpClass.READ  # enum attribute lookups are slow


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag non-read calls in an hour that is idle for the key or for the caller.

    Key: the hour's usual share of the busiest hour is tiny and the Poisson tail of the count
    against the hour's baseline negligible. Caller: a principal with enough history across keys,
    in an hour (with its two neighbours) quieter than ``max_caller_share`` of its busiest, whose
    calls so far this hour have a negligible Poisson tail against its own rate for that hour
    (a person who rarely works at 03:00 now working steadily), or a person using this key at an
    hour (with its neighbours) they never used it in before. Workloads follow demand, not a
    clock, so only people are judged per caller; a workload at an idle hour trips the key check.
    """
    cfg = ctx.settings.rules.off_hours
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled or not f.mature or profile is None or profile.span_hours() < cfg.min_history_days * 24:
        return None
    hour = int(f.window.start // 3600) % 24
    reasons, who = _callers(f, ctx, cfg, hour) if _has_people(f.principals) else ([], set())
    key_reason = _key_idle(f, cfg, hour)
    if key_reason is not None:
        reasons.insert(0, key_reason)
    if not reasons:
        return None
    keep = None if key_reason is not None else (lambda e: principal_identity(e.principal) in who)
    ids = evidence(f.window.events, ctx.max_evidence, keep)
    principal = next(iter(sorted(who))) if who else top_principal(f.principals)
    return finding(NAME, f, Severity.MEDIUM, float(len(reasons)), reasons, ids, principal)


def _has_people(principals: dict[str, int]) -> bool:
    """Whether any caller is a person (most windows carry workloads only)."""
    return any(map(is_human, principals))


def _key_idle(f: WindowFeatures, cfg: OffHoursSettings, hour: int) -> Reason | None:
    if f.hour_share > cfg.max_usual_share:
        return None
    active = f.values["events"] - f.classes[_READ]
    if active < cfg.min_events:
        return None
    if float(poisson.sf(active - 1, max(f.baseline.mean, 1e-3))) > cfg.max_p_value:
        return None
    text = (
        f"{plural(active, 'call')} at {hour:02d}:00 UTC, an hour when this key normally sees "
        f"{f.hour_share:.1%} of its busiest hour's traffic"
    )
    return Reason("hour_share", round(f.hour_share, 4), cfg.max_usual_share, text)


def _callers(
    f: WindowFeatures, ctx: RuleContext, cfg: OffHoursSettings, hour: int
) -> tuple[list[Reason], set[str]]:
    """People whose calls so far this hour are out of character for them, or for them on this key."""
    active: dict[str, int] = {}
    new_network: set[str] = set()
    bits, new_prefixes = ctx.settings.profile, f.new_prefixes
    for e in f.window.events:
        if classify(e.source, e.operation) is not _READ:
            ident = principal_identity(e.principal)
            active[ident] = active.get(ident, 0) + 1
            if (
                new_prefixes
                and e.source_ip
                and ip_prefix(e.source_ip, bits.ipv4_prefix, bits.ipv6_prefix) in new_prefixes
            ):
                new_network.add(ident)
    hour_index = int(f.window.start // 3600)
    found: dict[str, Reason] = {}
    for ident, n in active.items():
        if not is_human(ident):
            continue
        so_far, _ = _so_far(ctx, ident, hour_index, n)
        on_key, fresh = _so_far(ctx, f"{f.window.key_id}\x1f{ident}", hour_index, n, ident in new_network)
        reason = _new_hour_on_key(f, ctx, cfg, ident, hour, on_key) or _quiet_hour(
            ctx, cfg, ident, hour, so_far, n, fresh
        )
        if reason is not None:
            found[ident] = reason
    return list(found.values()), set(found)


def _new_hour_on_key(
    f: WindowFeatures, ctx: RuleContext, cfg: OffHoursSettings, ident: str, hour: int, on_key: int
) -> Reason | None:
    """A person with a track record on this key, using it at an hour (±1) they never did."""
    key = ctx.key_profile(f.window.key_id)
    hours = key.people_hours.get(ident) if key else None
    if not hours or sum(hours) < cfg.person_min_key_events or on_key < cfg.principal_min_events:
        return None
    if hours[hour - 1] + hours[hour] + hours[(hour + 1) % 24]:
        return None
    text = (
        f"{plural(on_key, 'call')} by {ident} since {hour:02d}:00 UTC; in {sum(hours)} calls on this key "
        f"it never used it between {(hour - 1) % 24:02d}:00 and {(hour + 2) % 24:02d}:00"
    )
    return Reason("hour_share", 0.0, 0.0, text)


def _quiet_hour(
    ctx: RuleContext, cfg: OffHoursSettings, ident: str, hour: int, so_far: int, n: int, new_network: bool
) -> Reason | None:
    """A person at an hour they are quiet in, from a network new to the key or far busier than
    their own history for that hour allows (Poisson tail)."""
    prof = ctx.principal_profile(ident)
    if prof is None or so_far < cfg.principal_min_events or prof.events < cfg.principal_min_history_events:
        return None
    days = (prof.last_ts - prof.first_ts) / 86400
    c = list(prof.hod_counts)
    c[hour] = max(c[hour] - (so_far - n), 0.0)  # earlier windows of this hour are learned already
    share = usual_share(c, hour)
    if days < cfg.min_history_days or share > cfg.max_caller_share:
        return None
    per_hour = (c[hour - 1] + c[hour] + c[(hour + 1) % 24]) / 3 / days
    if not new_network and float(poisson.sf(so_far - 1, max(per_hour, 0.01))) > cfg.caller_max_p_value:
        return None
    where = ", from a network never seen on this key" if new_network else ""
    text = (
        f"{plural(so_far, 'call')} by {ident} since {hour:02d}:00 UTC{where}; around this hour it makes "
        f"{per_hour:.2f} calls an hour ({share:.0%} of its busiest hours)"
    )
    return Reason("hour_share", round(share, 4), round(per_hour, 3), text)


def _so_far(ctx: RuleContext, slot: str, hour_index: int, n: int, fresh: bool = False) -> tuple[int, bool]:
    """Calls in the current UTC hour for ``slot`` (a caller, or key and caller), and whether any
    came from a network new to the key (it is learned after its first window, the hour remembers)."""
    seen_hour, count, was_fresh = ctx.hourly.get(slot, (hour_index, 0, False))
    same = seen_hour == hour_index
    count = n + (count if same else 0)
    fresh = fresh or (was_fresh and same)
    ctx.hourly[slot] = (hour_index, count, fresh)
    return count, fresh
