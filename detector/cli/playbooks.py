"""``keywatch playbook ...`` and ``keywatch respond``: the response side (users: ``cli.users``)."""

from __future__ import annotations

import argparse
import json
import signal
import threading
from pathlib import Path
from typing import Any

from detector.adapters.responder import (
    BackendRouter,
    Responder,
    default_playbooks_dir,
    incident_context,
    load_library,
)
from detector.adapters.runner import playbook_runner
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.slack.outbox import SlackSender, client_for
from detector.adapters.store import Store
from detector.adapters.store.users import UserRepository
from detector.cli.wiring import runner_for, settings_with_store
from detector.config import Settings
from detector.domain.runs import RunError, RunView
from detector.domain.users import User
from detector.response.planning import Context
from detector.response.playbook import Mode, Playbook, PlaybookError, load_playbook


def add_parsers(sub: Any) -> None:
    """Register ``playbook`` and ``respond``."""
    pb = sub.add_parser("playbook", help="validate, plan, run, approve and roll back response playbooks")
    actions = pb.add_subparsers(dest="playbook_command", required=True, metavar="ACTION")

    p = actions.add_parser("validate", help="check playbooks against the registry of actions")
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH", help="files or directories (default: library)"
    )
    p.set_defaults(handler=cmd_validate)

    for name, helptext, handler in (
        ("plan", "print what a run would do (dry run: nothing changes)", cmd_plan),
        ("run", "start a run (staged: reversible steps only; active: all)", cmd_run),
    ):
        p = actions.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("playbook", help="playbook name (from the library) or a YAML file")
        target = p.add_mutually_exclusive_group(required=True)
        target.add_argument("--incident", help="incident id")
        target.add_argument("--key", help="key id (no incident)")
        p.add_argument(
            "--mode",
            choices=[m.value for m in Mode],
            default="dry-run" if name == "plan" else None,
            required=name == "run",
        )
        if name == "run":
            p.add_argument("--as", dest="user", required=True, help="the KeyWatch user asking")
        p.set_defaults(handler=handler)

    for name, helptext in (
        ("approve", "approve (or --deny) an approval step"),
        ("rollback", "undo what a run changed on keys"),
        ("resume", "retry an escalated or failed run"),
        ("keep", "cancel a run's timed auto-revert"),
    ):
        p = actions.add_parser(name, help=helptext)
        _common(p)
        p.add_argument("run_id")
        p.add_argument("--as", dest="user", required=True, help="the KeyWatch user acting")
        if name == "approve":
            p.add_argument(
                "--step",
                required=True,
                metavar="STEP",
                help="the step's id, or its index (from 0, as `playbook runs` and the API show it)",
            )
            p.add_argument("--deny", action="store_true")
            p.add_argument("--comment")
        p.set_defaults(handler=cmd_decide, action=name)

    p = actions.add_parser("runs", help="list runs and their steps")
    _common(p)
    p.add_argument("--incident")
    p.add_argument("--json", action="store_true")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(handler=cmd_runs)

    p = sub.add_parser("respond", help="start playbooks for incidents, advance runs, deliver Slack messages")
    _common(p)
    p.add_argument("--mode", choices=[m.value for m in Mode], help="mode of automatic runs (default: config)")
    p.add_argument("--once", action="store_true", help="one round, then exit")
    p.set_defaults(handler=cmd_respond)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="YAML settings")
    p.add_argument("--db", metavar="URL", help="store URL (default: config `store.url`)")
    p.add_argument("--catalog", type=Path, help="key catalog YAML (which backend holds a key)")
    p.add_argument("--playbooks", type=Path, help="playbook directory (default: config, then the library)")


def _store(settings: Settings) -> Store:
    store = Store.from_settings(settings)
    store.migrate()
    return store


def _library(args: argparse.Namespace, settings: Settings) -> list[Playbook]:
    return load_library(
        getattr(args, "playbooks", None) or settings.response.playbooks_dir or default_playbooks_dir()
    )


def _playbook(args: argparse.Namespace, settings: Settings) -> Playbook:
    path = Path(args.playbook)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_playbook(path.read_text(encoding="utf-8"), str(path))
    for pb in _library(args, settings):
        if pb.name == args.playbook:
            return pb
    raise PlaybookError(f"no playbook named {args.playbook!r} in the library")


def _context(args: argparse.Namespace, store: Store) -> Context:
    if args.incident:
        incident = store.get_incident(args.incident)
        if incident is None:
            raise RunError(f"no incident {args.incident}")
        return incident_context(store, incident)
    return Context(key_id=args.key)


def _user(store: Store, name: str) -> User:
    user = UserRepository(store).get(name)
    if user is None:
        raise RunError(f"no KeyWatch user {name!r} (add one with `keywatch users add`)")
    return user


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate playbook files or directories."""
    paths = args.paths or [default_playbooks_dir()]
    names = []
    for path in paths:
        if path.is_dir():
            names += [pb.name for pb in load_library(path)]
        else:
            names.append(load_playbook(path.read_text(encoding="utf-8"), str(path)).name)
    print(f"{len(names)} playbooks valid: {', '.join(names)}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    """Print a run's plan: steps, what they would change, and the key's recent callers."""
    settings = settings_with_store(args.config, args.db)
    store = _store(settings)
    pb = _playbook(args, settings)
    ctx = _context(args, store)
    runner = playbook_runner(store, BackendRouter(settings), _Silent(), _Silent())
    print("\n".join(runner.plan_for(pb, ctx, Mode(args.mode))))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Start a run as a user with the run_playbooks permission."""
    settings = settings_with_store(args.config, args.db)
    store = _store(settings)
    user = _user(store, args.user)
    if not user.role.can_run_playbooks:
        raise RunError(f"{user.name} is an {user.role}: running playbooks needs the responder role")
    pb = _playbook(args, settings)
    runner = runner_for(settings, store, args.catalog)
    run_id = runner.start(pb, _context(args, store), Mode(args.mode), user.name)
    _print_run(runner.get(run_id))
    return 0


def step_index(run: RunView, step: str) -> int:
    """The index of ``step`` in ``run``: given as the index itself (from 0) or as the step's id.

    >>> steps = [{"step_index": 0, "step_id": "disable"}, {"step_index": 1, "step_id": "agree"}]
    >>> run = RunView("r", "p", "active", "waiting", None, "a", "k", steps, None, None)
    >>> step_index(run, "agree"), step_index(run, "1")
    (1, 1)
    """
    for s in run.steps:
        if s["step_id"] == step or str(s["step_index"]) == step.strip():
            return int(s["step_index"])
    known = ", ".join(f"#{s['step_index']} {s['step_id']}" for s in run.steps)
    raise RunError(f"run {run.run_id} has no step {step!r} (its steps: {known})")


def cmd_decide(args: argparse.Namespace) -> int:
    """approve / rollback / resume / keep."""
    settings = settings_with_store(args.config, args.db)
    store = _store(settings)
    runner = runner_for(settings, store, args.catalog)
    user = _user(store, args.user)
    if args.action == "approve":
        decide = runner.deny if args.deny else runner.approve
        decide(args.run_id, step_index(runner.get(args.run_id), args.step), user, args.comment)
    elif not user.role.can_change_keys:
        raise RunError(f"{user.name} is an {user.role}: this needs the responder role")
    elif args.action == "rollback":
        runner.rollback(args.run_id, user.name)
    elif args.action == "resume":
        runner.resume(args.run_id, user.name)
    else:
        runner.keep(args.run_id, user.name)
    _print_run(runner.get(args.run_id))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """List runs, newest first."""
    settings = settings_with_store(args.config, args.db)
    store = _store(settings)
    runner = playbook_runner(store, BackendRouter(settings), _Silent(), _Silent())
    runs = runner.runs(incident_id=args.incident, limit=args.limit)
    if args.json:
        print(json.dumps([_run_dict(r) for r in runs], indent=2, default=str))
    else:
        for r in runs:
            _print_run(r)
    return 0


def cmd_respond(args: argparse.Namespace) -> int:
    """Run the responder until SIGTERM/SIGINT (or one round with --once)."""
    settings = settings_with_store(args.config, args.db)
    store = _store(settings)
    runner = runner_for(settings, store, args.catalog)
    sender = SlackSender(client_for(settings.slack), store, settings.slack.max_attempts)
    responder = Responder(
        store,
        runner,
        _library(args, settings),
        Mode(args.mode or settings.response.default_mode),
        SlackNotifier(store, settings.slack.default_channel),
        sender.deliver_due,
    )
    if args.once:
        started = responder.tick()
        print(f"responded: {len(started)} runs started")
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"keywatch respond: {len(responder.playbooks)} playbooks, {responder.mode} mode", flush=True)
    responder.run_forever(stop, settings.response.poll_seconds)
    return 0


def _run_dict(r: RunView) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "playbook": r.playbook,
        "mode": r.mode,
        "status": r.status,
        "incident_id": r.incident_id,
        "key_id": r.key_id,
        "requested_by": r.requested_by,
        "error": r.error,
        "steps": [
            {k: s[k] for k in ("step_index", "step_id", "action", "status", "attempts", "result", "error")}
            for s in r.steps
        ],
    }


def _print_run(r: RunView) -> None:
    print(
        f"run {r.run_id}  {r.playbook}  {r.mode}  {r.status}  key {r.key_id}"
        + (f"  ({r.error})" if r.error else "")
    )
    for s in r.steps:
        outcome = (s["result"] or {}).get("outcome") or (s["result"] or {}).get("skipped") or s["error"] or ""
        print(f"  #{s['step_index']} {s['step_id']:<20} {s['action']:<18} {s['status']:<11} {outcome}")


class _Silent:
    """Notifier and auditor for read-only commands (plan, runs): they never act."""

    def notify(self, **_: Any) -> None:
        """Nothing to send."""

    def record(self, *_: Any, **__: Any) -> None:
        """Nothing to record."""
