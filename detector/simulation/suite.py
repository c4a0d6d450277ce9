"""Detection measured the way it cannot be overfit: two generators, tuning and validation seeds.

Each run simulates a world, trains a model on its history, replays its test span and scores the
alerts against the labels. Thresholds are chosen on :data:`TUNING_SEEDS` only; figures are
reported on :data:`VALIDATION_SEEDS`, per generator, per family, at full and at reduced attack
strength. The ablation re-scores the same runs with one detector's findings left out (the rest
merged into alerts again), so it shows what each detector adds that no other one catches (a
detector's quarantine of the windows it flags still shapes what the others learn).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from detector.alertbook import book_for
from detector.config import DetectionSettings
from detector.domain.alerts import Alert, Finding
from detector.domain.catalog import KeyCatalog
from detector.evaluation import EvaluationReport, evaluate
from detector.pipeline import Pipeline
from detector.simulation.classic import simulate
from detector.simulation.result import Simulation
from detector.training import train

TUNING_SEEDS: tuple[int, ...] = (1, 2)
VALIDATION_SEEDS: tuple[int, ...] = (101, 102, 103)
STRENGTHS: tuple[float, ...] = (1.0, 0.3)


class Generator(Protocol):
    """A traffic generator: a world of ``keys`` keys, clean history, then a labelled test span."""

    def __call__(
        self, *, keys: int, history_days: float, test_days: float, seed: int, strength: float
    ) -> Simulation: ...


def _classic(*, keys: int, history_days: float, test_days: float, seed: int, strength: float) -> Simulation:
    return simulate(
        keys=keys, days=history_days + test_days, test_days=test_days, seed=seed, strength=strength
    )


def _fleet(*, keys: int, history_days: float, test_days: float, seed: int, strength: float) -> Simulation:
    from detector.simulation.fleet import generate

    sim: Simulation = generate(
        keys=keys, history_days=history_days, test_days=test_days, seed=seed, strength=strength
    )
    return sim


GENERATORS: dict[str, Generator] = {"classic": _classic, "fleet": _fleet}


@dataclass(slots=True, frozen=True)
class World:
    """How big a simulated world is."""

    keys: int = 60
    history_days: float = 7.0
    test_days: float = 1.0


@dataclass(slots=True)
class RunResult:
    """One generator, seed and strength: its labels, alerts and report."""

    generator: str
    seed: int
    strength: float
    labels: dict[str, Any]
    alerts: list[Alert]
    report: EvaluationReport
    window_seconds: float
    events: int
    seconds: float
    findings: list[Finding] = field(default_factory=list)
    settings: DetectionSettings | None = None
    catalog: KeyCatalog | None = None

    def without(self, detector: str) -> EvaluationReport:
        """The report with one detector's findings left out and the others merged into alerts again."""
        if self.settings is None or self.catalog is None:
            kept = [a for a in self.alerts if a.detector != detector]
        else:
            book = book_for(self.settings, self.catalog)
            merged = {}
            for found in self.findings:
                if found.detector != detector:
                    alert = book.add(found)
                    merged[alert.alert_id] = alert
            kept = list(merged.values())
        return evaluate(self.labels, kept, window_seconds=self.window_seconds)


def run_world(
    generator: str, seed: int, strength: float, settings: DetectionSettings, world: World = World()
) -> RunResult:
    """Simulate, train on the history, replay the test span and score it."""
    started = time.perf_counter()
    sim = GENERATORS[generator](
        keys=world.keys, history_days=world.history_days, test_days=world.test_days, seed=seed,
        strength=strength,
    )  # fmt: skip
    model = train(sim.history, settings)
    catalog = KeyCatalog.from_mapping(sim.catalog, settings.severity.catalog_defaults.model_dump())
    pipe = Pipeline(
        settings, profiles=model.profiles, forest=model.forest, catalog=catalog, keep_findings=True
    )
    alerts = replay(pipe, sim.test)
    width = settings.window.seconds
    report = evaluate(sim.labels, alerts, window_seconds=width)
    return RunResult(generator, seed, strength, sim.labels, alerts, report, width,
                     len(sim.history) + len(sim.test), time.perf_counter() - started, pipe.found,
                     settings, catalog)  # fmt: skip


def replay(pipe: Pipeline, events: Iterable[Any]) -> list[Alert]:
    """Every alert a pipeline raises over ``events``, in its final state."""
    pipe.process(events)
    found = {a.alert_id: a for a in pipe.finish()}
    for a in pipe.book.open.values():
        found.setdefault(a.alert_id, a)
    return sorted(found.values(), key=lambda a: (a.first_window_start, a.key_id, a.detector))


@dataclass(slots=True)
class FamilyRow:
    """One family's results pooled over seeds."""

    family: str
    kind: str
    instances: int = 0
    detected: int = 0
    ttd_seconds: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float:
        """Share of instances an alert matched."""
        return self.detected / self.instances if self.instances else 0.0


@dataclass(slots=True)
class Summary:
    """Runs of one generator at one strength, pooled."""

    generator: str
    strength: float
    seeds: tuple[int, ...]
    families: dict[str, FamilyRow]
    attacks: int
    detected: int
    false_alerts: int
    key_hours: float
    benign_alerts: int
    ttd_seconds: list[float]

    @property
    def recall(self) -> float:
        """Attack instances detected, over all attack instances."""
        return self.detected / self.attacks if self.attacks else 0.0

    @property
    def false_per_1000_key_hours(self) -> float:
        """False alerts per 1000 key-hours of exposure."""
        return 1000.0 * self.false_alerts / self.key_hours if self.key_hours else 0.0

    @property
    def median_ttd_seconds(self) -> float | None:
        """Median time to detect over detected attack instances."""
        return statistics.median(self.ttd_seconds) if self.ttd_seconds else None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "generator": self.generator, "strength": self.strength, "seeds": list(self.seeds),
            "recall": round(self.recall, 4), "attacks": self.attacks, "detected": self.detected,
            "false_alerts": self.false_alerts, "key_hours": round(self.key_hours, 1),
            "false_per_1000_key_hours": round(self.false_per_1000_key_hours, 3),
            "median_ttd_seconds": self.median_ttd_seconds, "benign_alerts": self.benign_alerts,
            "families": {
                name: {"kind": row.kind, "instances": row.instances, "detected": row.detected,
                       "recall": round(row.recall, 4),
                       "median_ttd_seconds": statistics.median(row.ttd_seconds) if row.ttd_seconds else None}
                for name, row in sorted(self.families.items())
            },
        }  # fmt: skip


def summarise(
    runs: Sequence[RunResult], report_of: Callable[[RunResult], EvaluationReport] | None = None
) -> Summary:
    """Pool runs of one generator and strength (optionally re-scored, e.g. for an ablation)."""
    first = runs[0]
    families: dict[str, FamilyRow] = {}
    ttd: list[float] = []
    attacks = detected = false_alerts = benign = 0
    key_hours = 0.0
    for run in runs:
        report = report_of(run) if report_of else run.report
        for row in report.rows:
            fam = families.setdefault(row.scenario, FamilyRow(row.scenario, row.kind))
            fam.instances += row.instances
            fam.detected += row.detected
            if row.median_ttd_windows is not None and row.kind == "attack":
                fam.ttd_seconds.append(row.median_ttd_windows * run.window_seconds)
            if row.kind == "attack":
                attacks += row.instances
                detected += row.detected
        ttd += [t * run.window_seconds for t in report.ttd_windows]
        false_alerts += report.false_alerts
        benign += report.benign_alerts
        key_hours += report.key_hours
    return Summary(first.generator, first.strength, tuple(r.seed for r in runs), families, attacks, detected,
                   false_alerts, key_hours, benign, ttd)  # fmt: skip


def ablation(runs: Sequence[RunResult], detectors: Iterable[str]) -> dict[str, Summary]:
    """For each detector, the pooled summary without its alerts."""
    return {name: summarise(runs, lambda run, name=name: run.without(name)) for name in detectors}  # type: ignore[misc]


def format_summary(summary: Summary) -> str:
    """Per-family table followed by the pooled figures."""
    head = f"{'family':<28} {'kind':<7} {'inst':>4} {'det':>4} {'recall':>6} {'ttd s':>6}"
    lines = [f"{summary.generator} at strength {summary.strength:g}, seeds {list(summary.seeds)}", head,
             "-" * len(head)]  # fmt: skip
    rows = sorted(summary.families.values(), key=lambda r: (r.kind != "attack", r.family))
    for row in rows:
        ttd = f"{statistics.median(row.ttd_seconds):.0f}" if row.ttd_seconds else "-"
        lines.append(f"{row.family:<28} {row.kind:<7} {row.instances:>4} {row.detected:>4} "
                     f"{row.recall:>6.2f} {ttd:>6}")  # fmt: skip
    median = summary.median_ttd_seconds
    lines += [
        "-" * len(head),
        f"recall {summary.recall:.2f} ({summary.detected}/{summary.attacks}), "
        f"false alerts {summary.false_per_1000_key_hours:.2f} per 1000 key-h ({summary.false_alerts}), "
        f"median time to detect {'-' if median is None else f'{median:.0f} s'}, "
        f"alerts on benign confounders {summary.benign_alerts}",
    ]
    return "\n".join(lines)
