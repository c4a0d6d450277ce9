"""Administrative or destructive operations by a principal that does not do them on this key."""

from __future__ import annotations

from detector.domain.alerts import Finding, Reason, Severity
from detector.domain.events import Event
from detector.domain.operations import OpClass
from detector.features.profiles import KeyProfile
from detector.features.window import WindowFeatures
from detector.rules.base import RuleContext, finding, plural

NAME = "unusual_admin"
# Housekeeping that changes neither who may use the key nor whether it works.
LOW_RISK = frozenset({"TagResource", "UntagResource", "UpdateKeyDescription", "EnableKeyRotation",
                      "RotateKeyOnDemand", "CreateAlias", "UpdateAlias"})  # fmt: skip


def check(f: WindowFeatures, ctx: RuleContext) -> Finding | None:
    """Flag privileged calls, ranked by how foreign the caller is to key administration.

    Destructive: high when the caller never administered any key, medium when it administers
    other keys, low when it administers this key but never destroyed anything on it. Administrative:
    medium (high if the caller is also new to this key) unless the caller administers other keys;
    housekeeping (tags, descriptions, rotation) only when the caller is new to the organisation.
    A key without a profile (new, or never seen in the logs) is judged by the caller alone: a
    destructive call alerts unless the caller routinely destroys keys across the organisation
    from the country it calls from now.
    """
    if not f.privileged:  # the common case, decided before any lookup
        return None
    cfg = ctx.settings.rules.unusual_admin
    profile = ctx.key_profile(f.window.key_id)
    if not cfg.enabled:
        return None
    reasons: list[Reason] = []
    ids: list[str] = []
    severity = Severity.LOW
    who = None
    for ev, cls, ident in f.privileged:
        if profile is None:
            level, text = _judge_cold(ev, cls, ident, ctx, cfg.routine_destructive_events)
        else:
            level, text = _judge(ev.operation, cls, ident, profile, ctx, cfg.alert_admin_by_org_admin)
        if level is None:
            continue
        severity = max(severity, level)
        who = who or ident
        if len(reasons) < 5:
            reasons.append(Reason(f"unusual_{cls.value}_events", ev.operation, "", text))
        if len(ids) < ctx.max_evidence:
            ids.append(ev.event_id)
    if not reasons:
        return None
    return finding(NAME, f, severity, float(len(ids)), reasons, ids, who)


def _judge_cold(
    ev: Event, cls: OpClass, ident: str, ctx: RuleContext, routine_events: int
) -> tuple[Severity | None, str]:
    """A privileged call on a key nothing is known about, judged by what its caller does elsewhere."""
    if cls is not OpClass.DESTRUCTIVE:
        return None, ""  # creating, tagging or granting on a fresh key is how keys begin
    prof = ctx.principal_profile(ident)
    op = ev.operation
    if prof is None:
        return Severity.HIGH, f"{op} on a key with no history, by {ident}, a caller never seen before"
    routine = prof.destructive_events >= routine_events
    if routine and (not ev.country or prof.countries.get(ev.country, 0) > 0):
        return None, ""
    if routine:
        return Severity.HIGH, (f"{op} on a key with no history, by {ident}, who destroys keys routinely "
                               f"but never from {ev.country}")  # fmt: skip
    level = Severity.MEDIUM if prof.admin_keys else Severity.HIGH
    done = f"has run {plural(prof.destructive_events, 'destructive call')}" if prof.admin_keys else (
        "has never administered any key")  # fmt: skip
    return level, f"{op} on a key with no history, by {ident}, who {done}"


def _judge(
    op: str,
    cls: OpClass,
    ident: str,
    key: KeyProfile,
    ctx: RuleContext,
    alert_org_admins: bool,
) -> tuple[Severity | None, str]:
    admins, destroyers, callers = key.admin_principals, key.destructive_principals, key.principals
    prof = ctx.principal_profile(ident)
    org_admin = prof is not None and bool(prof.admin_keys)
    if cls is OpClass.DESTRUCTIVE:
        if ident in destroyers:
            return None, ""
        if ident in admins:
            return (
                Severity.LOW,
                f"{op} by {ident}, who administers this key but has never run a destructive operation on it",
            )
        if org_admin:
            return Severity.MEDIUM, f"{op} by {ident}, who administers other keys but never this one"
        return Severity.HIGH, f"{op} by {ident}, who has never administered any key"
    if ident in admins or (org_admin and not alert_org_admins):
        return None, ""
    if op in LOW_RISK:
        if prof is not None:
            return None, ""
        return Severity.LOW, f"{op} by {ident}, a caller never seen anywhere in the organisation"
    if org_admin:
        return Severity.LOW, f"{op} by {ident}, who administers other keys but never this one"
    level = Severity.MEDIUM if ident in callers else Severity.HIGH
    new = "" if ident in callers else " and has never used it before"
    return level, f"{op} by {ident}, who has never administered this or any other key{new}"
