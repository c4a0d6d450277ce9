"""The alert store on SQLite and PostgreSQL: migrations, idempotent batches, incidents, checkpoints."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import fakes
import pytest
import sqlalchemy as sa
from fakes import Clock

from detector.adapters.store import Checkpoint, DeadLetter, Store, StoreError
from detector.cli.main import main
from detector.domain.alerts import Alert, Reason, Severity
from detector.domain.incidents import (
    ALERT_ADDED,
    ASSIGNED,
    NOTE,
    STATUS_CHANGED,
    IncidentStatus,
    TransitionError,
    UnknownIncidentError,
    incident_id_for,
)

HEAD = "0004"  # the newest migration shipped

pytestmark = pytest.mark.integration

T0 = 1_714_348_800.123456  # sub-millisecond on purpose: must survive the round trip
SPAN = 3600.0
TABLES = {"alerts", "incidents", "incident_alerts", "incident_timeline", "dead_letters", "checkpoints"}


def make_alert(
    key: str = "k1",
    principal: str | None = "p1",
    start: float = T0,
    *,
    detector: str = "volume_spike",
    severity: Severity = Severity.MEDIUM,
) -> Alert:
    reasons = [Reason("calls", 120.0, 4.0, "120 calls, usually 4"), Reason("ratio", float("inf"), None, "∞")]
    return fakes.make_alert(key, principal, start, detector=detector, severity=severity, score=0.8125,
                            reasons=reasons, event_ids=["e1", "e2"])  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock(2_000_000_000.0)


@pytest.fixture
def store(db_url: str, clock: Clock) -> Iterator[Store]:
    with Store(db_url, span_seconds=SPAN, clock=clock) as s:
        s.migrate()
        yield s


def _rows(url: str, table: str) -> int:
    engine = sa.create_engine(Store(url).url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    finally:
        engine.dispose()


# -- schema ------------------------------------------------------------------------------------


def _schema(url: str) -> tuple[set[str], list[str]]:
    engine = sa.create_engine(Store(url).url)
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            versions = list(
                conn.execute(sa.text("SELECT version_num FROM keywatch_alembic_version")).scalars()
            )
        return names, versions
    finally:
        engine.dispose()


def test_migrate_from_empty_and_twice(db_url: str) -> None:
    with Store(db_url) as store:
        store.migrate()
        store.migrate()
        store.ping()
        assert store.count_alerts() == 0
    names, versions = _schema(db_url)
    assert names >= TABLES
    assert versions == [HEAD]


def test_two_stores_migrating_at_once(db_url: str) -> None:
    stores = [Store(db_url), Store(db_url)]
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: Store) -> None:
        try:
            barrier.wait()
            store.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert errors == []
    assert _schema(db_url)[1] == [HEAD]


def test_unreachable_and_bad_urls_raise_one_clear_line() -> None:
    with pytest.raises(StoreError, match="invalid store URL"):
        Store("not a url")
    with pytest.raises(StoreError, match="unsupported store URL"):
        Store("mysql://u@h/db")
    with Store("postgresql://postgres:secret@127.0.0.1:1/nothing") as store, pytest.raises(StoreError) as err:
        store.ping()
    message = str(err.value)
    assert "127.0.0.1:1" in message and "secret" not in message and "\n" not in message


def test_unmigrated_store_says_so(db_url: str) -> None:
    with Store(db_url) as store, pytest.raises(StoreError, match="not migrated"):
        store.count_alerts()


# -- alerts ------------------------------------------------------------------------------------


def test_save_is_idempotent(store: Store, db_url: str) -> None:
    batch = [make_alert("k1"), make_alert("k2", "p2"), make_alert("k3", None)]
    letters = [DeadLetter("bad json", b"{", "events", 0, 7)]
    assert store.save_batch(batch, letters) == batch
    counts = {table: _rows(db_url, table) for table in TABLES}
    assert store.save_batch(batch, letters) == []
    assert store.save_batch([replace(a) for a in batch]) == []
    assert {table: _rows(db_url, table) for table in TABLES} == counts
    assert counts["alerts"] == 3 and counts["incident_alerts"] == 3 and counts["dead_letters"] == 1


def test_alerts_round_trip(store: Store) -> None:
    alert = make_alert()
    store.save_batch([alert])
    loaded = store.get_alert(alert.alert_id)
    assert loaded is not None
    assert loaded.to_dict() == alert.to_dict()
    assert abs(loaded.window_start - alert.window_start) < 1e-6
    assert loaded.reasons[1].value == float("inf")
    assert store.get_alert("missing") is None


@pytest.mark.parametrize(
    "change",
    [
        {"window_end": T0 + 120.0},
        {"count": 2},
        {"severity": Severity.HIGH},
        {"score": 0.9},
        {"reasons": [Reason("calls", 121.0, 4.0, "121 calls, usually 4")]},
        {"event_ids": ["e1", "e2", "e3"]},
    ],
    ids=lambda change: next(iter(change)),
)
def test_a_changed_alert_is_updated_and_returned(store: Store, change: dict[str, object]) -> None:
    a, b = make_alert("k1"), make_alert("k2", "p2")
    store.save_batch([a, b])
    changed = replace(b, **change)  # type: ignore[arg-type]
    assert store.save_batch([a, changed]) == [changed]
    assert store.get_alert(b.alert_id) == store.list_alerts(key_id="k2")[0]
    assert store.list_alerts(key_id="k2")[0].to_dict() == changed.to_dict()
    assert store.count_alerts() == 2


def test_returned_alerts_keep_input_order_and_count_an_id_once(store: Store) -> None:
    a, b, c = make_alert("k1"), make_alert("k2", "p2"), make_alert("k3", "p3")
    store.save_batch([b])
    later_b = replace(b, window_end=b.window_end + 60.0)
    assert store.save_batch([c, later_b, a, replace(c, count=3)]) == [replace(c, count=3), later_b, a]


def test_list_alerts_filters_and_pages(store: Store) -> None:
    alerts = [
        make_alert("k1", "p1", T0, severity=Severity.LOW),
        make_alert("k1", "p2", T0 + 600, detector="off_hours", severity=Severity.HIGH),
        make_alert("k2", "p1", T0 + 1200, severity=Severity.CRITICAL),
    ]
    store.save_batch(alerts)

    def ids(found: list[Alert]) -> list[str]:
        return [a.alert_id for a in found]

    newest_first = [alerts[2].alert_id, alerts[1].alert_id, alerts[0].alert_id]
    assert ids(store.list_alerts()) == newest_first
    assert ids(store.list_alerts(limit=1, offset=1)) == newest_first[1:2]
    assert ids(store.list_alerts(key_id="k1")) == newest_first[1:]
    assert ids(store.list_alerts(principal="p1")) == [newest_first[0], newest_first[2]]
    assert ids(store.list_alerts(detector="off_hours")) == newest_first[1:2]
    assert ids(store.list_alerts(min_severity=Severity.HIGH)) == newest_first[:2]
    assert ids(store.list_alerts(since=T0 + 600, until=T0 + 1200)) == newest_first[1:2]
    assert store.count_alerts() == 3


# -- incidents ---------------------------------------------------------------------------------


def _incident_of(store: Store, alert: Alert) -> str:
    found = [i.incident_id for i in store.list_incidents(limit=1000) if alert.alert_id in i.alert_ids]
    assert len(found) == 1
    return found[0]


def test_alerts_of_one_key_share_an_incident(store: Store, clock: Clock) -> None:
    first, second = make_alert("k1", "p1"), make_alert("k1", "p2", T0 + 900, severity=Severity.HIGH)
    store.save_batch([first])
    store.save_batch([second])
    incident = store.get_incident(incident_id_for(first))
    assert incident is not None
    assert incident.alert_ids == (first.alert_id, second.alert_id)
    assert (incident.alert_count, incident.severity, incident.status) == (
        2,
        Severity.HIGH,
        IncidentStatus.OPEN,
    )
    assert incident.key_ids == ("k1",) and incident.principals == ("p1", "p2")
    assert [e.kind for e in incident.timeline] == [ALERT_ADDED, ALERT_ADDED]
    assert incident.timeline[0].at == clock.now


def test_alerts_of_one_principal_across_keys_share_an_incident(store: Store) -> None:
    a, b, c = make_alert("k1", "p1"), make_alert("k2", "p1", T0 + 300), make_alert("k3", "p3", T0 + 300)
    store.save_batch([a, b, c])
    assert _incident_of(store, a) == _incident_of(store, b) == incident_id_for(a)
    assert _incident_of(store, c) == incident_id_for(c)
    assert len(store.list_incidents()) == 2


def test_span_expiry_opens_a_new_incident(store: Store) -> None:
    a = make_alert("k1", "p1", T0)
    near = make_alert("k1", "p1", T0 + 60 + SPAN)  # starts exactly span after a's window end
    far = make_alert("k1", "p1", T0 + 60 + SPAN + 60 + SPAN + 1)
    store.save_batch([a])
    store.save_batch([near])
    store.save_batch([far])
    assert _incident_of(store, near) == incident_id_for(a)
    assert _incident_of(store, far) == incident_id_for(far)


def test_closed_incidents_are_not_reused(store: Store) -> None:
    a, b, c = make_alert("k1"), make_alert("k1", "p1", T0 + 300), make_alert("k1", "p1", T0 + 600)
    store.save_batch([a])
    store.set_incident_status(incident_id_for(a), IncidentStatus.RESOLVED, "bob")
    store.save_batch([b])
    assert _incident_of(store, b) == incident_id_for(b)
    store.set_incident_status(incident_id_for(b), IncidentStatus.FALSE_POSITIVE, "bob")
    store.set_incident_status(incident_id_for(a), IncidentStatus.OPEN, "bob", note="it came back")
    store.save_batch([c])
    assert _incident_of(store, c) == incident_id_for(a)


def test_an_updated_alert_widens_its_incident_without_linking_twice(store: Store) -> None:
    a = make_alert("k1")
    store.save_batch([a])
    longer = replace(a, window_end=a.window_end + 600, count=11, severity=Severity.CRITICAL)
    assert store.save_batch([longer]) == [longer]
    incident = store.get_incident(incident_id_for(a))
    assert incident is not None
    assert (incident.alert_count, incident.severity) == (1, Severity.CRITICAL)
    assert incident.last_seen == pytest.approx(longer.window_end)
    assert len(incident.timeline) == 1


def test_status_transitions_and_timeline(store: Store, clock: Clock) -> None:
    a = make_alert()
    store.save_batch([a])
    iid = incident_id_for(a)
    for status in (IncidentStatus.ACKNOWLEDGED, IncidentStatus.CONTAINED, IncidentStatus.RESOLVED):
        clock.now += 10
        assert store.set_incident_status(iid, status, "bob", note=f"now {status.value}").status is status
    with pytest.raises(TransitionError, match="cannot go from resolved to contained"):
        store.set_incident_status(iid, IncidentStatus.CONTAINED, "bob")
    unchanged = store.set_incident_status(iid, IncidentStatus.RESOLVED, "bob")
    assert unchanged.status is IncidentStatus.RESOLVED
    incident = store.get_incident(iid)
    assert incident is not None
    assert [e.kind for e in incident.timeline] == [ALERT_ADDED] + [STATUS_CHANGED] * 3
    assert incident.timeline[-1].text == "contained -> resolved: now resolved"
    assert incident.timeline[-1].actor == "bob" and incident.timeline[-1].at == clock.now
    assert [i.incident_id for i in store.list_incidents(status=IncidentStatus.RESOLVED)] == [iid]
    assert store.list_incidents(status=IncidentStatus.OPEN) == []
    with pytest.raises(UnknownIncidentError):
        store.set_incident_status("nope", IncidentStatus.OPEN, "bob")
    assert store.get_incident("nope") is None


def test_assignment_and_notes(store: Store) -> None:
    a = make_alert()
    store.save_batch([a])
    iid = incident_id_for(a)
    assert store.assign_incident(iid, "carol", "bob").assignee == "carol"
    incident = store.add_incident_note(iid, "carol", "owner says it is a migration job")
    assert incident.assignee == "carol"
    assert [(e.kind, e.actor, e.text) for e in incident.timeline[1:]] == [
        (ASSIGNED, "bob", "assigned to carol"),
        (NOTE, "carol", "owner says it is a migration job"),
    ]
    assert store.assign_incident(iid, None, "carol").assignee is None


def test_concurrent_writers_group_into_one_incident(db_url: str) -> None:
    alerts = [make_alert("k1", "p1", T0 + n * 60, detector=f"d{n}") for n in range(6)]
    stores = [Store(db_url, span_seconds=SPAN) for _ in range(3)]
    stores[0].migrate()
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: Store, part: list[Alert]) -> None:
        try:
            barrier.wait()
            store.save_batch(part)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s, alerts[i::3])) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    incidents = stores[0].list_incidents()
    for store in stores:
        store.close()
    assert len(incidents) == 1 and incidents[0].alert_count == 6


# -- dead letters and checkpoints --------------------------------------------------------------


def test_dead_letters_are_idempotent_by_position(store: Store) -> None:
    positioned = [DeadLetter("too big", b"x" * 10, "events", 1, 42), DeadLetter("bad", b"{", "events", 2, 42)]
    loose = DeadLetter("unreadable file", b"\x00\xff", received_at=T0)
    store.save_batch([], [*positioned, loose])
    store.save_batch([], [*positioned, positioned[0]])
    assert store.count_dead_letters() == 3
    listed = store.list_dead_letters(limit=10)
    assert {(d.topic, d.partition, d.offset) for d in listed} == {
        ("events", 1, 42),
        ("events", 2, 42),
        (None,) * 3,
    }
    assert listed[-1] == loose
    assert len(store.list_dead_letters(limit=1)) == 1


def test_checkpoints_round_trip_a_large_state(store: Store) -> None:
    state = os.urandom(6 * 1024 * 1024)
    first = Checkpoint("detector", "events", 3, 1000, state, saved_at=T0)
    store.save_checkpoints([first, Checkpoint("detector", "events", 4, 5, b"", saved_at=T0)])
    loaded = store.load_checkpoint("detector", "events", 3)
    assert loaded is not None
    assert (loaded.offset, loaded.state == state, loaded.saved_at) == (1000, True, pytest.approx(T0))
    newer = Checkpoint("detector", "events", 3, 2500, state[::-1], saved_at=T0 + 30)
    store.save_batch([make_alert()], checkpoints=[newer])
    loaded = store.load_checkpoint("detector", "events", 3)
    assert loaded is not None and loaded.offset == 2500 and loaded.state == state[::-1]
    assert store.load_checkpoint("detector", "events", 9) is None
    assert store.load_checkpoint("other-group", "events", 3) is None


# -- command line ------------------------------------------------------------------------------


def _json_out(capsys: pytest.CaptureFixture[str], run: Callable[[], int]) -> list[dict[str, object]]:
    assert run() == 0
    out: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return out


def test_cli_alerts_list_json(store: Store, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    alerts = [
        make_alert("k1", severity=Severity.LOW),
        make_alert("k2", "p2", T0 + 60, severity=Severity.HIGH),
    ]
    store.save_batch(alerts)
    listed = _json_out(capsys, lambda: main(["alerts", "list", "--db", db_url, "--json"]))
    assert listed == [alerts[1].to_dict(), alerts[0].to_dict()]
    high = _json_out(capsys, lambda: main(["alerts", "list", "--db", db_url, "--json", "--severity", "high"]))
    assert [a["key_id"] for a in high] == ["k2"]
    by_key = _json_out(capsys, lambda: main(["alerts", "list", "--db", db_url, "--json", "--key", "k1"]))
    assert [a["key_id"] for a in by_key] == ["k1"]
    assert main(["alerts", "list", "--db", db_url, "--limit", "1"]) == 0
    assert "k2" in capsys.readouterr().out


def test_cli_incidents_list_json(
    store: Store, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = make_alert("k1"), make_alert("k9", "p9", T0 + 60)
    store.save_batch([a, b])
    store.set_incident_status(incident_id_for(b), IncidentStatus.ACKNOWLEDGED, "bob")
    monkeypatch.setenv("KEYWATCH_STORE__URL", db_url)  # the default store comes from the settings
    listed = _json_out(capsys, lambda: main(["incidents", "list", "--json"]))
    assert [(i["incident_id"], i["status"]) for i in listed] == [
        (incident_id_for(b), "acknowledged"),
        (incident_id_for(a), "open"),
    ]
    assert listed[1]["alert_ids"] == [a.alert_id]
    acked = _json_out(capsys, lambda: main(["incidents", "list", "--json", "--status", "acknowledged"]))
    assert len(acked) == 1
    assert main(["incidents", "list"]) == 0
    assert "acknowledged" in capsys.readouterr().out


def test_cli_reports_an_unreachable_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list", "--db", "postgresql://postgres@127.0.0.1:1/x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("keywatch: error: alert store postgresql+psycopg://postgres@127.0.0.1:1/x")
    assert err.count("\n") == 1


def test_a_store_waits_for_a_writer_on_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """Switching a file to WAL needs it to itself, and SQLite refuses that at once while another
    connection writes: the second of two members starting on a fresh file used to fail."""
    import sqlite3

    path = tmp_path / "fresh.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE t (x)")
    timer = threading.Timer(0.5, writer.commit)
    timer.start()
    store = Store(f"sqlite:///{path}")
    try:
        store.migrate()  # connects (switching to WAL) while the writer still holds the file
    finally:
        timer.join()
        writer.close()
        store.close()
    assert _schema(f"sqlite:///{path}")[1] == [HEAD]
