"""The reference pages generated from the code: commands, configuration, detectors, playbooks, metrics.

``python -m detector.cli.reference`` rewrites them under ``docs/reference/``; ``--check`` only
says whether they are current (a test runs it), so the reference cannot drift from the code.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

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


_GENERATED = "Generated from the code by `python -m detector.cli.reference`; a test keeps it current."


def detectors_markdown() -> str:
    """Every detector in the order it runs: what it flags (its module's documentation) and its settings."""
    from detector.rules import KEY_RULES, PRINCIPAL_RULES
    from detector.scoring import forest

    out = ["# Detectors", "", _GENERATED, "",
           "Key detectors judge one key's window; principal detectors judge one identity across the keys",
           "it used in a window; the isolation forest scores every mature key window. Settings are under",
           "`rules.<name>` in the [configuration](configuration.md); how they work together, with the",
           "figures, is in [How detection works](../explanation/detection.md)."]  # fmt: skip
    rules: list[tuple[str, str, Callable[..., Any]]] = [("key", n, f) for n, f in KEY_RULES.items()]
    rules += [("principal", n, f) for n, f in PRINCIPAL_RULES.items()]
    for kind, name, check in rules:
        module = sys.modules[check.__module__]
        out += ["", f"## `{name}` ({kind})", "", inspect.cleandoc(module.__doc__ or ""), "",
                f"Judged by `{check.__module__}.{check.__name__}`: {_first_paragraph(check)}"]  # fmt: skip
    out += ["", "## `isolation_forest` (key)", "", inspect.cleandoc(forest.__doc__ or ""), ""]
    return "\n".join(out)


def _first_paragraph(obj: Any) -> str:
    return " ".join(inspect.cleandoc(obj.__doc__ or "").split("\n\n")[0].split())


def playbooks_markdown() -> str:
    """The playbook document and every registered action with its parameters and flags."""
    from detector.response.actions import ACTIONS
    from detector.response.playbook import Playbook, Retry, Step, Trigger

    out = ["# Playbook schema", "", _GENERATED, "",
           "A playbook is a YAML document; loading validates it against these models and the action",
           "registry and reports problems with file, line and field. The library is in `playbooks/`;",
           "how runs, modes and approvals work is in the",
           "[incident responder's guide](../guides/incident-responder.md)."]  # fmt: skip
    for title, model in (("Playbook", Playbook), ("Trigger", Trigger), ("Step", Step), ("Retry", Retry)):
        out += ["", f"## {title}", "", *_fields_table(model)]
    out += ["", "## Actions", "",
            "`reversible`: staged mode runs it and rollback can undo it (or it changes nothing);",
            "`destructive`: a `require_approval` step with two or more approvers must come before it;",
            "`changes keys`: it acts on the key in its backend (marked running before it acts).",
            "", "| action | reversible | destructive | changes keys | undone by rollback |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    for spec in ACTIONS.values():
        out.append(f"| `{spec.name}` | {_yes(spec.reversible)} | {_yes(spec.destructive)} | "
                   f"{_yes(spec.changes_keys)} | {_yes(spec.undo is not None)} |")  # fmt: skip
    for spec in ACTIONS.values():
        out += ["", f"### `{spec.name}`", "", *_fields_table(spec.params)]
    return "\n".join(out) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _fields_table(model: type[BaseModel]) -> list[str]:
    if not model.model_fields:
        return ["No parameters."]
    rows = ["| field | type | default | constraints |", "| --- | --- | --- | --- |"]
    for name, info in model.model_fields.items():
        kind = _type_name(info.annotation).replace("|", "\\|")
        default = "required" if info.is_required() else f"`{info.get_default(call_default_factory=True)!r}`"
        limits = ", ".join(re.sub(r"^\w+\((.*)\)$", r"\1", str(m)) for m in info.metadata).replace("|", "\\|")
        rows.append(f"| `{info.alias or name}` | `{kind}` | {default} | {limits} |")
    return rows


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return re.sub(r"\b(typing|detector\.[a-z_.]+)\.", "", str(annotation))


def metrics_markdown() -> str:
    """The Prometheus metrics of ``keywatch run``."""
    from detector.adapters.metrics import ConsumerMetrics

    out = ["# Metrics", "", _GENERATED, "",
           "`keywatch run` serves these on `metrics.port` (`--metrics-port`), in the Prometheus text",
           "format, one registry per process.", "",
           "| metric | type | labels | meaning |", "| --- | --- | --- | --- |"]  # fmt: skip
    metrics = ConsumerMetrics()
    # prometheus_client keeps a metric's label names only on the metric object
    labels = {
        m.describe()[0].name: m._labelnames for m in vars(metrics).values() if hasattr(m, "_labelnames")
    }
    for family in metrics.registry.collect():
        suffix = "_total" if family.type == "counter" else ""
        label_text = ", ".join(f"`{label}`" for label in labels.get(family.name, ())) or "-"
        out.append(f"| `{family.name}{suffix}` | {family.type} | {label_text} | {family.documentation} |")
    return "\n".join(out) + "\n"


def references() -> dict[str, str]:
    """The generated files, by path under ``docs/``."""
    from detector.cli.main import build_parser

    return {
        "reference/cli.md": cli_markdown(build_parser()),
        "reference/configuration.md": config_markdown(DEFAULTS_FILE.read_text(encoding="utf-8")),
        "reference/detectors.md": detectors_markdown(),
        "reference/playbooks.md": playbooks_markdown(),
        "reference/metrics.md": metrics_markdown(),
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
