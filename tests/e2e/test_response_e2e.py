"""End to end: simulated attacks through the real broker, playbooks on a SoftHSM2 token, Slack, ledger.

Every simulated key exists in the token (an AES key labelled with the key id). The attacks stream
through a ``keywatch run`` member into SQLite; ``keywatch respond`` logic starts the matching
playbooks in staged mode. Afterwards the attacked keys must be disabled inside the token (an
encryption with them fails), keys no attack touched must still encrypt, Slack must have received
the messages, and the audit ledger must verify until someone edits it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pkcs11 import Attribute, KeyType
from slack_server import SlackServer
from softhsm import AES_USES, SoftHsmToken, make_token
from streaming_support import InProcess, World, make_topics, make_world, names, produce, settings_for

from detector.adapters.audit import Ledger, generate_signing_key
from detector.adapters.broker import EmbeddedBroker
from detector.adapters.responder import Responder, default_playbooks_dir, load_library
from detector.adapters.slack.notifier import SlackNotifier
from detector.adapters.slack.outbox import SlackSender, client_for
from detector.adapters.store import Store
from detector.cli.main import main
from detector.cli.wiring import runner_for
from detector.config import AuditSettings, HsmSettings, ResponseSettings, SlackSettings
from detector.response.playbook import Mode

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory) -> SoftHsmToken:
    return make_token(tmp_path_factory.mktemp("hsm"), label="keywatch-e2e", pin="2468")


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def test_attacks_contained_in_the_hsm_benign_keys_untouched(
    token: SoftHsmToken, slack: SlackServer, tmp_path: Path
) -> None:
    world: World = make_world(tmp_path / "world", keys=24, seed=11)
    keys = sorted({e.key_id for e in world.sim.test} | {e.key_id for e in world.sim.history})
    with token.open() as session:
        for key_id in keys:
            session.generate_key(
                KeyType.AES,
                256,
                label=key_id,
                store=True,
                capabilities=AES_USES,
                template={Attribute.EXTRACTABLE: True},
            )
    attacked = {k for s in world.sim.labels["scenarios"] if s["kind"] == "attack" for k in s["key_ids"]}
    untouched_by_attacks = [k for k in keys if k not in attacked]
    assert untouched_by_attacks, "the simulation leaves some keys alone"

    with EmbeddedBroker() as broker:
        topic, group = names()
        url = f"sqlite:///{tmp_path / 'kw.db'}"
        settings = settings_for(broker.bootstrap, topic, group, url)
        make_topics(settings)
        produce(settings, world.sim)
        InProcess(world, settings).start().join()

    signing_key = tmp_path / "audit.key"
    generate_signing_key(signing_key)
    settings = settings.model_copy(
        update={
            "hsm": HsmSettings(module=Path(token.module), token_label=token.label, pin=token.pin),
            "slack": SlackSettings(
                token="xoxb-test-token", base_url=slack.api_url, default_channel="#kw-test"
            ),
            "audit": AuditSettings(signing_key=signing_key),
            "response": ResponseSettings(default_backend="pkcs11"),
        }
    )
    store = Store(url)
    runner = runner_for(settings, store)
    sender = SlackSender(client_for(settings.slack), store, settings.slack.max_attempts)
    responder = Responder(
        store,
        runner,
        load_library(default_playbooks_dir()),
        Mode.STAGED,
        SlackNotifier(store, "#kw-test"),
        sender.deliver_due,
    )
    started = responder.tick()
    assert started, "the attacks' incidents start playbooks"
    assert responder.tick() == [], "a second round starts nothing new"

    disabled = {k for k in keys if not token.can_encrypt(k)}
    assert disabled, "containment reached the HSM"
    assert disabled <= attacked, f"benign keys were disabled: {sorted(disabled - attacked)}"
    for k in untouched_by_attacks:
        assert token.can_encrypt(k)
    contained_runs = [
        r
        for r in runner.runs(limit=500)
        if any(s["action"] == "disable_key" and s["status"] == "done" for s in r.steps)
    ]
    assert {r.key_id for r in contained_runs} == disabled

    posted = slack.calls("chat.postMessage")
    assert len(posted) >= len(store.list_incidents(limit=1000))
    assert {c.body.get("channel") for c in posted} == {"#kw-test", "#keywatch-incidents"}
    assert any("The key is disabled" in str(c.body.get("text")) for c in posted)

    assert main(["audit", "verify", "--db", url, "--signing-key", str(signing_key)]) == 0
    ledger = Ledger(store, None)
    records = ledger.records()
    assert {r.action for r in records} >= {"playbook_start", "disable_key", "annotate_incident"}
    victim = records[len(records) // 2]
    with store.writing() as conn:
        conn.execute(
            sa.update(sa.table("audit_records", sa.column("seq"), sa.column("target")))
            .where(sa.column("seq") == victim.seq)
            .values(target="someone-else")
        )
    assert main(["audit", "verify", "--db", url, "--signing-key", str(signing_key)]) == 1
    store.close()


def test_rollback_through_the_cli_re_enables_the_key(
    token: SoftHsmToken, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    label = "arn:aws:kms:eu-west-1:111122223333:key/rollback-me"
    with token.open() as session:
        session.generate_key(KeyType.AES, 256, label=label, store=True, capabilities=AES_USES)
    signing_key = tmp_path / "audit.key"
    generate_signing_key(signing_key)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    for var, value in {
        **token.env(),
        "KEYWATCH_AUDIT__SIGNING_KEY": str(signing_key),
        "KEYWATCH_RESPONSE__DEFAULT_BACKEND": "pkcs11",
        "KEYWATCH_SLACK__DEFAULT_CHANNEL": "#kw",
    }.items():
        monkeypatch.setenv(var, value)
    assert main(["users", "add", "alice", "--role", "responder", "--db", db]) == 0
    assert main(["users", "add", "ann", "--role", "analyst", "--db", db]) == 0
    run = ["playbook", "run", "foreign-geography", "--key", label, "--mode", "active", "--db", db]
    assert main([*run, "--as", "ann"]) == 2
    assert "needs the responder role" in capsys.readouterr().err
    assert main([*run, "--as", "alice"]) == 0
    out = capsys.readouterr().out
    run_id = out.split()[1]
    assert "completed" in out and not token.can_encrypt(label)
    assert main(["playbook", "rollback", run_id, "--as", "alice", "--db", db]) == 0
    assert "rolled_back" in capsys.readouterr().out
    assert token.can_encrypt(label)
    assert main(["audit", "verify", "--db", db, "--signing-key", str(signing_key)]) == 0
