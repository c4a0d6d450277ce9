"""The Slack buttons (Approve, Deny, Disable key) acting through the runner and the key backends."""

from __future__ import annotations

from detector.api.deps import ApiContext, audit
from detector.domain.keys import KeyBackendError
from detector.domain.users import User
from detector.response.runner import PlaybookRunner


class RunnerInteractions:
    """``InteractionHandler`` of ``detector.adapters.slack.interactions`` over the API's context."""

    def __init__(self, ctx: ApiContext) -> None:
        """Act with ``ctx.runner`` and ``ctx.backends``, recording in ``ctx.ledger``."""
        self.ctx = ctx
        self.runner: PlaybookRunner = ctx.runner

    def approve(self, run_id: str, step_index: int, user: User, /) -> str:
        """Approve a waiting approval step."""
        status = self.runner.approve(run_id, step_index, user, "approved in Slack")
        return f"Approved step {step_index + 1} of run {run_id}; the run is {status}."

    def deny(self, run_id: str, step_index: int, user: User, reason: str, /) -> str:
        """Deny a waiting approval step, stopping the run."""
        status = self.runner.deny(run_id, step_index, user, reason)
        return f"Denied step {step_index + 1} of run {run_id}; the run is {status}."

    def disable_key(self, key_id: str, user: User, /) -> str:
        """Disable a key now, and record it."""
        if not self.ctx.audited:
            raise KeyBackendError("key changes are audited and no audit.signing_key is configured")
        result = self.ctx.backends(key_id).disable(key_id)
        audit(self.ctx, user, "slack.key_disable", key_id, {"outcome": str(result.outcome)})
        return f"Key {key_id}: {result.outcome}."
