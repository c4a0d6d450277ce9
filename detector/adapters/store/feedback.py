"""Analyst feedback in the store: verdicts, suppressions (and marking suppressed alerts), model versions."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from detector.adapters.store import tables as t
from detector.adapters.store.rows import alert_from_row, to_dt, to_ts
from detector.adapters.store.store import Store
from detector.adapters.store.writes import chunks, update_many
from detector.domain.alerts import Alert
from detector.domain.events import format_ts
from detector.domain.suppressions import (
    DAY,
    PREVIEW_DAYS,
    Match,
    Suppression,
    Verdict,
    VerdictRecord,
    check_suppression,
    first_active,
)

PAGE = 1000


@dataclass(slots=True, frozen=True)
class ModelVersion:
    """A registered model directory and its card; exactly one version is active once any exists."""

    version: str
    path: str
    card: dict[str, Any]
    registered_at: float
    active: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"version": self.version, "path": self.path, "card": self.card,
                "registered_at": format_ts(self.registered_at), "active": self.active}  # fmt: skip


def version_for(card: Mapping[str, Any]) -> str:
    """A model's version id: the first 16 hex digits of the sha256 over its file digests."""
    files = json.dumps(card.get("files", {}), sort_keys=True).encode()
    return hashlib.sha256(files).hexdigest()[:16]


class FeedbackRepository:
    """Verdicts, suppressions and model versions in a migrated store; ``clock`` is epoch seconds."""

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time) -> None:
        """Work on ``store``."""
        self.store = store
        self.clock = clock

    # -- verdicts ------------------------------------------------------------------------------

    def set_verdict(self, alert_id: str, verdict: Verdict, comment: str | None, author: str) -> VerdictRecord:
        """Record (or replace) the verdict on a stored alert."""
        record = VerdictRecord(alert_id, verdict, comment, author, self.clock())
        row = {"verdict": verdict.value, "comment": comment, "author": author,
               "decided_at": to_dt(record.decided_at)}  # fmt: skip
        where = t.verdicts.c.alert_id == alert_id
        with self.store.writing() as conn:
            if conn.execute(t.verdicts.update().where(where).values(row)).rowcount == 0:
                conn.execute(t.verdicts.insert().values(row | {"alert_id": alert_id}))
        return record

    def list_verdicts(
        self, verdict: Verdict | None = None, limit: int = 100, offset: int = 0
    ) -> list[VerdictRecord]:
        """Verdicts, newest first."""
        c = t.verdicts.c
        query = sa.select(t.verdicts).order_by(c.decided_at.desc(), c.alert_id).limit(limit).offset(offset)
        if verdict is not None:
            query = query.where(c.verdict == verdict.value)
        with self.store.reading() as conn:
            return [_verdict(row) for row in conn.execute(query).mappings()]

    def verdict_alerts(self, verdict: Verdict) -> list[Alert]:
        """Every stored alert that has ``verdict``, by first window start."""
        query = (
            sa.select(t.alerts)
            .join(t.verdicts, t.verdicts.c.alert_id == t.alerts.c.alert_id)
            .where(t.verdicts.c.verdict == verdict.value)
            .order_by(t.alerts.c.first_window_start, t.alerts.c.alert_id)
        )
        with self.store.reading() as conn:
            return [alert_from_row(row) for row in conn.execute(query).mappings()]

    # -- suppressions --------------------------------------------------------------------------

    def add_suppression(self, match: Match, reason: str, expires_at: float, author: str) -> Suppression:
        """Create a suppression; FeedbackError when it lacks a match or reason, or outlasts 90 days."""
        now = self.clock()
        check_suppression(match, reason, expires_at, now)
        made = Suppression(uuid.uuid4().hex, match, reason.strip(), author, now, expires_at)
        with self.store.writing() as conn:
            conn.execute(t.suppressions.insert().values(_suppression_row(made)))
        return made

    def get_suppression(self, suppression_id: str) -> Suppression | None:
        """One suppression, or None."""
        query = sa.select(t.suppressions).where(t.suppressions.c.suppression_id == suppression_id)
        with self.store.reading() as conn:
            row = conn.execute(query).mappings().first()
        return _suppression(row) if row else None

    def list_suppressions(self, limit: int = 500, offset: int = 0) -> list[Suppression]:
        """Suppressions, newest first (active or not)."""
        c = t.suppressions.c
        query = sa.select(t.suppressions).order_by(c.created_at.desc(), c.suppression_id)
        with self.store.reading() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).mappings()
            return [_suppression(row) for row in rows]

    def active_at(self, now: float) -> list[Suppression]:
        """The suppressions that apply at ``now``, oldest first."""
        c = t.suppressions.c
        at = to_dt(now)
        query = (
            sa.select(t.suppressions)
            .where(c.created_at <= at, c.expires_at > at, sa.or_(c.revoked_at.is_(None), c.revoked_at > at))
            .order_by(c.created_at, c.suppression_id)
        )
        with self.store.reading() as conn:
            return [_suppression(row) for row in conn.execute(query).mappings()]

    def matches(self, alert: Alert, now: float | None = None) -> Suppression | None:
        """The active suppression (at ``now``, default the clock) that silences ``alert``, or None."""
        at = self.clock() if now is None else now
        return first_active(self.active_at(at), alert, at)

    def revoke(self, suppression_id: str) -> Suppression | None:
        """Revoke now (a second revocation keeps the first time); None when there is no such suppression."""
        c = t.suppressions.c
        where = sa.and_(c.suppression_id == suppression_id, c.revoked_at.is_(None))
        with self.store.writing() as conn:
            conn.execute(t.suppressions.update().where(where).values(revoked_at=to_dt(self.clock())))
        return self.get_suppression(suppression_id)

    def preview(self, match: Match, now: float | None = None) -> list[Alert]:
        """Stored alerts of the last seven days (by window end) that ``match`` would have silenced."""
        at = self.clock() if now is None else now
        found: list[Alert] = []
        for offset in range(0, 100 * PAGE, PAGE):
            page = self.store.list_alerts(key_id=match.key_id, principal=match.principal,
                                          detector=match.detector, since=at - PREVIEW_DAYS * DAY,
                                          limit=PAGE, offset=offset)  # fmt: skip
            found += [a for a in page if match.matches(a)]
            if len(page) < PAGE:
                break
        return found

    def apply(self, alerts: Sequence[Alert]) -> dict[str, str]:
        """Mark each stored alert with the suppression active now that matches it (or none).

        Returns alert id -> suppression id for the suppressed ones. Idempotent, so a replayed
        batch marks the same way; a later delivery after expiry clears the mark.
        """
        if not alerts:
            return {}
        active = self.active_at(now := self.clock())
        decided = {a.alert_id: (s.suppression_id if (s := first_active(active, a, now)) else None)
                   for a in alerts}  # fmt: skip
        rows = [{"alert_id": i, "suppressed_by": s} for i, s in decided.items()]
        with self.store.writing() as conn:
            update_many(conn, t.alerts, "alert_id", rows)
        return {i: s for i, s in decided.items() if s is not None}

    def all_suppressed(self, alert_ids: Iterable[str]) -> bool:
        """Whether there are alerts and every one is marked suppressed or matches an active suppression."""
        ids = list(alert_ids)
        if not ids:
            return False
        alerts: list[tuple[Alert, str | None]] = []
        with self.store.reading() as conn:
            for part in chunks(ids):
                query = sa.select(t.alerts).where(t.alerts.c.alert_id.in_(part))
                alerts += [(alert_from_row(r), r["suppressed_by"]) for r in conn.execute(query).mappings()]
        unmarked = [a for a, by in alerts if by is None]
        if not unmarked:
            return len(alerts) > 0
        active, now = self.active_at(self.clock()), self.clock()
        return all(first_active(active, a, now) is not None for a in unmarked)

    def suppressed_by(self, alert_id: str) -> str | None:
        """The suppression that silenced a stored alert, or None."""
        query = sa.select(t.alerts.c.suppressed_by).where(t.alerts.c.alert_id == alert_id)
        with self.store.reading() as conn:
            value: str | None = conn.execute(query).scalar_one_or_none()
        return value

    # -- model versions ------------------------------------------------------------------------

    def register_model(self, path: str, card: Mapping[str, Any], *, activate: bool = False) -> ModelVersion:
        """Register a verified model directory (again: nothing changes); the first one becomes active."""
        version = version_for(card)
        with self.store.writing() as conn:
            exists = conn.execute(sa.select(t.model_versions.c.version).where(
                t.model_versions.c.version == version)).first()  # fmt: skip
            if exists is None:
                row = {"version": version, "path": path, "card": dict(card),
                       "registered_at": to_dt(self.clock()), "active": False}  # fmt: skip
                conn.execute(t.model_versions.insert().values(row))
            none_active = conn.execute(
                sa.select(sa.func.count()).select_from(t.model_versions).where(t.model_versions.c.active)
            ).scalar_one()
            if activate or none_active == 0:
                _activate(conn, version)
        found = self.get_model(version)
        assert found is not None  # noqa: S101 - written just above
        return found

    def activate_model(self, version: str) -> ModelVersion | None:
        """Make ``version`` the only active one; None when it is not registered."""
        with self.store.writing() as conn:
            where = t.model_versions.c.version == version
            if conn.execute(sa.select(t.model_versions.c.version).where(where)).first() is None:
                return None
            _activate(conn, version)
        return self.get_model(version)

    def get_model(self, version: str) -> ModelVersion | None:
        """One registered version, or None."""
        return next(iter(self._models(t.model_versions.c.version == version)), None)

    def active_model(self) -> ModelVersion | None:
        """The active version, or None before any is registered."""
        return next(iter(self._models(t.model_versions.c.active)), None)

    def list_models(self) -> list[ModelVersion]:
        """Every registered version, newest first."""
        return self._models(sa.true())

    def _models(self, where: sa.ColumnElement[bool]) -> list[ModelVersion]:
        c = t.model_versions.c
        query = sa.select(t.model_versions).where(where).order_by(c.registered_at.desc(), c.version)
        with self.store.reading() as conn:
            return [_model(row) for row in conn.execute(query).mappings()]


def _activate(conn: sa.Connection, version: str) -> None:
    c = t.model_versions.c
    conn.execute(t.model_versions.update().where(c.active, c.version != version).values(active=False))
    conn.execute(t.model_versions.update().where(c.version == version).values(active=True))


def _verdict(row: Mapping[Any, Any]) -> VerdictRecord:
    return VerdictRecord(row["alert_id"], Verdict(row["verdict"]), row["comment"], row["author"],
                         to_ts(row["decided_at"]))  # fmt: skip


def _suppression_row(s: Suppression) -> dict[str, Any]:
    revoked = to_dt(s.revoked_at) if s.revoked_at is not None else None
    times = {"created_at": to_dt(s.created_at), "expires_at": to_dt(s.expires_at), "revoked_at": revoked}
    return {"suppression_id": s.suppression_id, **s.match.to_dict(), "reason": s.reason, "author": s.author,
            **times}  # fmt: skip


def _suppression(row: Mapping[Any, Any]) -> Suppression:
    match = Match(row["key_id"], row["principal"], row["detector"], row["country"])
    revoked = to_ts(row["revoked_at"]) if row["revoked_at"] is not None else None
    return Suppression(row["suppression_id"], match, row["reason"], row["author"],
                       to_ts(row["created_at"]), to_ts(row["expires_at"]), revoked)  # fmt: skip


def _model(row: Mapping[Any, Any]) -> ModelVersion:
    return ModelVersion(row["version"], row["path"], dict(row["card"]), to_ts(row["registered_at"]),
                        bool(row["active"]))  # fmt: skip
