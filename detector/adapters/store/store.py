"""The alert store on SQLite or PostgreSQL: alerts, incidents, dead letters and consumer checkpoints."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from detector.adapters.store import tables as t
from detector.adapters.store.engine import (
    WRITE_OPTION,
    StoreError,
    advisory_lock,
    create_store_engine,
    parse_url,
    safe,
    translated,
)
from detector.adapters.store.rows import (
    Checkpoint,
    DeadLetter,
    alert_from_row,
    checkpoint_from_row,
    dead_letter_from_row,
    entry_from_row,
    incident_from_row,
    timeline_row,
    to_dt,
)
from detector.adapters.store.writes import (
    attach_new,
    insert_dead_letters,
    linked_alert_ids,
    refresh_changed,
    upsert_alerts,
    upsert_checkpoints,
)
from detector.config import Settings
from detector.domain.alerts import Alert, Severity
from detector.domain.incidents import (
    Incident,
    IncidentStatus,
    TimelineEntry,
    UnknownIncidentError,
    assign,
    change_status,
    note_entry,
)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = "keywatch.store.migrate"
GROUPING_LOCK = "keywatch.store.incidents"  # serializes incident grouping and status changes
DEFAULT_SPAN_SECONDS = 3600.0


class Store:
    """Alerts, incidents, dead letters and checkpoints in one SQL database.

    ``url`` is ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST:PORT/DB``; alerts within
    ``span_seconds`` of an incident sharing their key or principal join it. Call :meth:`migrate`
    once before use. Database failures raise :class:`~detector.adapters.store.StoreError`.
    """

    def __init__(
        self,
        url: str,
        *,
        span_seconds: float = DEFAULT_SPAN_SECONDS,
        clock: Callable[[], float] = time.time,
        password_file: Path | str | None = None,
    ) -> None:
        """Check the URL and build the engine; nothing connects before the first call.

        ``password_file`` (a mounted secret) supplies the password the URL leaves out.
        """
        self.url = parse_url(url)
        if password_file is not None:
            try:
                secret = Path(password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                problem = f"cannot read the database password file {password_file}: {exc.strerror}"
                raise StoreError(problem) from None
            self.url = self.url.set(password=secret)
        self.span_seconds = span_seconds
        self._clock = clock
        self._engine = create_store_engine(self.url)

    @classmethod
    def from_settings(cls, settings: Settings, url: str | None = None) -> Store:
        """The store of ``settings`` (``store.url`` unless ``url`` is given, ``incidents.span_seconds``)."""
        return cls(
            url or settings.store.url,
            span_seconds=settings.incidents.span_seconds,
            password_file=settings.store.password_file,
        )

    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages and logs."""
        return safe(self.url)

    def __repr__(self) -> str:
        """The URL without its password."""
        return f"Store({self.safe_url!r})"

    def __enter__(self) -> Store:
        """Use as a context manager that closes the store."""
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the connection pool."""
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read transaction; database errors surface as StoreError. For repositories beside Store."""
        with translated(self.url), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite); database errors surface as StoreError."""
        with translated(self.url), self._engine.connect() as conn:
            conn.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
            with conn.begin():
                yield conn

    _read = reading
    _write = writing

    def ping(self) -> None:
        """Raise StoreError when the database cannot be reached."""
        with self._read() as conn:
            conn.execute(sa.select(1))

    def migrate(self) -> None:
        """Bring the schema to the newest revision; idempotent, and safe when processes race."""
        with self._write() as conn:
            advisory_lock(conn, MIGRATION_LOCK)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        log.info("alert store %s is at the newest schema", safe(self.url))

    # -- writing -------------------------------------------------------------------------------

    def save_batch(
        self,
        alerts: Sequence[Alert],
        dead_letters: Sequence[DeadLetter] = (),
        checkpoints: Sequence[Checkpoint] = (),
    ) -> list[Alert]:
        """Save one batch in one transaction; return the alerts inserted or changed, in input order.

        New alerts join incidents; a redelivered identical batch changes nothing and returns [].
        """
        now = self._clock()
        with self._write() as conn:
            changed: list[Alert] = []
            if alerts:
                advisory_lock(conn, GROUPING_LOCK)
                changed, inserted = upsert_alerts(conn, alerts, now)
                attach_new(conn, [a for a in changed if a.alert_id in inserted], self.span_seconds, now)
                refresh_changed(conn, [a for a in changed if a.alert_id not in inserted], now)
            insert_dead_letters(conn, dead_letters)
            upsert_checkpoints(conn, checkpoints)
        return changed

    def save_checkpoints(self, checkpoints: Sequence[Checkpoint]) -> None:
        """Insert or replace checkpoints by (group, topic, partition)."""
        self.save_batch((), checkpoints=checkpoints)

    def set_incident_status(
        self, incident_id: str, status: IncidentStatus, actor: str, note: str | None = None
    ) -> Incident:
        """Move an incident to ``status`` (TransitionError when not allowed) and record it."""
        return self._change(incident_id, lambda inc, at: change_status(inc, status, actor, at=at, note=note))

    def assign_incident(self, incident_id: str, assignee: str | None, actor: str) -> Incident:
        """Assign an incident (None: unassign) and record it."""
        return self._change(incident_id, lambda inc, at: assign(inc, assignee, actor, at=at))

    def add_incident_note(self, incident_id: str, actor: str, text: str) -> Incident:
        """Add a free-text note to an incident's timeline."""
        return self._change(incident_id, lambda inc, at: (inc, note_entry(actor, text, at=at)))

    def _change(
        self, incident_id: str, step: Callable[[Incident, float], tuple[Incident, TimelineEntry | None]]
    ) -> Incident:
        now = self._clock()
        with self._write() as conn:
            advisory_lock(conn, GROUPING_LOCK)
            incident = self._load_incident(conn, incident_id)
            updated, entry = step(incident, now)
            if entry is not None:
                values = {
                    "status": updated.status.value,
                    "assignee": updated.assignee,
                    "updated_at": to_dt(now),
                }
                where = t.incidents.c.incident_id == incident_id
                conn.execute(t.incidents.update().where(where).values(values))
                conn.execute(t.incident_timeline.insert().values(timeline_row(incident_id, entry)))
            return self._load_incident(conn, incident_id)

    # -- reading -------------------------------------------------------------------------------

    def list_alerts(
        self,
        key_id: str | None = None,
        principal: str | None = None,
        detector: str | None = None,
        min_severity: Severity | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Alert]:
        """Alerts newest first (by window end); ``since``/``until`` are epoch seconds."""
        c = t.alerts.c
        query = (
            sa.select(t.alerts).order_by(c.window_end.desc(), c.alert_id.desc()).limit(limit).offset(offset)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if principal is not None:
            query = query.where(c.principal == principal)
        if detector is not None:
            query = query.where(c.detector == detector)
        if min_severity is not None:
            query = query.where(c.severity >= int(min_severity))
        if since is not None:
            query = query.where(c.window_end >= to_dt(since))
        if until is not None:
            query = query.where(c.window_start < to_dt(until))
        with self._read() as conn:
            return [alert_from_row(row) for row in conn.execute(query).mappings()]

    def get_alert(self, alert_id: str) -> Alert | None:
        """One alert by id, or None."""
        with self._read() as conn:
            row = conn.execute(sa.select(t.alerts).where(t.alerts.c.alert_id == alert_id)).mappings().first()
        return alert_from_row(row) if row else None

    def count_alerts(self) -> int:
        """Number of stored alerts."""
        return self._count(t.alerts)

    def list_incidents(
        self, status: IncidentStatus | None = None, limit: int = 100, offset: int = 0
    ) -> list[Incident]:
        """Incidents, most recently active first, with their alert ids (the timeline: get_incident)."""
        c = t.incidents.c
        query = sa.select(t.incidents).order_by(c.last_seen.desc(), c.incident_id).limit(limit).offset(offset)
        if status is not None:
            query = query.where(c.status == status.value)
        with self._read() as conn:
            rows = list(conn.execute(query).mappings())
            alert_ids = linked_alert_ids(conn, [row["incident_id"] for row in rows])
        return [incident_from_row(row, alert_ids.get(row["incident_id"], ())) for row in rows]

    def get_incident(self, incident_id: str) -> Incident | None:
        """One incident with its alert ids (in event-time order) and timeline, or None."""
        with self._read() as conn:
            try:
                return self._load_incident(conn, incident_id)
            except UnknownIncidentError:
                return None

    def _load_incident(self, conn: Connection, incident_id: str) -> Incident:
        query = sa.select(t.incidents).where(t.incidents.c.incident_id == incident_id)
        row = conn.execute(query).mappings().first()
        if row is None:
            raise UnknownIncidentError(f"no incident {incident_id!r}")
        alert_ids = linked_alert_ids(conn, [incident_id]).get(incident_id, ())
        entries = conn.execute(
            sa.select(t.incident_timeline)
            .where(t.incident_timeline.c.incident_id == incident_id)
            .order_by(t.incident_timeline.c.at, t.incident_timeline.c.entry_id)
        ).mappings()
        return incident_from_row(row, alert_ids, tuple(entry_from_row(e) for e in entries))

    def load_checkpoint(self, group: str, topic: str, partition: int) -> Checkpoint | None:
        """The checkpoint of one partition for a consumer group, or None."""
        c = t.checkpoints.c
        query = sa.select(t.checkpoints).where(c.group == group, c.topic == topic, c.partition == partition)
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return checkpoint_from_row(row) if row else None

    def list_dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead letters, newest first."""
        c = t.dead_letters.c
        query = sa.select(t.dead_letters).order_by(c.received_at.desc(), c.letter_id.desc()).limit(limit)
        with self._read() as conn:
            return [dead_letter_from_row(row) for row in conn.execute(query).mappings()]

    def count_dead_letters(self) -> int:
        """Number of stored dead letters."""
        return self._count(t.dead_letters)

    def _count(self, table: sa.Table) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
