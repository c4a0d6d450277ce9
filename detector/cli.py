"""``keywatch`` command line: the composition root that builds adapters and runs the core."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from detector import (
    api_commands,
    audit_commands,
    commands,
    model_commands,
    response_commands,
    store_commands,
    stream_commands,
    suite_commands,
    user_commands,
)
from detector.domain.errors import KeyWatchError
from detector.sources import FORMATS

log = logging.getLogger(__name__)


def _inputs(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="log files (JSONL, JSON, .gz)")
    p.add_argument(
        "--format", default="auto", choices=FORMATS, help="input format (default: auto, per record)"
    )


def _common(p: argparse.ArgumentParser, *, catalog: bool = True) -> None:
    p.add_argument("--config", type=Path, help="YAML settings (default: built-in, see detector/defaults)")
    if catalog:
        p.add_argument("--catalog", type=Path, help="key catalog YAML (environment, classification per key)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; names and flags are a contract other tools rely on."""
    parser = argparse.ArgumentParser(prog="keywatch", description="Catch the misuse of encryption keys.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="write synthetic labelled key-usage traffic")
    p.add_argument("--out", type=Path, required=True, metavar="DIR")
    p.add_argument("--keys", type=int, default=30)
    p.add_argument("--days", type=float, default=4.0)
    p.add_argument("--test-days", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--strength", type=float, default=1.0, help="attack strength, 0 < S <= 1 (default 1)")
    p.add_argument("--generator", choices=("classic", "fleet"), default="classic",
                   help="classic (detector/simulate.py) or fleet (detector/simulation/)")  # fmt: skip

    p = sub.add_parser("train", help="learn profiles and fit the forest from history")
    _inputs(p)
    _common(p, catalog=False)
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--dead-letter", type=Path, metavar="FILE")
    p.add_argument(
        "--db",
        metavar="URL",
        help="learn this store's false-positive verdicts as normal; leave out its true positives",
    )

    p = sub.add_parser("replay", help="run logs through the detector in event-time order")
    _inputs(p)
    _common(p)
    p.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="ALERTS.jsonl")
    p.add_argument("--dead-letter", type=Path, metavar="FILE")
    p.add_argument("--update-model", action="store_true", help="save the profiles learned during replay")

    p = sub.add_parser("normalize", help="convert provider logs to canonical events")
    _inputs(p)
    p.add_argument("--out", type=Path, required=True, metavar="EVENTS.jsonl")
    p.add_argument("--dead-letter", type=Path, metavar="FILE")
    p.add_argument("--config", type=Path)
    p.add_argument("--no-geo", action="store_true", help="do not geolocate addresses")

    p = sub.add_parser("evaluate", help="score alerts against labelled scenarios")
    p.add_argument("--labels", type=Path, required=True)
    p.add_argument("--alerts", type=Path, required=True)
    p.add_argument("--window", type=float, default=None, help="window seconds (default: from config)")
    p.add_argument("--key-hours", type=float, default=None)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--config", type=Path)
    p.add_argument("--db", metavar="URL", help="count this store's true-positive verdicts as labelled")

    p = sub.add_parser("demo", help="simulate, train, replay and evaluate end to end")
    p.add_argument("--workdir", type=Path, default=Path(".demo"))
    p.add_argument("--keys", type=int, default=40)
    p.add_argument("--days", type=float, default=5.0)
    p.add_argument("--test-days", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--offline", action="store_true", help="replay files instead of streaming through Kafka")
    p.add_argument("--consumers", type=int, default=2, help="keywatch run processes in the group")
    p.add_argument("--play-seconds", type=float, default=60.0, help="wall time to play the test days in")
    _common(p)
    stream_commands.add_parsers(sub)
    response_commands.add_parsers(sub)
    user_commands.add_parsers(sub)
    audit_commands.add_parsers(sub)
    api_commands.add_parsers(sub)
    model_commands.add_parsers(sub)
    suite_commands.add_parsers(sub)

    actions = sub.add_parser("alerts", help="query alerts").add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="stored alerts, newest first")
    store_commands.store_options(p)
    p.add_argument("--key", help="only this key id")
    p.add_argument("--principal", help="only this principal")
    p.add_argument("--detector", help="only this detector")
    p.add_argument("--severity", choices=store_commands.SEVERITIES, help="at least this severity")
    p.set_defaults(handler=store_commands.cmd_alerts_list)

    actions = sub.add_parser("incidents", help="query incidents").add_subparsers(dest="action", required=True)
    p = actions.add_parser("list", help="incidents, most recently active first")
    store_commands.store_options(p)
    p.add_argument("--status", choices=store_commands.STATUSES, help="only incidents in this status")
    p.set_defaults(handler=store_commands.cmd_incidents_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keywatch`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if not args.verbose:  # kafka-python reports every dropped connection; KeyWatch says what matters
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    handler = getattr(args, "handler", None) or getattr(commands, f"cmd_{args.command}")
    try:
        return int(handler(args) or 0)
    except KeyWatchError as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"file not found: {exc.filename}")
    except (IsADirectoryError, PermissionError) as exc:
        return _fail(f"cannot read {exc.filename}: {exc.strerror}")
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:  # output piped into `head` and the like: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _fail(message: str) -> int:
    print(f"keywatch: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
