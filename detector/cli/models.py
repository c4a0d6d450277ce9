"""``keywatch models register|list``: the registry of trained model versions in the store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from detector.adapters.model_store import load_model
from detector.adapters.store.feedback import FeedbackRepository
from detector.cli.wiring import open_store


def add_parsers(sub: Any) -> None:
    """Register ``models register`` and ``models list``."""
    actions = sub.add_parser("models", help="registered model versions").add_subparsers(
        dest="action", required=True
    )
    p = actions.add_parser("register", help="verify a model directory and register it as a version")
    p.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    p.add_argument("--activate", action="store_true", help="make it the active version")
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.set_defaults(handler=cmd_models_register)
    p = actions.add_parser("list", help="registered versions, newest first")
    p.add_argument("--db", metavar="URL", help="alert store URL (default: config `store.url`)")
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--json", action="store_true", help="print a JSON array with the cards")
    p.set_defaults(handler=cmd_models_list)


def cmd_models_register(args: argparse.Namespace) -> int:
    """Verify the directory with the model loader, then register it (the first version becomes active)."""
    model = load_model(args.model_dir)  # ModelError (exit 2) when it does not verify
    with open_store(args.db, args.config) as store:
        version = FeedbackRepository(store).register_model(
            str(args.model_dir.resolve()), model.card, activate=args.activate
        )
    state = "active" if version.active else "inactive"
    print(f"registered model {version.version} ({state}) from {version.path}")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    """Print the registered versions."""
    with open_store(args.db, args.config) as store:
        versions = FeedbackRepository(store).list_models()
    if args.json:
        print(json.dumps([v.to_dict() for v in versions], indent=2))
        return 0
    for v in versions:
        print(f"{'*' if v.active else ' '} {v.version}  {v.to_dict()['registered_at']}  {v.path}")
    return 0
