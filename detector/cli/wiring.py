"""The builders every command shares: settings, the key catalog, geolocation, the store, the runner.

Commands are thin: they parse flags, call these to build adapters, and hand them to the core.
Nothing here reads ``argparse`` namespaces, so the demo, the benchmarks and the notebook build
the same objects the commands do.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import yaml

from detector.adapters.audit import Ledger
from detector.adapters.geoip import MaxMindLocator
from detector.adapters.responder import BackendRouter, LedgerAuditor
from detector.adapters.runner import playbook_runner
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.store import Store
from detector.adapters.store.feedback import FeedbackRepository
from detector.config import Settings, load_settings, yaml_problem
from detector.domain.catalog import KeyCatalog
from detector.domain.errors import ConfigError
from detector.domain.suppressions import Span, Verdict
from detector.features.geo import Enricher
from detector.response.runner import PlaybookRunner

VERDICT_KINDS = {Verdict.TRUE_POSITIVE: "attack", Verdict.FALSE_POSITIVE: "benign"}


def settings_with_store(config: Path | None, db: str | None) -> Settings:
    """Settings from ``config`` (or the defaults), with ``store.url`` replaced by ``db`` when given."""
    settings = load_settings(config)
    if db:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": db})})
    return settings


def enricher_for(settings: Settings) -> Enricher:
    """Geolocation from the configured (or shipped) offline database."""
    return Enricher(MaxMindLocator(settings.geoip.mmdb_path), settings.geoip.cache_size)


def catalog_for(path: Path | None, settings: Settings) -> KeyCatalog:
    """Key catalog from YAML, or the documented defaults for every key."""
    path = path or settings.catalog
    defaults = settings.severity.catalog_defaults.model_dump()
    if path is None:
        return KeyCatalog.from_mapping(None, defaults)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"key catalog {path} is not valid YAML: {yaml_problem(exc)}") from None
    return KeyCatalog.from_mapping(data, defaults)


def open_store(db: str | None, config: Path | None) -> Store:
    """The store named by ``db`` or the settings, migrated to the newest schema."""
    store = Store.from_settings(load_settings(config), db)
    try:
        store.migrate()  # an empty database lists nothing instead of failing on missing tables
    except BaseException:
        store.close()
        raise
    return store


def runner_for(settings: Settings, store: Store, catalog_path: Path | None = None) -> PlaybookRunner:
    """The runner wired to the key backends, the Slack outbox and the audit ledger."""
    if settings.audit.signing_key is None:
        raise ConfigError(
            "actions are audited: set audit.signing_key (create one with `keywatch audit keygen`)"
        )
    ledger = Ledger.from_settings(store, settings.audit)
    r = settings.response
    return playbook_runner(
        store,
        BackendRouter(settings, catalog_for(catalog_path, settings)),
        SlackNotifier(store, settings.slack.default_channel),
        LedgerAuditor(ledger),
        retry_base_seconds=r.retry_base_seconds,
        retry_max_seconds=r.retry_max_seconds,
    )


def verdict_spans(url: str, config: Path | None, verdict: Verdict) -> list[Span]:
    """The key and ``[first_window_start, window_end)`` of every alert with ``verdict`` in a store."""
    with open_store(url, config) as store:
        return [Span.of(a) for a in FeedbackRepository(store).verdict_alerts(verdict)]


def verdict_labels(
    url: str, config: Path | None, verdict: Verdict = Verdict.TRUE_POSITIVE
) -> list[dict[str, Any]]:
    """Verdicts as labelled instances: true positives as attacks, false positives as benign ones.

    Scenario ``verdict_true_positive`` or ``verdict_false_positive``. Each covers its alert's key
    and principal over ``[first_window_start, window_end]``, so the alert itself (and any other
    alert overlapping it) matches it in ``evaluate``.
    """
    with open_store(url, config) as store:
        alerts = FeedbackRepository(store).verdict_alerts(verdict)
    scenario, kind = f"verdict_{verdict.value}", VERDICT_KINDS[verdict]
    return [{"scenario": scenario, "kind": kind, "key_ids": [a.key_id], "principal": a.principal,
             "start": a.first_window_start, "end": a.window_end} for a in alerts]  # fmt: skip


def write_jsonl(path: Path, rows: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> int:
    """Write one JSON object per line; return how many."""
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("wb") as fh:
        for row in rows:
            fh.write(orjson.dumps(row) + b"\n")
            n += 1
    return n


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: windows, features and alerts hold no reference cycles,
    so reference counting frees them, and the collector's rescans cost a third of a replay."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
