"""A pipeline's state as bytes and back, so a partition's detector can move to another process.

The streaming consumer checkpoints one :class:`~detector.pipeline.Pipeline` per Kafka partition
(open and late windows, watermark, travel memory, rule state, open alert episodes and the
profiles learned so far) together with the offset it covers; the next owner of the partition
restores it and replays from that offset. The format is versioned, compressed JSON: restoring
runs no code from the blob, so a store an attacker can write to cannot execute anything here.
Snapshots are taken between batches, after :meth:`Pipeline.flush`, when nothing waits for the
forest.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from msgspec.structs import astuple

from detector.domain.alerts import Alert, Reason, Severity
from detector.domain.errors import KeyWatchError
from detector.domain.events import Event
from detector.features.profiles import Profiles
from detector.features.seasonal import Expectation, VolumeState
from detector.features.travel import _Seen
from detector.features.window import KeyWindow, TravelHop
from detector.pipeline import Pipeline

STATE_VERSION = 1
_ALERT_FIELDS = Alert.__slots__


class StateError(KeyWatchError):
    """A checkpoint that cannot be restored (corrupt, another version or window size)."""


def snapshot(pipe: Pipeline) -> bytes:
    """Serialize everything the pipeline would need to carry on exactly where it is."""
    if pipe.pending:
        raise StateError("flush the pipeline before taking a snapshot (windows wait for the forest)")
    state = {
        "version": STATE_VERSION,
        "window_seconds": pipe.W,
        "max_ts": pipe.max_ts,
        "closed_until": pipe.closed_until,
        "next_close": pipe.next_close,
        "last_evict": pipe.last_evict,
        "open": _buckets(pipe.open),
        "late": _buckets(pipe.late),
        "travel": {ident: list(seen) for ident, seen in pipe.travel.last.items()},
        "drift": {k: list(v) for k, v in pipe.ctx.drift.items()},
        "hourly": {k: list(v) for k, v in pipe.ctx.hourly.items()},
        "volume": {k: v.to_list() for k, v in pipe.ctx.volume.items()},
        "objects": pipe.objects.seen,
        "denied_keys": pipe.denied_keys.seen,
        "seasonal": {k: [h, *astuple_expectation(e)] for k, (h, e) in pipe.ctx.seasonal.items()},
        "book": [[scope, det, _alert(a)] for (scope, det), a in pipe.book.open.items()],
        "surges": {key: list(slot) for key, slot in pipe.book.surges.items()},
        "profiles": pipe.profiles.to_dict(),
    }
    return zlib.compress(json.dumps(state, separators=(",", ":")).encode(), 3)


def restore(pipe: Pipeline, blob: bytes) -> Pipeline:
    """Load a snapshot into a freshly built pipeline (same settings) and return it."""
    try:
        state = json.loads(zlib.decompress(blob))
    except (zlib.error, ValueError) as exc:
        raise StateError(f"checkpoint is not a KeyWatch pipeline state: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise StateError(f"checkpoint has state version {state.get('version')!r}; expected {STATE_VERSION}")
    if state["window_seconds"] != pipe.W:
        raise StateError(
            f"checkpoint was taken with {state['window_seconds']} s windows; this run uses {pipe.W} s"
        )
    try:
        pipe.max_ts = state["max_ts"]
        pipe.closed_until = state["closed_until"]
        pipe.next_close = state["next_close"]
        pipe.last_evict = state["last_evict"]
        pipe.open = _unbuckets(state["open"])
        pipe.late = _unbuckets(state["late"])
        pipe.travel.last = {ident: _Seen(*seen) for ident, seen in state["travel"].items()}
        pipe.profiles = Profiles.from_dict(state["profiles"])
        pipe.ctx.profiles = pipe.profiles
        pipe.ctx.drift = {k: (v[0], v[1]) for k, v in state["drift"].items()}
        pipe.ctx.hourly = {k: (v[0], v[1], v[2]) for k, v in state["hourly"].items()}
        # Checkpoints from before the seasonal volume test start it afresh.
        pipe.ctx.volume = {k: _volume(v) for k, v in state.get("volume", {}).items()}
        pipe.objects.seen = {p: dict(held) for p, held in state.get("objects", {}).items()}
        pipe.denied_keys.seen = {p: dict(held) for p, held in state.get("denied_keys", {}).items()}
        pipe.ctx.seasonal = {k: (v[0], _expectation(v[1:])) for k, v in state.get("seasonal", {}).items()}
        pipe.book.open = {(scope, det): _unalert(a) for scope, det, a in state["book"]}
        pipe.book.surges = {key: (scope, det) for key, (scope, det) in state.get("surges", {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise StateError(f"checkpoint is incomplete or malformed: {type(exc).__name__}: {exc}") from None
    return pipe


def _volume(row: list[Any]) -> VolumeState:
    last, score, calls, expected, windows, recent_calls, recent_expected, caller, reported = row
    return VolumeState(last, score, calls, expected, int(windows), recent_calls, recent_expected, caller,
                       bool(reported))  # fmt: skip


def _expectation(row: list[float]) -> Expectation:
    mean, dispersion, level_spread, weeks, days = row
    return Expectation(mean, dispersion, level_spread, int(weeks), int(days))


def astuple_expectation(e: Expectation) -> list[float]:
    """An expectation as a JSON list, in field order."""
    return [e.mean, e.dispersion, e.level_spread, e.weeks, e.days]


def _buckets(buckets: dict[float, dict[str, KeyWindow]]) -> list[list[Any]]:
    return [[start, [_window(w) for w in bucket.values()]] for start, bucket in buckets.items()]


def _unbuckets(rows: list[list[Any]]) -> dict[float, dict[str, KeyWindow]]:
    out: dict[float, dict[str, KeyWindow]] = {}
    for start, windows in rows:
        bucket = out[float(start)] = {}
        for w in windows:
            win = _unwindow(w)
            bucket[win.key_id] = win
    return out


def _window(win: KeyWindow) -> dict[str, Any]:
    hop = win.travel
    return {
        "key_id": win.key_id,
        "start": win.start,
        "end": win.end,
        "events": [astuple(ev) for ev in win.events],  # in field order, as Event(*row) takes them
        "travel": None if hop is None else [getattr(hop, f) for f in TravelHop.__slots__],
    }


def _unwindow(data: dict[str, Any]) -> KeyWindow:
    hop = data["travel"]
    travel = None
    if hop is not None:
        principal, kmh, km, minutes, from_country, to_country, ids = hop
        travel = TravelHop(principal, kmh, km, minutes, from_country, to_country, (ids[0], ids[1]))
    return KeyWindow(
        data["key_id"], data["start"], data["end"], [Event(*row) for row in data["events"]], travel
    )


def _alert(alert: Alert) -> dict[str, Any]:
    out = {f: getattr(alert, f) for f in _ALERT_FIELDS}
    out["severity"] = int(alert.severity)
    out["reasons"] = [[r.feature, r.value, r.baseline, r.text] for r in alert.reasons]
    return out


def _unalert(data: dict[str, Any]) -> Alert:
    fields = dict(data)
    fields["severity"] = Severity(fields["severity"])
    fields["reasons"] = [Reason(*r) for r in fields["reasons"]]
    return Alert(**fields)
