"""Terminal output: progress bars, step timings and alert tables (rich, markup-safe)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from detector.domain.alerts import Alert
from detector.domain.incidents import Incident

console = Console(highlight=False)
if not console.is_terminal:  # files and pipes: wide enough for a table of reasons
    console = Console(highlight=False, width=150)
err_console = Console(stderr=True, highlight=False)


@contextmanager
def progress(total: int, label: str, *, enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar on stderr only when ``enabled`` (a terminal)."""
    if not enabled:
        yield lambda n: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


class Steps:
    """Prints ``step ... done in N s`` lines for the demo."""

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step."""
        console.print(f"[bold]== {escape(name)}[/bold]")
        started = time.perf_counter()
        yield
        console.print(f"   {escape(name)} took {time.perf_counter() - started:.1f} s")


def top_alerts(alerts: list[Alert], n: int) -> None:
    """The ``n`` most severe alerts with their reasons in plain words."""
    ranked = _varied(sorted(alerts, key=lambda a: (-int(a.severity), -a.score)), n)
    table = Table(title=f"Top {len(ranked)} of {len(alerts)} alerts", show_lines=True)
    for col, width in (("severity", 8), ("detector", 18), ("key / principal", 28), ("window (UTC)", 13)):
        table.add_column(col, overflow="fold", max_width=width)
    table.add_column("why", overflow="fold", ratio=1)
    for a in ranked:
        who = escape(_short(a.key_id, 28)) + ("\n" + escape(_short(a.principal, 28)) if a.principal else "")
        when = f"{_hm(a.first_window_start)}-{_hm(a.window_end)} ({a.count}w)"
        why = "\n".join(escape(r.text) for r in a.reasons[:3])
        table.add_row(a.severity.label, escape(a.detector), who, when, why)
    console.print(table)


def alerts_table(alerts: list[Alert], title: str) -> None:
    """Stored alerts, one row each, in the order given."""
    table = Table(title=title)
    for col, width in (("severity", 8), ("detector", 18), ("key / principal", 40), ("window (UTC)", 24)):
        table.add_column(col, overflow="fold", max_width=width)
    table.add_column("score", justify="right")
    table.add_column("alert", overflow="fold", max_width=12)
    for a in alerts:
        who = escape(_short(a.key_id, 40)) + ("\n" + escape(_short(a.principal, 40)) if a.principal else "")
        when = f"{_ymdhm(a.first_window_start)} +{(a.window_end - a.first_window_start) / 60:.0f} min"
        table.add_row(a.severity.label, escape(a.detector), who, when, f"{a.score:.3f}", a.alert_id[:12])
    console.print(table)


def incidents_table(incidents: list[Incident], title: str) -> None:
    """Incidents, one row each, in the order given."""
    table = Table(title=title)
    for col, width in (("incident", 12), ("status", 14), ("severity", 8), ("title", 60)):
        table.add_column(col, overflow="fold", max_width=width)
    for col in ("alerts", "keys"):
        table.add_column(col, justify="right")
    table.add_column("assignee", overflow="fold", max_width=16)
    table.add_column("last seen (UTC)")
    for i in incidents:
        counts = (str(i.alert_count), str(len(i.key_ids)))
        table.add_row(i.incident_id[:12], i.status.value, i.severity.label, escape(i.title), *counts,
                      escape(i.assignee or "-"), _ymdhm(i.last_seen))  # fmt: skip
    console.print(table)


def _varied(ranked: list[Alert], n: int, per_detector: int = 2) -> list[Alert]:
    """The first ``n`` alerts, at most ``per_detector`` of one detector unless too few others."""
    picked: list[Alert] = []
    seen: dict[str, int] = {}
    for a in ranked:
        if len(picked) < n and seen.get(a.detector, 0) < per_detector:
            picked.append(a)
            seen[a.detector] = seen.get(a.detector, 0) + 1
    rest = [a for a in ranked if a not in picked]
    return (picked + rest[: n - len(picked)])[:n]


def _short(text: str | None, limit: int = 60) -> str:
    text = text or ""
    return text if len(text) <= limit else "…" + text[-limit + 1 :]


def _ymdhm(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts))


def _hm(ts: float) -> str:
    return time.strftime("%m-%d %H:%M", time.gmtime(ts))
