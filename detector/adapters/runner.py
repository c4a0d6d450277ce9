"""The playbook runner on the SQL store: runs persist in its tables, ledger records commit with them."""

from __future__ import annotations

import time
from collections.abc import Callable

from detector.adapters.store import Store
from detector.adapters.store.runs import RunRepository, TransactionalAuditor
from detector.domain.keys import KeyBackend
from detector.domain.ports import Notifier
from detector.response.runner import PlaybookRunner


def playbook_runner(
    store: Store,
    backend_for: Callable[[str], KeyBackend],
    notifier: Notifier,
    auditor: TransactionalAuditor,
    *,
    retry_base_seconds: float = 0.5,
    retry_max_seconds: float = 30.0,
    clock: Callable[[], float] = time.time,
) -> PlaybookRunner:
    """A runner whose runs, steps and approvals live in ``store``, whose playbooks write on its incidents."""
    return PlaybookRunner(RunRepository(store, auditor), backend_for, notifier, auditor, store,
                          retry_base_seconds=retry_base_seconds, retry_max_seconds=retry_max_seconds,
                          clock=clock)  # fmt: skip
