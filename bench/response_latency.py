"""Containment latency: from an alert stored to its key disabled inside a SoftHSM2 token.

Creates a fresh SoftHSM2 token with ``--keys`` AES keys, a SQLite store and an audit signing key,
and runs the responder (the loop of ``keywatch respond``: incidents -> matching playbook -> run)
on a thread with the shipped playbook library in staged mode. It then stores one high-severity
``new_geography`` alert per key, ``--interval`` seconds apart, as the consumer would, and measures
for each the time from the end of the store transaction to the end of the ``disable_key`` step
(the HSM call returned and the step was recorded). Prints p50/p99/max against the target
p99 <= 1 s. Nothing is asserted.

    .venv/bin/python bench/response_latency.py
    .venv/bin/python bench/response_latency.py --keys 100 --interval 0.02
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from detector.adapters.audit import generate_signing_key
from detector.adapters.keys.softhsm import make_token
from detector.adapters.responder import Responder, default_playbooks_dir, load_library
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.store import Store
from detector.adapters.store import tables as t
from detector.cli.wiring import runner_for
from detector.config import AuditSettings, HsmSettings, ResponseSettings, Settings
from detector.domain.alerts import Alert, Reason, Severity, alert_id_for
from detector.response.playbook import Mode

TARGET_P99 = 1.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--interval", type=float, default=0.1, help="seconds between stored alerts")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="keywatch-bench-response-"))
    label, pin = "bench", "1234"
    keys = [f"arn:aws:kms:eu-west-1:111122223333:key/bench-{i:05d}" for i in range(args.keys)]
    module = make_token(work / "hsm", label, pin, keys)
    signing = work / "audit.key"
    generate_signing_key(signing)
    settings = Settings().model_copy(update={
        "hsm": HsmSettings(module=module, token_label=label, pin=pin),
        "audit": AuditSettings(signing_key=signing),
        "response": ResponseSettings(default_backend="pkcs11"),
    })  # fmt: skip
    store = Store(f"sqlite:///{work / 'kw.db'}")
    store.migrate()
    runner = runner_for(settings, store)
    responder = Responder(store, runner, load_library(default_playbooks_dir()), Mode.STAGED,
                          SlackNotifier(store, "#bench"))  # fmt: skip
    stop = threading.Event()
    worker = threading.Thread(target=responder.run_forever, args=(stop, settings.response.poll_seconds))
    worker.start()
    stored: dict[str, float] = {}
    t0 = time.time() - 3600
    for i, k in enumerate(keys):
        alert = _alert(k, i, t0)
        store.save_batch([alert])
        stored[k] = time.time()
        time.sleep(args.interval)
    deadline = time.time() + 60
    done: dict[str, float] = {}
    while time.time() < deadline and len(done) < len(keys):
        done = _disabled_at(store)
        time.sleep(0.2)
    stop.set()
    worker.join()
    lat = sorted(done[k] - stored[k] for k in keys if k in done)
    poll = settings.response.poll_seconds
    print(f"machine: load {os.getloadavg()[0]:.2f}, {os.cpu_count()} cores; poll every {poll} s; "
          f"{len(keys)} keys, one alert every {args.interval} s")  # fmt: skip
    print(f"keys disabled in the token: {len(lat)}/{len(keys)}")
    if lat:
        q = statistics.quantiles(lat, n=100, method="inclusive")
        verdict = "met" if q[98] <= TARGET_P99 else "MISSED"
        print(f"alert stored -> key disabled: p50 {q[49]:.3f} s  p99 {q[98]:.3f} s  max {lat[-1]:.3f} s  "
              f"(target p99 <= {TARGET_P99} s: {verdict})")  # fmt: skip
    store.close()
    return 0


def _alert(key_id: str, i: int, t0: float) -> Alert:
    start = t0 + i * 60
    principal = f"arn:aws:iam::111122223333:user/intruder-{i}"
    reason = Reason("new_country", "KP", "US, DE", f"{principal} used the key from KP, never seen on it")
    return Alert(alert_id_for(key_id, "new_geography", principal, start), key_id, principal, "new_geography",
                 Severity.HIGH, 1.0, start, start + 60, start, [reason], [f"ev-{i}"])  # fmt: skip


def _disabled_at(store: Store) -> dict[str, float]:
    q = (
        sa.select(t.playbook_runs.c.params, t.playbook_steps.c.finished_at)
        .join(t.playbook_steps, t.playbook_steps.c.run_id == t.playbook_runs.c.run_id)
        .where(t.playbook_steps.c.action == "disable_key", t.playbook_steps.c.status == "done")
    )
    with store.reading() as conn:
        return {row.params["context"]["key_id"]: row.finished_at.timestamp() for row in conn.execute(q)}


if __name__ == "__main__":
    sys.exit(main())
