"""The action registry: typed parameters, flags, duplicates rejected, playbooks validated against it."""

from __future__ import annotations

import pytest

from detector.response.actions import ACTIONS, ActionParams, Done, KeyArgs, StepCall, action
from detector.response.playbook import PlaybookError, load_playbook


def test_every_action_declares_parameters_and_flags() -> None:
    assert set(ACTIONS) == {"notify", "annotate_incident", "require_approval", "wait", "disable_key",
                            "enable_key", "rotate_key", "revoke_key", "webhook"}  # fmt: skip
    for name, spec in ACTIONS.items():
        assert spec.name == name and issubclass(spec.params, ActionParams)
        assert not (spec.destructive and spec.reversible), f"{name}: a destructive action cannot be undone"
        if spec.undo is not None:
            assert (spec.changes_keys and spec.reversible) or spec.destructive
    assert ACTIONS["revoke_key"].destructive and ACTIONS["disable_key"].undo is not None
    assert ACTIONS["rotate_key"].undo is None and not ACTIONS["rotate_key"].reversible


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @action("disable_key", KeyArgs, reversible=True)
        def _again(call: StepCall) -> Done:
            return Done({})


def test_a_registered_action_is_usable_in_playbooks(monkeypatch: pytest.MonkeyPatch) -> None:
    class TicketArgs(ActionParams):
        queue: str

    monkeypatch.setattr("detector.response.actions.ACTIONS", dict(ACTIONS))
    from detector.response import actions

    @actions.action("open_ticket", TicketArgs, reversible=True)
    def _ticket(call: StepCall) -> Done:
        return Done({"outcome": "opened"})

    monkeypatch.setattr("detector.response.playbook.ACTIONS", actions.ACTIONS)
    text = "name: t\nsteps:\n  - id: a\n    action: open_ticket\n    with: {queue: soc}\n"
    assert load_playbook(text, "t.yaml").steps[0].args() == TicketArgs(queue="soc")
    with pytest.raises(PlaybookError, match="queue"):
        load_playbook(text.replace("queue: soc", "colour: red"), "t.yaml")
