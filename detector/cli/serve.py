"""``keywatch api``: serve the REST API with uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from detector.cli.wiring import settings_with_store
from detector.config import Settings
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


def cmd_api(args: argparse.Namespace) -> int:
    """Migrate the store, build the app and serve it until interrupted."""
    import uvicorn  # the server is only needed here

    from detector.adapters.broker import wait_until_answers
    from detector.adapters.store import Store
    from detector.api import create_app

    settings = settings_with_store(args.config, args.db)
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
    uvicorn.Server(server_config(app, settings, args.host, args.port, verbose=args.verbose)).run()
    return 0


def server_config(app: Any, settings: Settings, host: str, port: int, *, verbose: bool = False) -> Any:
    """uvicorn's configuration: ``X-Forwarded-*`` believed only from ``api.trusted_proxies``.

    uvicorn believes them from 127.0.0.1 by default, so anyone on the host could pose as any
    address (and step around the failed-login throttle); here nobody is trusted unless named.
    """
    import uvicorn

    trusted = settings.api.trusted_proxies
    level = "info" if verbose else "warning"
    return uvicorn.Config(app, host=host, port=port, log_level=level, proxy_headers=bool(trusted),
                          forwarded_allow_ips=list(trusted) or None)  # fmt: skip
