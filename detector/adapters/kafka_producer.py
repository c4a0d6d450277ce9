"""Producing to Kafka: canonical events keyed by key id (so a key stays on one partition)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence

import orjson
from kafka import KafkaProducer

from detector.domain.events import Event


def event_producer(bootstrap: str, **overrides: object) -> KafkaProducer:
    """A producer tuned for throughput: batches of up to 1 MiB, 10 ms linger."""
    config: dict[str, object] = {
        "bootstrap_servers": bootstrap,
        "acks": "all",
        "linger_ms": 10,
        "batch_size": 1_048_576,
        "max_request_size": 4 * 1_048_576,
    }
    config.update(overrides)
    return KafkaProducer(**config)


def send_events(producer: KafkaProducer, topic: str, events: Iterable[Event]) -> int:
    """Send canonical events, keyed by key id; return how many (call ``flush`` to wait)."""
    n = 0
    for ev in events:
        producer.send(topic, orjson.dumps(ev.to_dict()), key=ev.key_id.encode())
        n += 1
    return n


def send_raw(producer: KafkaProducer, topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Send raw records as they are (``(key, value)`` pairs); return how many."""
    n = 0
    for key, value in values:
        producer.send(topic, value, key=key)
        n += 1
    return n


def paced(events: Sequence[Event], speedup: float, chunk_seconds: float = 0.05) -> Iterator[list[Event]]:
    """Yield events in chunks at ``speedup`` times their own pace (event time → wall clock)."""
    if not events:
        return
    t0_event, t0_wall = events[0].ts, time.monotonic()
    i = 0
    while i < len(events):
        due_event_time = t0_event + (time.monotonic() - t0_wall + chunk_seconds) * speedup
        j = i
        while j < len(events) and events[j].ts <= due_event_time:
            j += 1
        if j > i:
            yield list(events[i:j])
            i = j
        else:
            time.sleep(max(0.0, (events[i].ts - t0_event) / speedup - (time.monotonic() - t0_wall)))
