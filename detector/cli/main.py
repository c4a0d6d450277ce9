"""``keywatch``: the parser made of every command module's ``add_parsers``, and the entry point."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from detector.cli import audit, demo, detection, models, playbooks, serve, store, stream, suite, users
from detector.domain.errors import KeyWatchError

log = logging.getLogger(__name__)
# In the order ``keywatch --help`` lists them.
COMMANDS = (detection, demo, stream, playbooks, users, audit, serve, models, suite, store)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; names and flags are a contract other tools rely on."""
    parser = argparse.ArgumentParser(prog="keywatch", description="Catch the misuse of encryption keys.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``keywatch`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if not args.verbose:  # kafka-python reports every dropped connection; KeyWatch says what matters
        logging.getLogger("kafka").setLevel(logging.CRITICAL)
    handler = args.handler
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
