"""The pipeline loop: watermark-closed windows, late events, alert merging, stable ids, severity
weighting by the key catalog, micro-batched forest scoring and bounded state."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
from helpers import (
    ALICE,
    DAY3,
    HOUR,
    KEY_DEV,
    KEY_PROD,
    MINUTE,
    ORDERS_ID,
    REPORTS_ID,
    T_END,
    by_detector,
    make_event,
    merged,
    normal_traffic,
    run,
    spread,
)

from detector.alertbook import RISE
from detector.config import DetectionSettings, ForestSettings, WindowSettings
from detector.domain.alerts import Severity
from detector.domain.catalog import KeyCatalog
from detector.domain.events import Event
from detector.features.schema import FEATURE_NAMES
from detector.features.window import principal_windows, tally_window, window_features
from detector.pipeline import Pipeline
from detector.scoring.forest import ForestModel, fit_forest

AT = DAY3 + 10 * HOUR
W = 60.0


def _fresh(**window: float) -> Pipeline:
    """A pipeline with no history (defaults, optionally other window settings)."""
    return Pipeline(DetectionSettings(window=WindowSettings(**window)))


def _at(ts: float, **fields: object) -> Event:
    return make_event(event_id=f"e-{ts:.3f}-{fields.get('key_id', 'p')}", ts=ts, **fields)


# --- windows and the watermark -------------------------------------------------------------------


def test_window_closes_when_the_watermark_passes_its_end() -> None:
    pipe = _fresh()  # 60 s windows, 30 s allowed lateness
    pipe.process([_at(AT + 5)])
    assert list(pipe.open) == [AT] and pipe.stats.windows == 0
    pipe.process([_at(AT + 89.9)])  # watermark AT + 59.9: not yet
    assert AT in pipe.open and pipe.stats.windows == 0
    pipe.process([_at(AT + 90)])  # watermark AT + 60 = end of the first window
    assert AT not in pipe.open and pipe.stats.windows == 1
    assert pipe.closed_until == AT + W
    assert list(pipe.open) == [AT + W]


def test_out_of_order_events_within_lateness_join_their_window() -> None:
    pipe = _fresh()
    pipe.process([_at(AT + 50), _at(AT + 75), _at(AT + 10)])  # AT + 10 arrives late, but in time
    assert len(pipe.open[AT][KEY_PROD].events) == 2
    assert pipe.stats.late == 0


def test_all_keys_of_one_period_close_together() -> None:
    pipe = _fresh()
    pipe.process([_at(AT + 1), _at(AT + 2, key_id=KEY_DEV), _at(AT + 95)])
    assert pipe.stats.windows == 2
    assert set(pipe.open[AT + W]) == {KEY_PROD}


def test_finish_closes_every_open_window() -> None:
    pipe = _fresh()
    pipe.process([_at(AT + 1), _at(AT + 31), _at(AT + 61)])  # watermark AT + 31: nothing closes
    assert pipe.stats.windows == 0
    pipe.finish()
    assert pipe.stats.windows == 2 and not pipe.open


def test_late_events_are_counted_and_learned_not_dropped() -> None:
    pipe = _fresh()
    pipe.process([_at(AT + 5), _at(AT + 95)])  # closes [AT, AT + 60)
    before = pipe.profiles.keys[KEY_PROD].events
    late = make_event(event_id="late", ts=AT + 20, principal="arn:aws:iam::111122223333:user/bob",
                      source_ip="198.51.100.77", operation="Encrypt")  # fmt: skip
    pipe.process([late])
    pipe.flush()  # late events are judged and learned as a late window at the next flush/advance
    assert pipe.stats.late == 1 and pipe.stats.events == 3
    assert all(e.event_id != "late" for b in pipe.open.values() for w in b.values() for e in w.events)
    prof = pipe.profiles.keys[KEY_PROD]
    assert prof.events == before + 1
    assert prof.principals["arn:aws:iam::111122223333:user/bob"] == 1
    assert prof.operations["Encrypt"] == 1
    assert "198.51.100.0/24" in prof.prefixes
    assert pipe.profiles.principals["arn:aws:iam::111122223333:user/bob"].keys == {KEY_PROD: 1}


def test_late_event_of_an_unknown_key_starts_its_profile() -> None:
    pipe = _fresh()
    pipe.process([_at(AT + 5), _at(AT + 95)])
    pipe.process([_at(AT + 6, key_id="arn:aws:kms:us-east-1:111122223333:key/late-only")])
    pipe.flush()
    prof = pipe.profiles.keys["arn:aws:kms:us-east-1:111122223333:key/late-only"]
    assert prof.events == 1 and prof.first_ts == AT and prof.last_ts == AT + 6


# --- alert episodes -------------------------------------------------------------------------------


def _spike_window(m: int) -> list[Event]:
    """Normal traffic of minute ``m`` after AT plus a 40x spike in it."""
    start = AT + m * MINUTE
    return merged(normal_traffic(start, start + MINUTE), spread(start, 200, prefix=f"spike{m}"))


def test_consecutive_windows_extend_one_alert(mature: Pipeline) -> None:
    mature.process(normal_traffic(AT - 10 * MINUTE, AT))
    assert mature.flush() == []
    seen = []
    for m in range(4):  # a spike in minutes 0..2; minute 3 is normal and closes minute 2
        mature.process(_spike_window(m) if m < 3 else normal_traffic(AT + 3 * MINUTE, AT + 4 * MINUTE))
        seen.append([a.to_dict() for a in by_detector(mature.flush(), "volume_spike")])
    assert seen[0] == []  # the first spike window is still open (lateness)
    first, second, third = (s[0] for s in seen[1:])
    assert first["alert_id"] == second["alert_id"] == third["alert_id"]
    assert [first["count"], second["count"], third["count"]] == [1, 2, 3]
    assert first["first_window_start"] == second["first_window_start"] == third["first_window_start"]
    assert first["window_end"] < second["window_end"] < third["window_end"]
    assert [slot for slot in mature.book.open if slot[0] == KEY_PROD] == [(KEY_PROD, RISE)]


def test_a_gap_longer_than_merge_gap_starts_a_new_alert(make_pipeline) -> None:
    base = make_pipeline().settings
    settings = base.model_copy(update={"alerts": base.alerts.model_copy(update={"rise_merge_hours": 0.0})})
    pipe = make_pipeline(settings)
    gap = settings.alerts.merge_gap_windows + 2
    events = merged(normal_traffic(AT, AT + (gap + 3) * MINUTE), spread(AT, 200, prefix="s1"),
                    spread(AT + (gap + 1) * MINUTE, 200, prefix="s2"))  # fmt: skip
    spikes = by_detector(run(pipe, events), "volume_spike")
    assert len(spikes) == 2 and spikes[0].alert_id != spikes[1].alert_id
    assert all(a.count == 1 for a in spikes)


def _attack() -> list[Event]:
    intruder = "arn:aws:sts::111122223333:assumed-role/intruder/s"
    return merged(
        normal_traffic(AT - 20 * MINUTE, AT + 20 * MINUTE),
        *[spread(AT + i * MINUTE, 200, prefix=f"spike{i}") for i in range(3)],
        spread(AT + 5 * MINUTE, 4, prefix="np", principal=intruder),
        [make_event(event_id="del", ts=AT + 7 * MINUTE + 3, operation="ScheduleKeyDeletion")],
        spread(AT + 9 * MINUTE, 15, prefix="deny", outcome="denied"),
    )


def test_alert_ids_are_stable_across_replays_and_batching(make_pipeline) -> None:
    events = _attack()
    once = run(make_pipeline(), copy.deepcopy(events))
    assert {a.detector for a in once} >= {"volume_spike", "new_principal", "unusual_admin", "denied_burst"}
    again = run(make_pipeline(), copy.deepcopy(events))
    assert [a.to_dict() for a in again] == [a.to_dict() for a in once]
    chunked = make_pipeline()
    for i in range(0, len(events), 7):  # same events, fed in small batches with flushes between
        chunked.process(copy.deepcopy(events[i : i + 7]))
        chunked.flush()
    chunked.finish()
    assert sorted(a.alert_id for a in chunked.book.open.values()) == sorted(a.alert_id for a in once)


def _catalog(environment: str, classification: str) -> KeyCatalog:
    entry = {"match": KEY_PROD, "environment": environment, "classification": classification}
    return KeyCatalog.from_mapping({"keys": [entry]})


def test_severity_is_weighted_by_what_the_key_protects(make_pipeline) -> None:
    sweep = merged(normal_traffic(AT - 10 * MINUTE, AT + 5 * MINUTE),
                   spread(AT + MINUTE, 8, prefix="re", operation="ReEncrypt"))  # fmt: skip

    def alert_for(catalog: KeyCatalog):
        (alert,) = by_detector(run(make_pipeline(catalog=catalog), copy.deepcopy(sweep)), "new_operation")
        return alert

    prod = alert_for(_catalog("production", "restricted"))
    dev = alert_for(_catalog("development", "public"))
    plain = alert_for(KeyCatalog.from_mapping(None))
    assert plain.severity == Severity.MEDIUM  # the rule's own level, unknown/internal shift 0
    assert prod.severity == Severity.CRITICAL  # +1 production, +1 restricted
    assert dev.severity == Severity.LOW  # -1 development, -1 public, clamped at low
    assert (prod.environment, prod.classification) == ("production", "restricted")
    assert (dev.environment, dev.classification) == ("development", "public")
    assert prod.alert_id == dev.alert_id  # identity does not depend on the catalog


# --- forest micro-batches -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_forest(history) -> ForestModel:
    rows = np.asarray(history.rows, dtype=float)
    model, _ = fit_forest(rows, ForestSettings(n_estimators=10, max_samples=64))
    return model


def test_forest_scores_windows_in_batches(make_pipeline, small_forest: ForestModel, monkeypatch) -> None:
    sizes: list[int] = []
    real = ForestModel.score_above

    def spy(self: ForestModel, rows: np.ndarray, exact: np.ndarray | None = None) -> np.ndarray:
        sizes.append(len(rows))
        return real(self, rows, exact)

    monkeypatch.setattr(ForestModel, "score_above", spy)
    settings = DetectionSettings(window=WindowSettings(forest_batch_rows=16))
    pipe = make_pipeline(settings, forest=small_forest)
    run(pipe, normal_traffic(AT, AT + 2 * HOUR))
    assert sum(sizes) == pipe.stats.mature_windows > 16
    assert max(sizes) == 16 and all(1 <= s <= 16 for s in sizes)
    assert sizes.count(16) >= len(sizes) - 1  # only the last, flushed by finish(), may be smaller


def _odd_rows(history) -> np.ndarray:
    rows = np.asarray(history.rows, dtype=float)
    return np.vstack([rows, rows[:40] + 4.0, rows[:40] * -2.0, np.full((3, rows.shape[1]), np.nan)])


def test_forest_scores_are_scikit_learns_bit_for_bit(small_forest: ForestModel, history) -> None:
    rows = _odd_rows(history)
    assert np.array_equal(small_forest.score(rows), -small_forest.forest.score_samples(rows), equal_nan=True)


def test_forest_score_above_is_exact_wherever_a_finding_reads_it(small_forest: ForestModel, history) -> None:
    """Rows that cannot reach the threshold may stop early, with a bound that is still below it."""
    rows = _odd_rows(history)
    expected = -small_forest.forest.score_samples(rows)
    exact = np.zeros(len(rows), dtype=bool)
    exact[::7] = True
    for threshold in (small_forest.threshold, float(np.median(expected)), 0.0, 1.5, float("nan")):
        model = dataclasses.replace(small_forest, threshold=threshold)
        got = model.score_above(rows, exact)
        needed = ~(expected < threshold) | exact
        assert np.array_equal(got[needed], expected[needed]), threshold
        assert (got[~needed] < threshold).all() and (got[~needed] >= expected[~needed]).all(), threshold


def test_one_pass_tally_gives_the_same_features_as_a_fresh_one(history) -> None:
    """The pipeline hands each window's tally around; computing it afresh must not differ."""
    pipe = Pipeline(history.settings, profiles=copy.deepcopy(history.profiles))
    pipe.process(normal_traffic(AT, AT + 3 * MINUTE))
    windows = list(next(iter(pipe.open.values())).values())
    assert len(windows) > 1
    tallies = [tally_window(w.events) for w in windows]
    by_principal = principal_windows(windows, 50, tallies)
    assert by_principal == principal_windows(windows, 50)
    for win, tally in zip(windows, tallies, strict=True):
        given = window_features(win, pipe.profiles, by_principal, window_seconds=W, mature=True, tally=tally)
        fresh = window_features(win, pipe.profiles, by_principal, window_seconds=W, mature=True)
        assert given == fresh


def test_forest_flags_a_feature_that_never_varied_in_training(make_pipeline, small_forest) -> None:
    """History has no failed calls: errors are novel, and the guard says so in plain words."""
    assert small_forest.constant_[list(FEATURE_NAMES).index("error_share")]
    pipe = make_pipeline(forest=small_forest)
    errors = spread(AT + MINUTE, 3, prefix="err", outcome="error")
    (alert,) = by_detector(run(pipe, merged(normal_traffic(AT, AT + 5 * MINUTE), errors)), "isolation_forest")
    assert alert.severity >= Severity.MEDIUM and alert.principal == ORDERS_ID
    (reason,) = [r for r in alert.reasons if r.feature == "error_share"]
    assert "never anything but 0 in training" in reason.text


# --- bounded state --------------------------------------------------------------------------------


def test_idle_eviction_bounds_profiles_travel_and_alerts() -> None:
    pipe = _fresh(idle_evict_seconds=HOUR)
    largest = 0
    for i in range(240):  # a new key and a new caller every 5 minutes for 20 hours
        t = AT + i * 5 * MINUTE
        pipe.process([make_event(event_id=f"k{i}", ts=t, key_id=f"key-{i}", principal=f"role/app-{i}")])
        largest = max(largest, len(pipe.profiles.keys), len(pipe.profiles.principals), len(pipe.travel.last))
    pipe.finish()
    assert largest <= 2 * 12 + 2  # at most about two hours' worth (idle + eviction period)
    assert pipe.stats.evicted >= 2 * 200
    assert len(pipe.book.open) <= 30


def test_idle_eviction_bounds_per_caller_hour_counters(make_pipeline) -> None:
    """Off-hours keeps per-person running counts; they must not outlive the people they count."""
    settings = DetectionSettings(window=WindowSettings(idle_evict_seconds=HOUR))
    pipe = make_pipeline(settings)
    temps = [make_event(event_id=f"t{i}", ts=T_END + i * 3 * MINUTE + 7,
                        principal=f"arn:aws:iam::111122223333:user/temp{i}") for i in range(160)]  # fmt: skip
    run(pipe, merged(normal_traffic(T_END, T_END + 8 * HOUR), temps))
    assert pipe.stats.evicted > 0
    oldest = pipe.last_evict - settings.window.idle_evict_seconds - HOUR
    stale = [slot for slot, (hour, _, _) in pipe.ctx.hourly.items() if (hour + 1) * HOUR < oldest]
    assert stale == [], f"{len(stale)} of {len(pipe.ctx.hourly)} hour counters outlived eviction"


def test_a_key_in_continuous_use_is_not_forgotten(make_pipeline) -> None:
    """Windows kept out of the profile (quarantined) are still activity: the key must not be evicted."""
    settings = DetectionSettings(window=WindowSettings(idle_evict_seconds=2 * HOUR))
    pipe = make_pipeline(settings)
    intruder = "arn:aws:sts::111122223333:assumed-role/intruder/s"
    probe = [make_event(event_id=f"i{m}", ts=T_END + m * MINUTE + 30, principal=intruder) for m in range(180)]
    alerts = run(pipe, merged(normal_traffic(T_END, T_END + 3 * HOUR), probe))
    prof = pipe.profiles.keys.get(KEY_PROD)
    assert prof is not None and prof.first_ts < T_END, "three days of history on the key were evicted"
    (alert,) = by_detector(alerts, "new_principal")
    assert alert.count == 180


def test_history_profiles_know_the_organisation(history) -> None:
    """The fixture every rule test builds on: both keys mature, the admin and the callers learned."""
    keys = history.profiles.keys
    assert set(keys) == {KEY_PROD, KEY_DEV}
    assert set(keys[KEY_PROD].principals) == {ORDERS_ID, ALICE}
    assert set(keys[KEY_DEV].principals) == {REPORTS_ID, ALICE}
    assert set(keys[KEY_PROD].admin_principals) == {ALICE}
    assert history.profiles.org.countries.keys() == {"US", "DE"}
    assert keys[KEY_PROD].span_hours() == 72 and keys[KEY_PROD].events > 10_000
