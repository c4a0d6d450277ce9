"""Score alerts against labelled scenarios: recall, time to detect, false alerts per key-hour."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from detector.domain.alerts import Alert
from detector.domain.events import parse_ts
from detector.features.identity import principal_identity


@dataclass(slots=True, frozen=True)
class ScenarioRow:
    """Detection results for one scenario type (for benign rows, ``detected`` counts alerted instances)."""

    scenario: str
    kind: str
    instances: int
    detected: int
    recall: float
    median_ttd_windows: float | None


@dataclass(slots=True)
class EvaluationReport:
    """Per-scenario rows and overall figures; recall and TTD cover attack instances only."""

    rows: list[ScenarioRow]
    overall_recall: float
    false_alerts: int
    key_hours: float
    false_per_1000_key_hours: float
    median_ttd_windows: float | None
    benign_alerted: int
    alerts_total: int
    ttd_windows: list[int] = field(default_factory=list)  # per detected attack instance
    benign_alerts: int = 0  # alerts that match a benign instance and no attack

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return asdict(self)

    def instance_precision(self) -> float | None:
        """Of the labelled instances some alert matched, the share that are attacks; None when none was.

        With labels made from analysts' verdicts (true positives as attacks, false positives as
        benign instances) this is the precision on judged alerts: alerts nobody judged count
        neither way, unlike ``false_alerts``.

        >>> row = ScenarioRow
        >>> report = EvaluationReport([row("verdict_true_positive", "attack", 4, 3, 0.75, 1.0),
        ...                            row("verdict_false_positive", "benign", 2, 1, 0.5, None)],
        ...                           0.75, 0, 1.0, 0.0, 1.0, 1, 4)
        >>> report.instance_precision()
        0.75
        """
        hits = sum(r.detected for r in self.rows if r.kind == "attack")
        benign = sum(r.detected for r in self.rows if r.kind != "attack")
        return hits / (hits + benign) if hits + benign else None

    def format_table(self) -> str:
        """Plain-text table, one line per scenario, then the totals."""
        head = f"{'scenario':<24} {'kind':<7} {'inst':>4} {'det':>4} {'recall':>6} {'ttd':>5}"
        lines = [head, "-" * len(head)]
        for r in self.rows:
            ttd = "-" if r.median_ttd_windows is None else f"{r.median_ttd_windows:g}"
            lines.append(
                f"{r.scenario:<24} {r.kind:<7} {r.instances:>4} {r.detected:>4} {r.recall:>6.2f} {ttd:>5}"
            )
        ttd_all = "-" if self.median_ttd_windows is None else f"{self.median_ttd_windows:g}"
        lines += [
            "-" * len(head),
            f"overall recall {self.overall_recall:.2f}, median time to detect {ttd_all} windows",
            f"alerts {self.alerts_total}, false alerts {self.false_alerts} "
            f"({self.false_per_1000_key_hours:.2f} per 1000 key-hours over {self.key_hours:g} key-hours)",
            f"benign surprises that drew an alert: {self.benign_alerted}",
        ]
        return "\n".join(lines)


@dataclass(slots=True, frozen=True)
class _Instance:
    scenario: str
    kind: str
    key_ids: frozenset[str]
    principal: str | None
    start: float
    end: float


def evaluate(
    labels: Mapping[str, Any],
    alerts: Iterable[Alert],
    *,
    window_seconds: float = 60,
    grace_windows: int = 5,
    key_hours: float | None = None,
) -> EvaluationReport:
    """Match alerts to labelled scenario instances and summarise detection quality.

    Parameters
    ----------
    labels
        ``{"meta": {...}, "scenarios": [{"scenario", "kind", "key_ids", "principal", "start", "end"}]}``
        as written by :func:`detector.simulation.classic.simulate`. ``kind`` defaults to ``"attack"``,
        ``principal`` to none; a single ``key_id`` is accepted for ``key_ids``; times are RFC 3339
        strings or epoch seconds.
    alerts
        Alerts to score. An alert spans ``[first_window_start, window_end)`` because alerts merge
        consecutive windows.
    window_seconds, grace_windows
        An alert matches an instance when its span overlaps
        ``[start, end + grace_windows * window_seconds]`` and it names one of the instance's keys or,
        when the label has one, its principal.
    key_hours
        Exposure for the false-alert rate. When omitted it is ``meta.key_count`` times the hours
        from ``meta.test_start`` to ``meta.test_end``. Labels from real incidents often lack those
        fields: then the key count is the number of distinct key ids in the alerts and the labels,
        and the span is ``meta.test_start``..``meta.test_end`` when present, else from the earliest
        labelled start to the latest labelled end plus the grace period.

    Returns
    -------
    EvaluationReport
        Time to detect counts windows from the instance start to the end of the first window of
        the earliest matching alert (``first_window_start`` plus the alert's window length), rounded
        up, at least 1. Alerts that match no attack instance are false alerts, including those that
        only match benign instances (which also count in ``benign_alerted``). Recall is 0 when there
        are no attack instances, and the false-alert rate is 0 when there are no key-hours.

    Examples
    --------
    >>> from detector.domain.alerts import Alert, Severity
    >>> labels = {"meta": {"key_count": 2, "test_start": "1970-01-01T00:00:00Z",
    ...                    "test_end": "1970-01-01T10:00:00Z"},
    ...           "scenarios": [{"scenario": "exfiltration_spike", "kind": "attack", "key_ids": ["k1"],
    ...                          "principal": "p1", "start": 600.0, "end": 900.0}]}
    >>> def alert(key, start):
    ...     return Alert("a", key, None, "volume", Severity.HIGH, 1.0, start, start + 60, start, [], [])
    >>> report = evaluate(labels, [alert("k1", 660.0), alert("k2", 660.0)])
    >>> report.overall_recall, report.median_ttd_windows, report.false_alerts, report.key_hours
    (1.0, 2.0, 1, 20.0)
    """
    instances = [_instance(s) for s in labels.get("scenarios", [])]
    alert_list = list(alerts)
    grace = grace_windows * window_seconds
    first_hit: dict[int, float] = {}
    false_alerts = benign_alerts = 0
    for alert in alert_list:
        hits = [i for i, inst in enumerate(instances) if _matches(alert, inst, grace)]
        for i in hits:
            seen = alert.first_window_start + (alert.window_end - alert.window_start)
            first_hit[i] = min(first_hit.get(i, math.inf), seen)
        false = not any(instances[i].kind == "attack" for i in hits)
        false_alerts += false
        benign_alerts += false and bool(hits)
    ttd = {i: max(1, math.ceil((t - instances[i].start) / window_seconds)) for i, t in first_hit.items()}
    rows = _rows(instances, ttd)
    attacks = [i for i, inst in enumerate(instances) if inst.kind == "attack"]
    found = [ttd[i] for i in attacks if i in ttd]
    exposure = key_hours if key_hours is not None else _key_hours(labels, instances, alert_list, grace)
    return EvaluationReport(
        rows=rows,
        overall_recall=len(found) / len(attacks) if attacks else 0.0,
        false_alerts=false_alerts,
        key_hours=exposure,
        false_per_1000_key_hours=1000.0 * false_alerts / exposure if exposure > 0 else 0.0,
        median_ttd_windows=float(statistics.median(found)) if found else None,
        benign_alerted=sum(1 for i in ttd if instances[i].kind != "attack"),
        alerts_total=len(alert_list),
        ttd_windows=found,
        benign_alerts=benign_alerts,
    )


def _time(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else parse_ts(str(value))


def _instance(raw: Mapping[str, Any]) -> _Instance:
    keys = raw.get("key_ids")
    if keys is None:
        keys = [raw["key_id"]] if raw.get("key_id") else []
    return _Instance(
        scenario=str(raw.get("scenario", raw.get("id", "unknown"))),
        kind=str(raw.get("kind", "attack")),
        key_ids=frozenset(str(k) for k in keys),
        principal=raw.get("principal"),
        start=_time(raw["start"]),
        end=_time(raw.get("end", raw["start"])),
    )


def _matches(alert: Alert, inst: _Instance, grace: float) -> bool:
    overlaps = alert.first_window_start <= inst.end + grace and alert.window_end > inst.start
    same_actor = alert.key_id in inst.key_ids or (
        inst.principal is not None
        and alert.principal is not None
        and principal_identity(alert.principal) == principal_identity(inst.principal)
    )
    return overlaps and same_actor


def _rows(instances: Sequence[_Instance], ttd: Mapping[int, int]) -> list[ScenarioRow]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, inst in enumerate(instances):
        groups.setdefault((inst.scenario, inst.kind), []).append(i)
    rows = []
    for (scenario, kind), members in sorted(groups.items(), key=lambda g: (g[0][1] != "attack", g[0][0])):
        times = [ttd[i] for i in members if i in ttd]
        median = float(statistics.median(times)) if times else None
        rows.append(ScenarioRow(scenario, kind, len(members), len(times), len(times) / len(members), median))
    return rows


def _key_hours(
    labels: Mapping[str, Any], instances: Sequence[_Instance], alerts: Sequence[Alert], grace: float
) -> float:
    """Key-hours of exposure from the label metadata, or from the keys and span seen (see evaluate)."""
    meta = labels.get("meta") or {}
    if meta.get("test_start") is not None and meta.get("test_end") is not None:
        start, end = _time(meta["test_start"]), _time(meta["test_end"])
    elif instances:
        start, end = min(i.start for i in instances), max(i.end for i in instances) + grace
    else:
        return 0.0
    count = meta.get("key_count")
    if count is None:
        count = len({k for i in instances for k in i.key_ids} | {a.key_id for a in alerts})
    return float(count) * (end - start) / 3600.0
