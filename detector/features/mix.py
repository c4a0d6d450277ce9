"""What each caller does with a key: its data operations per clock hour, and the largest share each took.

A caller's record on a key is ``[hour, now, largest, busy_hours, before]``: the clock hour (since
the epoch) that ``now`` counts, the data calls per operation in that hour, the largest share each
operation took in any earlier busy hour (``busy`` data calls or more), how many busy hours there
were, and the calls of the hour before ``hour`` (empty if the caller was idle then). Lists and
dicts only, so profiles stay plain JSON.
"""

from __future__ import annotations

from typing import Any

from detector.domain.operations import OpClass, classify_cached
from detector.features.identity import principal_identity
from detector.features.window import WindowFeatures

MixRecord = list[Any]  # [hour, {op: calls}, {op: largest share}, busy hours, {op: calls} an hour before]


def caller_data_ops(f: WindowFeatures) -> dict[str, dict[str, int]]:
    """Data calls per caller identity and operation in a window (computed once, then kept on ``f``)."""
    if f.caller_ops is not None:
        return f.caller_ops
    win = f.window
    source = win.events[0].source if win.events else ""
    # a dict, not a set: its order is the window's, the same in every process (checkpoints compare)
    wanted = {op: c for op, c in f.operations.items() if classify_cached(source, op) is OpClass.DATA}
    out: dict[str, dict[str, int]] = {}
    if wanted and len(f.principals) == 1:
        out[next(iter(f.principals))] = wanted
    elif wanted:
        for ev in win.events:
            if (op := ev.operation) in wanted:
                ops = out.setdefault(principal_identity(ev.principal), {})
                ops[op] = ops.get(op, 0) + 1
    f.caller_ops = out
    return out


def fold(record: MixRecord, hour: int, busy: int, settled: int = 0, step: float = 1.0) -> bool:
    """Move ``record`` on to ``hour`` (a busy past hour joins the largest shares); False for a past hour.

    Once the record holds ``settled`` busy hours, one hour raises a largest share by ``step`` at
    most: a change is learned over hours, and one hour of it cannot explain itself.

    >>> rec = [5, {"Encrypt": 45, "Decrypt": 5}, {}, 0, {}]
    >>> fold(rec, 6, 30), rec
    (True, [6, {}, {'Encrypt': 0.9, 'Decrypt': 0.1}, 1, {'Encrypt': 45, 'Decrypt': 5}])
    >>> rec[1] = {"Decrypt": 40}
    >>> fold(rec, 7, 30, settled=1, step=0.1), rec[2], fold(rec, 5, 30)
    (True, {'Encrypt': 0.9, 'Decrypt': 0.2}, False)
    """
    if hour > record[0]:
        now: dict[str, int] = record[1]
        total = sum(now.values())
        if total >= busy:
            largest: dict[str, float] = record[2]
            limit = step if record[3] >= settled else 1.0
            for op, c in now.items():
                was = largest.get(op, 0.0)
                largest[op] = max(was, min(c / total, was + limit))
            record[3] += 1
        record[4] = now if hour == record[0] + 1 else {}
        record[0], record[1] = hour, {}
    return bool(hour == record[0])


def recent_spans(record: MixRecord, hour: int) -> list[tuple[dict[str, int], int]]:
    """The caller's calls per operation in ``hour`` so far, and with the hour before; each with its start.

    >>> recent_spans([6, {"Decrypt": 3}, {}, 1, {"Decrypt": 2, "Encrypt": 1}], 6)
    [({'Decrypt': 3}, 6), ({'Decrypt': 5, 'Encrypt': 1}, 5)]
    >>> recent_spans([5, {"Decrypt": 3}, {}, 1, {}], 6), recent_spans([3, {"Decrypt": 3}, {}, 1, {}], 6)
    ([({}, 6), ({'Decrypt': 3}, 5)], [({}, 6)])
    """
    if record[0] == hour:
        spans = [(dict(record[1]), hour)]
        if record[4]:
            both = dict(record[4])
            for op, c in record[1].items():
                both[op] = both.get(op, 0) + c
            spans.append((both, hour - 1))
        return spans
    if record[0] == hour - 1:
        return [({}, hour), (dict(record[1]), hour - 1)]
    return [({}, hour)]


def learn_mix(
    mixes: dict[str, MixRecord],
    by_caller: dict[str, dict[str, int]],
    hour: int,
    busy: int,
    cap: int,
    settled: int = 0,
    step: float = 1.0,
) -> None:
    """Count a window's data calls into each caller's record (at most ``cap`` callers a key)."""
    for ident, ops in by_caller.items():
        record = mixes.get(ident)
        if record is None:
            if len(mixes) >= cap:
                continue
            record = mixes[ident] = [hour, {}, {}, 0, {}]
        if fold(record, hour, busy, settled, step):
            now = record[1]
            for op, c in ops.items():
                now[op] = now.get(op, 0) + c
