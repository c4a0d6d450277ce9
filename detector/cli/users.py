"""``keywatch users add | list | disable | rotate-token``: KeyWatch users, roles and API tokens.

The same rules as the API's ``/v1/users``: a token is printed once (the store keeps its SHA-256
hash), disabling revokes the token and never removes the last enabled admin, and a disabled user
gets no new token. With ``audit.signing_key`` set, every change is appended to the audit ledger
as ``cli:<login name>``.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from detector.adapters.audit import Ledger
from detector.adapters.store import Store
from detector.adapters.store.users import UserRepository
from detector.cli.wiring import open_store
from detector.config import load_settings
from detector.domain.users import Role


def add_parsers(sub: Any) -> None:
    """Register ``users add``, ``list``, ``disable``, ``enable`` and ``rotate-token``."""
    users = sub.add_parser("users", help="KeyWatch users, roles and API tokens").add_subparsers(
        dest="users_command", required=True, metavar="ACTION"
    )
    p = users.add_parser("add", help="add a user and print their API token, once")
    _store_options(p)
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--slack-id", help="Slack member id (U...) for buttons in Slack")
    for unused in ("--catalog", "--playbooks"):  # accepted before, when `users` shared the playbook flags
        p.add_argument(unused, type=Path, help=argparse.SUPPRESS)
    p.set_defaults(handler=cmd_users_add)

    p = users.add_parser("list", help="users by name: role, Slack id, disabled, whether a token is set")
    _store_options(p)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(handler=cmd_users_list)

    p = users.add_parser("disable", help="disable a user and revoke their API token")
    _store_options(p)
    p.add_argument("name")
    p.set_defaults(handler=cmd_users_disable)

    p = users.add_parser("enable", help="enable a disabled user again and print their new API token, once")
    _store_options(p)
    p.add_argument("name")
    p.set_defaults(handler=cmd_users_enable)

    p = users.add_parser("rotate-token", help="give a user a new API token (the old one stops working)")
    _store_options(p)
    p.add_argument("name")
    p.set_defaults(handler=cmd_users_rotate_token)


def _store_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--db", metavar="URL", help="store URL (default: config `store.url`)")


def _audit(args: argparse.Namespace, store: Store, action: str, target: str, details: dict[str, Any]) -> None:
    """Append to the audit ledger when ``audit.signing_key`` is set (without one, as ``api`` refuses to)."""
    settings = load_settings(args.config).audit
    if settings.signing_key is not None:
        Ledger.from_settings(store, settings).append(f"cli:{getpass.getuser()}", action, target, details)


def cmd_users_add(args: argparse.Namespace) -> int:
    """Add a user with a role and print their API token, once (only its SHA-256 hash is stored)."""
    with open_store(args.db, args.config) as store:
        users = UserRepository(store)
        user = users.add(args.name, Role(args.role), args.slack_id)
        token = users.issue_token(user.name)
        _audit(args, store, "cli.user_add", user.name, {"role": user.role.label})
    print(f"user {user.name} added as {user.role}")
    _show_token(token)
    return 0


def _show_token(token: str) -> None:
    """Print a new API token: the only time anyone sees it (the store keeps its hash)."""
    print(f"API token (shown only now, keep it secret): {token}")


def cmd_users_list(args: argparse.Namespace) -> int:
    """Print the users as a table or JSON; token hashes are never read."""
    with open_store(args.db, args.config) as store:
        accounts = UserRepository(store).accounts()
    if args.json:
        print(json.dumps([a.to_dict() for a in accounts], indent=2))
        return 0
    print(f"{'name':<24} {'role':<10} {'slack id':<12} {'state':<9} token")
    for a in accounts:
        u, token = a.user, "set" if a.has_token else "-"
        state = "disabled" if u.disabled else "active"
        print(f"{u.name:<24} {u.role:<10} {u.slack_user_id or '-':<12} {state:<9} {token}")
    return 0


def cmd_users_disable(args: argparse.Namespace) -> int:
    """Disable a user and revoke their token; refused for the last enabled admin."""
    with open_store(args.db, args.config) as store:
        user = UserRepository(store).disable(args.name)
        _audit(args, store, "cli.user_disable", user.name, {"role": user.role.label})
    print(f"user {user.name} disabled; their API token no longer works")
    return 0


def cmd_users_enable(args: argparse.Namespace) -> int:
    """Enable a disabled user and print their new token, once; their old token stays revoked."""
    with open_store(args.db, args.config) as store:
        user, token = UserRepository(store).enable(args.name)
        _audit(args, store, "cli.user_enable", user.name, {"role": user.role.label})
    print(f"user {user.name} enabled again as {user.role}")
    _show_token(token)
    return 0


def cmd_users_rotate_token(args: argparse.Namespace) -> int:
    """Print a new API token for a user, once; the old one stops working."""
    with open_store(args.db, args.config) as store:
        token = UserRepository(store).issue_token(args.name)
        _audit(args, store, "cli.user_token_rotate", args.name, {})
    print(f"new API token for {args.name} (shown only now, keep it secret; the old one no longer works):")
    print(token)
    return 0
