"""Analyst feedback on SQLite and PostgreSQL: verdicts, suppressions (API, consumer, responder), models."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import api_support
import fakes
import msgspec
import pytest
from api_support import PLAYBOOK, Env, make_env
from fakes import Clock
from helpers import (
    DAY3,
    FRANKFURT,
    HOUR,
    KEY_PROD,
    REPORTS,
    REPORTS_IPS,
    T0,
    T_END,
    make_event,
    merged,
    normal_traffic,
)

from detector.adapters.kafka_consumer import DetectorService
from detector.adapters.model_store import CARD
from detector.adapters.responder import Responder
from detector.adapters.store import Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.cli.main import main
from detector.cli.wiring import verdict_labels, write_jsonl
from detector.config import Settings
from detector.domain.alerts import Alert, Reason, Severity
from detector.domain.events import format_ts
from detector.domain.suppressions import DAY, Match, Verdict, alert_countries
from detector.evaluation import evaluate
from detector.features.identity import principal_identity
from detector.response.playbook import Mode, load_playbook
from detector.simulation.classic import simulate

pytestmark = pytest.mark.integration

NOW = api_support.T0 + 3 * DAY
GEO_TEXT = "3 calls from BR, where this key was never used (usually US, DE), by callers new to this key"


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def make_alert(
    key: str, start: float, detector: str = "volume_spike", principal: str = "p1", **kw: Any
) -> Alert:
    reasons = kw.pop("reasons", [Reason("calls", 120.0, 4.0, "120 calls, usually 4")])
    return fakes.make_alert(key, principal, start, detector=detector, severity=Severity.HIGH, score=0.9,
                            reasons=reasons, event_ids=[f"{key}-e"], **kw)  # fmt: skip


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def env(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Env]:
    e = make_env(db_url, tmp_path, clock=clock)
    yield e
    e.client.close()
    e.store.close()


# -- matching, expiry ------------------------------------------------------------------------------


def test_country_comes_from_geography_reasons_not_from_their_baseline() -> None:
    geo = make_alert("k", NOW, "new_geography", reasons=[Reason("new_country_events", 3, "US, DE", GEO_TEXT)])
    travel_text = (
        "p1 was in US and then JP 10,000 km away 5.0 minutes later (implies 120,000 km/h, limit 1,000)"
    )
    travel = make_alert(
        "k", NOW, "impossible_travel", reasons=[Reason("max_travel_kmh", 1e5, 1e3, travel_text)]
    )
    assert alert_countries(geo) == {"BR"}
    assert alert_countries(travel) == {"US", "JP"}
    assert alert_countries(make_alert("k", NOW)) == set()
    assert Match(country="BR", key_id="k").matches(geo)
    assert not Match(country="US").matches(geo)
    assert not Match(country="BR", key_id="other").matches(geo)
    assert not Match().matches(geo)  # an empty match never silences everything


def test_suppressions_expire_and_revoke_with_the_clock(db_url: str, clock: Clock) -> None:
    with Store(db_url) as store:
        store.migrate()
        repo = FeedbackRepository(store, clock=clock)
        made = repo.add_suppression(Match(key_id="k1"), "nightly backup", NOW + 3600, "ada")
        other = repo.add_suppression(Match(detector="off_hours"), "follow the sun team", NOW + 7200, "ada")
        alert = make_alert("k1", NOW)
        assert repo.matches(alert) == made
        assert {s.suppression_id for s in repo.active_at(NOW)} == {made.suppression_id, other.suppression_id}
        clock.now = NOW + 3600  # expiry is exclusive
        assert repo.matches(alert) is None
        assert [s.suppression_id for s in repo.active_at(clock.now)] == [other.suppression_id]
        revoked = repo.revoke(other.suppression_id)
        assert revoked is not None and revoked.revoked_at == clock.now
        assert repo.active_at(clock.now) == []
        assert repo.revoke("nope") is None


# -- API: suppressions, preview, verdicts ---------------------------------------------------------


def test_a_suppression_needs_a_match_a_reason_and_a_near_future_expiry(env: Env) -> None:
    ada = env.auth("ada")
    good = {"key_id": "k1", "reason": "backup job", "expires_at": iso(NOW + DAY)}
    for bad in (
        {k: v for k, v in good.items() if k != "reason"},
        {k: v for k, v in good.items() if k != "expires_at"},
        good | {"reason": "   "},
        good | {"expires_at": iso(NOW - 1)},
        good | {"expires_at": iso(NOW + 91 * DAY)},
        {"reason": "everything", "expires_at": iso(NOW + DAY)},
    ):
        response = env.client.post("/v1/suppressions", json=bad, headers=ada)
        assert response.status_code == 422, (bad, response.text)
    created = env.client.post(
        "/v1/suppressions", json=good | {"expires_at": iso(NOW + 90 * DAY)}, headers=ada
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["key_id"], body["reason"], body["author"], body["active"]) == (
        "k1",
        "backup job",
        "ada",
        True,
    )
    listed = env.client.get("/v1/suppressions", headers=env.auth("ann")).json()["items"]
    assert [s["id"] for s in listed] == [body["id"]]
    revoked = env.client.delete(f"/v1/suppressions/{body['id']}", headers=ada).json()
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    assert env.client.delete("/v1/suppressions/nope", headers=ada).status_code == 404


def test_preview_shows_the_last_seven_days_of_matching_alerts(env: Env) -> None:
    geo = [Reason("new_country_events", 3, "US, DE", GEO_TEXT)]
    recent = make_alert("k1", NOW - DAY)
    recent_geo = make_alert("k2", NOW - 2 * DAY, "new_geography", reasons=geo)
    old = make_alert("k1", NOW - 8 * DAY)
    env.store.save_batch([recent, recent_geo, old, make_alert("k3", NOW - DAY)])
    ann = env.auth("ann")

    def preview(body: dict[str, str]) -> list[str]:
        response = env.client.post("/v1/suppressions/preview", json=body, headers=ann)
        assert response.status_code == 200, response.text
        assert response.json()["matched"] == len(response.json()["items"])
        return sorted(a["alert_id"] for a in response.json()["items"])

    assert preview({"key_id": "k1"}) == [recent.alert_id]
    assert preview({"country": "BR"}) == [recent_geo.alert_id]
    assert preview({"country": "US"}) == []
    other = make_alert("k3", NOW - DAY).alert_id
    assert preview({"principal": "p1", "detector": "volume_spike"}) == sorted([recent.alert_id, other])
    assert env.client.post("/v1/suppressions/preview", json={}, headers=ann).status_code == 422
    assert env.client.get("/v1/suppressions", headers=ann).json()["items"] == []  # nothing was created


def test_a_false_positive_verdict_proposes_a_suppression_without_creating_it(env: Env) -> None:
    alert = make_alert("k1", NOW - 3600)
    env.store.save_batch([alert])
    ann = env.auth("ann")
    url = f"/v1/alerts/{alert.alert_id}/verdict"
    answer = env.client.post(url, json={"verdict": "false_positive", "comment": "backup"}, headers=ann).json()
    assert answer["verdict"] == "false_positive" and answer["author"] == "ann"
    proposed = answer["proposed_suppression"]
    assert (proposed["key_id"], proposed["principal"], proposed["detector"]) == ("k1", "p1", "volume_spike")
    assert proposed["expires_at"] == format_ts(NOW + 7 * DAY)
    assert env.client.get("/v1/suppressions", headers=ann).json()["items"] == []
    again = env.client.post(url, json={"verdict": "true_positive"}, headers=ann).json()
    assert "proposed_suppression" not in again  # the latest verdict replaces the earlier one
    assert [v["verdict"] for v in env.client.get("/v1/verdicts", headers=ann).json()["items"]] == [
        "true_positive"
    ]
    missing = env.client.post("/v1/alerts/nope/verdict", json={"verdict": "true_positive"}, headers=ann)
    assert missing.status_code == 404
    assert env.client.post(url, json={"verdict": "maybe"}, headers=ann).status_code == 422


def test_feedback_calls_are_audited(env: Env) -> None:
    alert = make_alert("k1", NOW - 3600)
    env.store.save_batch([alert])
    ann, ada = env.auth("ann"), env.auth("ada")
    env.client.post(f"/v1/alerts/{alert.alert_id}/verdict", json={"verdict": "false_positive"},
                    headers=ann).raise_for_status()  # fmt: skip
    body = {"key_id": "k1", "reason": "backup job", "expires_at": iso(NOW + DAY)}
    sid = env.client.post("/v1/suppressions", json=body, headers=ada).json()["id"]
    env.client.delete(f"/v1/suppressions/{sid}", headers=ada).raise_for_status()
    version = FeedbackRepository(env.store).register_model("/m", {"files": {"a": "1"}}).version
    env.client.post(f"/v1/models/{version}/activate", headers=ada).raise_for_status()
    records = [(r.actor, r.action, r.target) for r in env.ledger.records() if r.action.startswith("api.")]
    assert records == [
        ("ann", "api.verdict", alert.alert_id),
        ("ada", "api.suppression_add", sid),
        ("ada", "api.suppression_revoke", sid),
        ("ada", "api.model_activate", version),
    ]
    assert env.ledger.verify(env.signer.public_key()).ok


# -- applied: the consumer marks, the responder holds back ----------------------------------------


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        self.sent.append((topic, json.loads(value)))

    def flush(self, timeout: float | None = None) -> None:
        return None


def test_the_consumer_stores_suppressed_alerts_marked_and_does_not_publish_them(
    db_url: str, clock: Clock
) -> None:
    with Store(db_url) as store:
        store.migrate()
        repo = FeedbackRepository(store, clock=clock)
        made = repo.add_suppression(
            Match(key_id="k1", detector="volume_spike"), "load test", NOW + 3600, "ada"
        )
        service = DetectorService(Settings(), lambda: None, store, clock=clock)  # type: ignore[arg-type, return-value]
        producer = Producer()
        service.producer = producer  # type: ignore[assignment]
        quiet, loud = make_alert("k1", NOW - 600), make_alert("k2", NOW - 600)
        service._deliver([quiet, loud], [], [])

        assert [v["alert_id"] for _, v in producer.sent] == [loud.alert_id]
        assert store.get_alert(quiet.alert_id) is not None  # nothing silently dropped
        assert repo.suppressed_by(quiet.alert_id) == made.suppression_id
        assert repo.suppressed_by(loud.alert_id) is None
        assert service.totals.stored_alert_ids == {quiet.alert_id, loud.alert_id}

        clock.now = NOW + 3601  # expired: the next update of the episode is published again
        quiet.count, quiet.window_end = 2, quiet.window_end + 60
        service._deliver([quiet], [], [])
        assert [v["alert_id"] for _, v in producer.sent] == [loud.alert_id, quiet.alert_id]
        assert repo.suppressed_by(quiet.alert_id) is None


def test_the_responder_starts_no_playbook_for_an_incident_whose_alerts_are_all_suppressed(
    env: Env, clock: Clock
) -> None:
    repo = FeedbackRepository(env.store, clock=clock)
    repo.add_suppression(Match(key_id="k1"), "pen test this week", NOW + DAY, "ada")
    quiet, loud = make_alert("k1", NOW - 600), make_alert("k2", NOW - 600, principal="p2")  # two incidents
    env.store.save_batch([quiet, loud])
    assert repo.apply([quiet, loud]) == {quiet.alert_id: repo.active_at(NOW)[0].suppression_id}
    auto = load_playbook(PLAYBOOK.replace("auto: false", "auto: true"), "auto.yaml")
    responder = Responder(env.store, env.runner, [auto], Mode.STAGED)
    started = responder.scan()
    assert [env.runner.get(r).key_id for r in started] == ["k2"]
    assert responder.scan() == []  # the suppressed incident is not reconsidered until alerts join


# -- verdicts feed training and evaluation; model versions ----------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("feedback-world")
    sim = simulate(keys=4, days=2, test_days=0.5, seed=3)
    write_jsonl(out / "history.jsonl", (e.to_dict() for e in sim.history))
    (out / "labels.json").write_text(json.dumps(sim.labels), encoding="utf-8")
    assert main(["train", str(out / "history.jsonl"), "--out", str(out / "plain")]) == 0
    return {"sim": sim, "dir": out}


def test_verdicts_decide_what_training_learns(
    db_url: str, tmp_path: Path, world: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """A true positive's events stay out of training; a false positive's are learned like the rest."""
    history = world["sim"].history
    key = history[0].key_id
    start = history[0].ts + 3600
    fp = make_alert(key, start)
    fp.window_end = start + 7200
    tp = make_alert(key, start + 9000, "new_principal")
    tp.window_end = start + 9600
    in_fp = sum(1 for e in history if e.key_id == key and start <= e.ts < start + 7200)
    in_tp = sum(1 for e in history if e.key_id == key and start + 9000 <= e.ts < start + 9600)
    assert in_fp > 0 and in_tp > 0
    with Store(db_url) as store:
        store.migrate()
        store.save_batch([fp, tp])
        repo = FeedbackRepository(store)
        repo.set_verdict(fp.alert_id, Verdict.FALSE_POSITIVE, "backup", "ann")
        repo.set_verdict(tp.alert_id, Verdict.TRUE_POSITIVE, None, "ann")
    capsys.readouterr()
    model = tmp_path / "model"
    assert main(["train", str(world["dir"] / "history.jsonl"), "--out", str(model), "--db", db_url]) == 0
    out = capsys.readouterr().out
    assert f"1 true-positive windows leave out {in_tp:,} events" in out
    assert f"1 false-positive windows are learned as normal ({in_fp:,} events)" in out
    card = json.loads((model / CARD).read_text())
    assert card["verdicts"] == {"true_positive_windows_excluded": 1, "events_excluded": in_tp,
                                "false_positive_windows_learned": 1, "events_learned": in_fp}  # fmt: skip
    plain = json.loads((world["dir"] / "plain" / CARD).read_text())
    assert "verdicts" not in plain
    assert card["training"]["events"] == plain["training"]["events"] - in_tp

    write_jsonl(tmp_path / "alerts.jsonl", [tp.to_dict()])
    labels, alerts = world["dir"] / "labels.json", tmp_path / "alerts.jsonl"
    args = ["evaluate", "--labels", str(labels), "--alerts", str(alerts), "--json", "--db", db_url]
    assert main(args) == 0
    rows = {r["scenario"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    assert (rows["verdict_true_positive"]["instances"], rows["verdict_true_positive"]["detected"]) == (1, 1)


def test_a_false_positive_verdict_then_training_quiets_the_same_behaviour(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A role new to a key alerts; judged benign and retrained on, the same use a day later is quiet.

    Judged an attack instead, its events stay out of training and the same use alerts again.
    """
    key, newcomer = KEY_PROD, REPORTS
    novel_at = DAY3 + 10 * HOUR
    novel = [make_event(event_id=f"novel-{i}", ts=novel_at + 10 + 10 * i, principal=newcomer,
                        source_ip=REPORTS_IPS[0], place=FRANKFURT) for i in range(3)]  # fmt: skip
    write_jsonl(tmp_path / "history.jsonl", (e.to_dict() for e in normal_traffic(T0, T_END)))
    day3 = merged(normal_traffic(DAY3, DAY3 + 12 * HOUR), novel)
    write_jsonl(tmp_path / "day3.jsonl", (e.to_dict() for e in day3))
    again = [msgspec.structs.replace(e, event_id=f"again-{e.event_id}", ts=e.ts + DAY) for e in novel]
    day4 = merged(normal_traffic(DAY3 + DAY + 9 * HOUR, DAY3 + DAY + 11 * HOUR), again)
    write_jsonl(tmp_path / "day4.jsonl", (e.to_dict() for e in day4))
    assert main(["train", str(tmp_path / "history.jsonl"), "--out", str(tmp_path / "m1")]) == 0
    assert main(["replay", str(tmp_path / "day3.jsonl"), "--model", str(tmp_path / "m1"),
                 "--out", str(tmp_path / "a3.jsonl")]) == 0  # fmt: skip
    first = _new_principal_alert(tmp_path / "a3.jsonl", key, newcomer)
    with Store(db_url) as store:
        store.migrate()
        store.save_batch([first])
    results = {}
    for verdict in (Verdict.FALSE_POSITIVE, Verdict.TRUE_POSITIVE):
        with Store(db_url) as store:
            FeedbackRepository(store).set_verdict(first.alert_id, verdict, None, "ann")
        model = tmp_path / f"m-{verdict.value}"
        inputs = [str(tmp_path / "history.jsonl"), str(tmp_path / "day3.jsonl")]
        assert main(["train", *inputs, "--out", str(model), "--db", db_url]) == 0
        out = tmp_path / f"a4-{verdict.value}.jsonl"
        assert main(["replay", str(tmp_path / "day4.jsonl"), "--model", str(model), "--out", str(out)]) == 0
        results[verdict] = _new_principal_alert(out, key, newcomer, required=False)
    capsys.readouterr()
    assert results[Verdict.FALSE_POSITIVE] is None
    assert results[Verdict.TRUE_POSITIVE] is not None


def _new_principal_alert(path: Path, key: str, principal: str, *, required: bool = True) -> Alert | None:
    found = [Alert.from_dict(json.loads(line)) for line in path.read_text().splitlines()]
    found = [a for a in found if a.detector == "new_principal" and a.key_id == key
             and principal_identity(a.principal or "") == principal_identity(principal)]  # fmt: skip
    assert found or not required, "the new caller drew no new_principal alert"
    return found[0] if found else None


def test_verdicts_become_labelled_attacks_and_benign_instances(db_url: str) -> None:
    tp, fp, unjudged = make_alert("k1", NOW), make_alert("k2", NOW, "new_principal"), make_alert("k3", NOW)
    with Store(db_url) as store:
        store.migrate()
        store.save_batch([tp, fp, unjudged])
        repo = FeedbackRepository(store)
        repo.set_verdict(tp.alert_id, Verdict.TRUE_POSITIVE, None, "ann")
        repo.set_verdict(fp.alert_id, Verdict.FALSE_POSITIVE, "backup job", "ann")
    attacks = verdict_labels(db_url, None)  # what `keywatch evaluate --db` and the notebook read
    benign = verdict_labels(db_url, None, Verdict.FALSE_POSITIVE)
    assert attacks == [{"scenario": "verdict_true_positive", "kind": "attack", "key_ids": ["k1"],
                        "principal": "p1", "start": NOW, "end": NOW + 60}]  # fmt: skip
    assert [(b["scenario"], b["kind"], b["key_ids"]) for b in benign] == [
        ("verdict_false_positive", "benign", ["k2"])
    ]
    report = evaluate({"scenarios": attacks + benign}, [tp, fp, unjudged], window_seconds=60)
    # the alert nobody judged counts neither way in the precision
    assert (report.overall_recall, report.instance_precision()) == (1.0, 0.5)


def test_models_register_and_activate(db_url: str, tmp_path: Path, world: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    plain = world["dir"] / "plain"
    assert main(["models", "register", str(plain), "--db", db_url]) == 0
    assert "(active)" in capsys.readouterr().out  # the first version registered is active
    other = tmp_path / "other"
    shutil.copytree(plain, other)
    card = json.loads((other / CARD).read_text())
    (other / CARD).write_text(json.dumps(card | {"note": "same files, same version"}))
    assert main(["models", "register", str(other), "--db", db_url]) == 0
    broken = tmp_path / "broken"
    shutil.copytree(plain, broken)
    (broken / "profiles.json.gz").write_bytes(b"tampered")
    assert main(["models", "register", str(broken), "--db", db_url]) == 2
    assert main(["models", "register", str(tmp_path), "--db", db_url]) == 2
    capsys.readouterr()

    e = make_env(db_url, tmp_path)
    repo = FeedbackRepository(e.store)
    assert len(repo.list_models()) == 1  # same digests: one version
    second = repo.register_model("/elsewhere", {"files": {"profiles.json.gz": "x"}})
    assert not second.active
    ann, ada = e.auth("ann"), e.auth("ada")
    first = e.client.get("/v1/models/active", headers=ann).json()
    assert first["path"] == str(plain.resolve()) and first["card"]["files"] == card["files"]
    assert e.client.post(f"/v1/models/{second.version}/activate", headers=ann).status_code == 403
    activated = e.client.post(f"/v1/models/{second.version}/activate", headers=ada).json()
    assert activated["active"] is True
    listed = e.client.get("/v1/models", headers=ann).json()["items"]
    assert sorted((m["version"], m["active"]) for m in listed) == sorted(
        [(first["version"], False), (second.version, True)]
    )
    assert e.client.post("/v1/models/nope/activate", headers=ada).status_code == 404
    e.client.close()
    e.store.close()
