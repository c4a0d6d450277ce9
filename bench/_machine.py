"""What the benchmarks say about the machine: core pinning, load, per-core busy time, RSS."""

from __future__ import annotations

import os
import time
from pathlib import Path

_PROC_STAT = Path("/proc/stat")
_PROC_STATUS = Path("/proc/self/status")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def pin_to_core(cpu: int) -> str:
    """Pin this process to ``cpu`` where the OS allows it; return what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity on this OS)"
    os.sched_setaffinity(0, {cpu})
    return f"pinned to cpu{cpu} (os.sched_setaffinity)"


def loadavg() -> str:
    """The 1/5/15-minute load averages, or 'n/a'."""
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "n/a"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def core_ticks() -> dict[str, tuple[int, int]]:
    """Busy and total clock ticks of every core from /proc/stat (empty where unavailable)."""
    if not _PROC_STAT.is_file():
        return {}
    out = {}
    for line in _PROC_STAT.read_text().splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        ticks = [int(f) for f in fields[:8]]
        idle = ticks[3] + ticks[4]  # idle + iowait
        out[name] = (sum(ticks) - idle, sum(ticks))
    return out


def busy_shares(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> dict[str, float]:
    """Share of time each core was busy between two :func:`core_ticks` readings."""
    shares = {}
    for name, (busy, total) in after.items():
        b0, t0 = before.get(name, (busy, total))
        shares[name] = (busy - b0) / (total - t0) if total > t0 else 0.0
    return shares


def core_busy_now(seconds: float = 1.0) -> str:
    """Each core's busy share over the next ``seconds`` (this process sleeps meanwhile)."""
    before = core_ticks()
    time.sleep(seconds)
    shares = busy_shares(before, core_ticks())
    return ", ".join(f"{name} {share:.0%}" for name, share in sorted(shares.items())) or "n/a"


def ticks_to_seconds(ticks: int) -> float:
    """Clock ticks of /proc/stat in seconds."""
    return ticks / _TICKS


def rss_mb() -> float:
    """Resident set size of this process in MiB (0.0 where /proc is unavailable)."""
    if not _PROC_STATUS.is_file():
        return 0.0
    for line in _PROC_STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
