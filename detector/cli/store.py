"""``keywatch alerts list`` and ``keywatch incidents list``: read the alert store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from detector.cli import display
from detector.cli.wiring import open_store
from detector.domain.alerts import Severity
from detector.domain.incidents import IncidentStatus

SEVERITIES = [s.label for s in Severity]
STATUSES = [s.value for s in IncidentStatus]


def add_parsers(sub: Any) -> None:
    """Register ``alerts list`` and ``incidents list``."""
    actions = sub.add_parser("alerts", help="query alerts").add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="stored alerts, newest first")
    store_options(p)
    p.add_argument("--key", help="only this key id")
    p.add_argument("--principal", help="only this principal")
    p.add_argument("--detector", help="only this detector")
    p.add_argument("--severity", choices=SEVERITIES, help="at least this severity")
    p.set_defaults(handler=cmd_alerts_list)

    actions = sub.add_parser("incidents", help="query incidents").add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="incidents, most recently active first")
    store_options(p)
    p.add_argument("--status", choices=STATUSES, help="only incidents in this status")
    p.set_defaults(handler=cmd_incidents_list)


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


def cmd_alerts_list(args: argparse.Namespace) -> int:
    """Print stored alerts, newest first, as a table or JSON."""
    with open_store(args.db, args.config) as store:
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
    with open_store(args.db, args.config) as store:
        status = IncidentStatus.parse(args.status) if args.status else None
        incidents = store.list_incidents(status=status, limit=args.limit)
    if args.json:
        print(json.dumps([i.to_dict() for i in incidents], indent=2))
    else:
        display.incidents_table(incidents, f"{len(incidents)} incidents in {store.safe_url}")
    return 0
