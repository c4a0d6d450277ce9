"""``keywatch alerts list`` and ``keywatch incidents list``: read the alert store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from detector import display
from detector.adapters.store import Store
from detector.config import load_settings
from detector.domain.alerts import Severity
from detector.domain.incidents import IncidentStatus

SEVERITIES = [s.label for s in Severity]
STATUSES = [s.value for s in IncidentStatus]


def store_options(p: argparse.ArgumentParser) -> None:
    """Flags every store query shares: where the store is, the output form, how many rows."""
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--limit", type=_positive, default=50, metavar="N", help="at most N rows (default: 50)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def open_store(args: argparse.Namespace) -> Store:
    """The store named by ``--db`` or the settings, migrated to the newest schema."""
    store = Store.from_settings(load_settings(args.config), args.db)
    try:
        store.migrate()  # an empty database lists nothing instead of failing on missing tables
    except BaseException:
        store.close()
        raise
    return store


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Print stored alerts, newest first, as a table or JSON."""
    with open_store(args) as store:
        severity = Severity.parse(args.severity) if args.severity else None
        alerts = store.list_alerts(key_id=args.key, principal=args.principal, detector=args.detector,
                                   min_severity=severity, limit=args.limit)  # fmt: skip
        total = store.count_alerts()
    if args.json:
        print(json.dumps([a.to_dict() for a in alerts], indent=2))
    else:
        display.alerts_table(alerts, f"{len(alerts)} alerts (of {total} stored) in {store.safe_url}")
    return 0


def cmd_incidents_list(args: argparse.Namespace) -> int:
    """Print incidents, most recently active first, as a table or JSON."""
    with open_store(args) as store:
        status = IncidentStatus.parse(args.status) if args.status else None
        incidents = store.list_incidents(status=status, limit=args.limit)
    if args.json:
        print(json.dumps([i.to_dict() for i in incidents], indent=2))
    else:
        display.incidents_table(incidents, f"{len(incidents)} incidents in {store.safe_url}")
    return 0
