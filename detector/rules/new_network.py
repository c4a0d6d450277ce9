"""A workload identity calling from a network it never used, that no other identity uses either."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.features.identity import is_cloud_service, is_human, network_block
from detector.features.profiles import PrincipalProfile
from detector.features.window import PrincipalWindow
from detector.rules.base import RuleContext

NAME = "new_network"


def check(pw: PrincipalWindow, start: float, end: float, ctx: RuleContext) -> Finding | None:
    """Flag a workload's call from a network new to it and to the organisation, when it rarely changes.

    A workload runs from its own addresses: instance or NAT addresses, a VPC endpoint. Its
    credentials used from anywhere else (a laptop, a hosting provider, another cloud) is how
    stolen instance credentials look, even in a country the organisation works from. Judged
    only for workloads with ``min_history_hours`` of history whose networks rarely change (new
    networks in at most ``max_change_rate`` of their windows: autoscaling over public addresses
    changes them all the time). A network another identity already uses, or that several of the
    organisation's identities start using in the same window, is the organisation's own (a new
    region, a new NAT gateway): not news. People travel and work from home: they are judged by
    geography and travel instead.

    Session names sharpen it. A session the workload already ran from its own blocks, now calling
    from the new one, is its credentials copied out (high severity, whatever the country). New
    sessions from a new block in a country the workload already runs in are a new deployment: a
    new region or NAT gateway starts new instances. Identities without session names are judged
    on the network alone.
    """
    cfg = ctx.settings.rules.new_network
    if not cfg.enabled or not pw.networks or is_human(pw.principal) or is_cloud_service(pw.principal):
        return None
    prof = ctx.principal_profile(pw.principal)
    if prof is None or prof.windows < cfg.min_windows or start - prof.first_ts < cfg.min_history_hours * 3600:
        return None
    org = ctx.profiles.org.networks
    fresh = [n for n in pw.networks if (block := network_block(n)) not in prof.networks and block not in org]
    if not fresh or "networks" in _saturated(prof.networks, ctx.settings.profile.max_values):
        return None
    rate = (prof.network_changes + 1) / (prof.windows + 2)
    if rate > cfg.max_change_rate:
        return None
    fresh = [n for n in fresh if not _shared(n, pw.principal, ctx)]
    if not fresh:
        return None
    countries = sorted({pw.networks[n] for n in fresh if pw.networks[n]})
    new_country = any(c not in prof.countries for c in countries)
    moved = _moved_session(pw, prof, fresh)
    if moved is None and not new_country and _by_sessions(pw, fresh):
        return None
    severity = Severity.HIGH if new_country or moved else Severity.MEDIUM
    where = f" in {', '.join(countries)}" if countries else ""
    usual = ", ".join(sorted(prof.countries, key=prof.countries.__getitem__, reverse=True)[:3]) or "unknown"
    text = (
        f"{pw.principal} called from {fresh[0]}{where}, in an address block neither it nor any other "
        f"identity used before; its calls come from {len(prof.networks)} known blocks (usually {usual}), "
        f"new ones in {rate:.1%} of its active windows"
    )
    if moved is not None:
        session, blocks = moved
        text += (
            f"; its session {session} was calling from {', '.join(blocks)}: its credentials used elsewhere"
        )
    reasons = [Reason("new_network", fresh[0], round(rate, 4), text)]
    ids = [pw.network_event_ids[n] for n in fresh][: ctx.max_evidence]
    key = sorted(pw.keys)[0]
    return Finding(NAME, key, pw.principal, start, end, float(len(fresh)), severity, reasons, ids)


def _moved_session(
    pw: PrincipalWindow, prof: PrincipalProfile, fresh: list[str]
) -> tuple[str, list[str]] | None:
    """A session calling from a fresh network that ran from other blocks before or in this window."""
    fresh_set = set(fresh)
    for session, prefixes in pw.sessions.items():
        if fresh_set.isdisjoint(prefixes):
            continue
        here = {network_block(p) for p in prefixes if p in fresh_set}
        before = [b for b in prof.session_blocks.get(session, ()) if b not in here]
        before += [b for p in prefixes if p not in fresh_set and (b := network_block(p)) not in before]
        if before:
            return session, before
    return None


def _by_sessions(pw: PrincipalWindow, fresh: list[str]) -> bool:
    """Whether every fresh network was called from by named sessions (none moved: see _moved_session)."""
    used = {p for prefixes in pw.sessions.values() for p in prefixes}
    return all(n in used for n in fresh)


def _saturated(networks: dict[str, int], cap: int) -> set[str]:
    return {"networks"} if len(networks) >= cap else set()


def _shared(network: str, principal: str, ctx: RuleContext) -> bool:
    """Whether another identity calls from ``network``'s block in this period (the organisation's own)."""
    block = network_block(network)
    return any(block == network_block(n) for name, pw in ctx.period.items() if name != principal
               for n in pw.networks)  # fmt: skip
