"""The command-line and configuration references, generated from the parser and the defaults file.

``python -m detector.cli.reference`` rewrites ``docs/reference/cli.md`` and
``docs/reference/configuration.md``; ``--check`` only says whether they are current (a test runs
it), so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from detector.config import DEFAULTS_FILE

_WIDTH = "100"  # argparse wraps help to $COLUMNS; fixed so the output does not depend on the terminal
_ENTRY = re.compile(r"^(?P<indent> *)(?P<key>[a-z0-9_]+):(?P<value>[^#]*?)\s*(?:#\s?(?P<comment>.*))?$")


def cli_markdown(parser: argparse.ArgumentParser) -> str:
    """Every command's ``--help``, in the order ``keywatch --help`` lists them."""
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = _WIDTH
    try:
        out = ["# Command-line reference", "",
               "Generated from the parser by `python -m detector.cli.reference`; a test keeps it current.",
               "", "```text", parser.format_help().rstrip(), "```", ""]  # fmt: skip
        for name, sub in _commands(parser):
            out += [f"## `{name}`", "", "```text", sub.format_help().rstrip(), "```", ""]
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(out)


def _commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for sub in action.choices.values():
                if id(sub) in seen:  # an alias names the same parser twice
                    continue
                seen.add(id(sub))
                if any(isinstance(a, argparse._SubParsersAction) for a in sub._actions):
                    yield from _commands(sub)
                else:
                    yield sub.prog, sub


def config_markdown(text: str) -> str:
    """A table per section of the defaults file: setting, environment variable, default, meaning."""
    out = ["# Configuration reference", "",
           "Generated from `detector/defaults/keywatch.yaml` by `python -m detector.cli.reference`; a",
           "test keeps it current. Pass a YAML file with `--config` or `KEYWATCH_CONFIG`; set any value",
           "from the environment with the variable shown. Unknown keys and invalid values stop",
           "start-up with one line naming the setting."]  # fmt: skip
    path: list[tuple[int, str]] = []
    table = False
    for line in text.splitlines():
        m = _ENTRY.match(line)
        if m is None:
            continue
        indent, key = len(m["indent"]), m["key"]
        value, comment = m["value"].strip(), (m["comment"] or "").strip()
        path = [(i, k) for i, k in path if i < indent]
        dotted = ".".join(k for _, k in [*path, (indent, key)])
        if not value:  # a section
            path.append((indent, key))
            out += ["", f"## `{dotted}`"]
            if comment:
                out += ["", comment[0].upper() + comment[1:]]
            table = False
            continue
        if not table:
            out += ["", "| setting | environment | default | meaning |", "| --- | --- | --- | --- |"]
            table = True
        env = "KEYWATCH_" + "__".join(part.upper() for part in dotted.split("."))
        cell = comment.replace("|", "\\|")
        out.append(f"| `{dotted}` | `{env}` | `{value}` | {cell} |")
    return "\n".join(out) + "\n"


def references() -> dict[str, str]:
    """The generated files, by path under ``docs/``."""
    from detector.cli.main import build_parser

    return {
        "reference/cli.md": cli_markdown(build_parser()),
        "reference/configuration.md": config_markdown(DEFAULTS_FILE.read_text(encoding="utf-8")),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Write the references under ``--docs`` (default ``docs``), or with ``--check`` compare them."""
    p = argparse.ArgumentParser(prog="python -m detector.cli.reference", description=__doc__)
    p.add_argument("--docs", type=Path, default=Path("docs"))
    p.add_argument("--check", action="store_true", help="exit 1 when a file differs from the code")
    args = p.parse_args(argv)
    stale = []
    for name, text in references().items():
        path = args.docs / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    verb = "out of date" if args.check else "written"
    for path in stale:
        print(f"{path}: {verb}", file=sys.stderr)
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
