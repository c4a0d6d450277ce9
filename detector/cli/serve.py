"""``keywatch api``: serve the REST API with uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detector.config import Settings, load_settings
from detector.domain.errors import ConfigError

BROKER_TIMEOUT_SECONDS = 2.0


def add_parsers(sub: Any) -> None:
    """Register ``api``."""
    p = sub.add_parser("api", help="serve the REST API (OpenAPI at /v1/docs)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--db", metavar="URL", help="store URL (default: config `store.url`)")
    p.set_defaults(handler=cmd_api)


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if args.db:
        settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": args.db})})
    return settings


def cmd_api(args: argparse.Namespace) -> int:
    """Migrate the store, build the app and serve it until interrupted."""
    import uvicorn  # the server is only needed here

    from detector.adapters.broker import wait_until_answers
    from detector.adapters.store import Store
    from detector.api import create_app

    settings = _settings(args)
    if settings.audit.signing_key is None:  # every mutating call must land in the ledger
        raise ConfigError(
            "the API records every change in the audit ledger: set audit.signing_key "
            "(KEYWATCH_AUDIT__SIGNING_KEY; create one with `keywatch audit keygen --out FILE`)"
        )
    store = Store.from_settings(settings)
    store.migrate()
    bootstrap = settings.kafka.bootstrap_servers
    # the broker joins /readyz only when the configuration names one (file or environment)
    broker_check = (
        (lambda: wait_until_answers(bootstrap, BROKER_TIMEOUT_SECONDS))
        if "kafka" in settings.model_fields_set
        else None
    )
    app = create_app(settings, store, broker_check=broker_check)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info" if args.verbose else "warning")
    return 0
