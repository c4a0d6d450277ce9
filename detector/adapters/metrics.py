"""Prometheus metrics of the streaming consumer, in a registry of their own."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


@dataclass
class ConsumerMetrics:
    """Counters, the lag per partition and the batch latency of one ``keywatch run`` process."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        """Create the metrics in :attr:`registry`."""
        r = self.registry
        self.messages = Counter("keywatch_messages", "Kafka messages consumed", ["partition"], registry=r)
        self.events = Counter("keywatch_events", "Canonical events detected on", registry=r)
        self.skipped = Counter("keywatch_skipped_records", "Records of other services skipped", registry=r)
        self.alerts = Counter("keywatch_alerts", "Alerts created or updated", ["detector"], registry=r)
        self.dead_letters = Counter(
            "keywatch_dead_letters", "Messages sent to the dead-letter topic", registry=r
        )
        self.late = Gauge("keywatch_late_events", "Events that arrived after their window closed", registry=r)
        self.lag = Gauge(
            "keywatch_consumer_lag", "Messages behind the partition's end", ["partition"], registry=r
        )
        self.checkpoints = Counter("keywatch_checkpoints", "Partition states saved to the store", registry=r)
        self.batch_seconds = Histogram(
            "keywatch_batch_seconds",
            "Time from poll to committed offsets, per batch",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )

    def serve(self, host: str, port: int) -> None:
        """Expose the registry over HTTP (``/metrics``); port 0 serves nothing."""
        if port:
            start_http_server(port, addr=host, registry=self.registry)
