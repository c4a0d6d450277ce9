"""Playbooks: the shipped library validates; mistakes are named with file, line and field; plans."""

from __future__ import annotations

from pathlib import Path

import pytest

from detector.response.planning import Context, condition_holds, matches, plan, render
from detector.response.playbook import Mode, PlaybookError, load_playbook

LIBRARY = Path(__file__).resolve().parents[2] / "playbooks"
CTX = Context(key_id="k1", incident_id="i1", principal="arn:aws:iam::1:user/mallory", detector="volume_spike",
              severity="critical", environment="production", classification="restricted",
              recent_callers=("svc-a", "svc-b"))  # fmt: skip


def _load(name: str) -> str:
    return (LIBRARY / f"{name}.yaml").read_text(encoding="utf-8")


def test_the_library_validates_and_covers_the_usual_cases() -> None:
    names = {load_playbook(p.read_text(), str(p)).name for p in LIBRARY.glob("*.yaml")}
    assert {
        "contain-exfiltration",
        "foreign-geography",
        "destructive-control-plane",
        "denied-probing",
    } <= names


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (("approvers: 2", "approvers: 1"), "x.yaml:21: steps[3].action: revoke_key is destructive"),
        (
            ("action: disable_key", "action: disable_keys"),
            "x.yaml:11: steps[0].action: unknown action 'disable_keys'",
        ),
        (("min_severity: high", "min_severity: huge"), "x.yaml:6: trigger.min_severity"),
        (("with: {backup: true}", "with: {backup: true, colour: red}"), "x.yaml:22: steps[3].with.colour"),
        (
            ('when: "environment != production"\n  - id: done', 'when: "phase of moon"\n  - id: done'),
            "x.yaml:23: steps[3].when: cannot read condition",
        ),
        (("id: tell", "id: disable"), "x.yaml:13: steps[1].id: step id 'disable' is used twice"),
    ],
)
def test_mistakes_name_file_line_and_field(edit: tuple[str, str], where: str) -> None:
    text = _load("destructive-control-plane").replace(*edit, 1)
    with pytest.raises(PlaybookError) as err:
        load_playbook(text, "x.yaml")
    assert str(err.value).startswith(where), str(err.value)


def test_not_yaml_and_not_a_mapping() -> None:
    with pytest.raises(PlaybookError, match=r"p.yaml:2: not valid YAML"):
        load_playbook("name: a\n  steps: [\n", "p.yaml")
    with pytest.raises(PlaybookError, match=r"p\.yaml:1: a playbook is a mapping"):
        load_playbook("- 1\n", "p.yaml")


def test_triggers_match_on_detector_severity_and_tags() -> None:
    pb = load_playbook(_load("contain-exfiltration"))
    assert matches(pb, CTX)
    assert not matches(
        pb, Context(key_id="k1", detector="volume_spike", severity="medium", environment="production")
    )
    assert not matches(
        pb, Context(key_id="k1", detector="new_geography", severity="critical", environment="production")
    )
    assert not matches(
        pb, Context(key_id="k1", detector="volume_spike", severity="critical", environment="development")
    )


def test_conditions_are_a_fixed_grammar() -> None:
    pb = load_playbook(_load("destructive-control-plane"))
    revoke = pb.steps[3]
    assert not condition_holds(revoke, CTX)
    assert condition_holds(revoke, Context(key_id="k", environment="staging"))


def test_templates_substitute_and_never_evaluate() -> None:
    vars_ = CTX.variables({"channel": "#c"})
    assert render("$key_id by $principal in ${channel} $unknown {{ 7*7 }}", vars_) == (
        "k1 by arn:aws:iam::1:user/mallory in #c $unknown {{ 7*7 }}"
    )


def test_plans_per_mode() -> None:
    pb = load_playbook(_load("contain-exfiltration"))
    dry = plan(pb, CTX, Mode.DRY_RUN)
    assert not any(s.runs for s in dry.steps)
    assert "would disable key k1" in dry.steps[0].reason
    staged = plan(pb, CTX, Mode.STAGED)
    assert [s.step_id for s in staged.steps if s.runs] == [
        "disable",
        "tell",
        "mark",
        "agree-rotation",
        "done",
    ]
    assert "staged mode runs reversible steps only" in staged.steps[4].reason
    active = plan(pb, CTX, Mode.ACTIVE)
    assert all(s.runs for s in active.steps)
    text = "\n".join(dry.lines())
    assert "blast radius: 2 recent callers: svc-a, svc-b" in text
