"""The SOC console in a real browser: Debian's Chromium driven by Playwright against uvicorn.

The store holds the alerts and incidents of a small simulation with attacks (the detection
pipeline run over its test days); the incident's key lives in a SoftHSM2 token. A responder
starts the containment playbook from the incident page, cannot approve it herself, a second
responder approves it, and the page and the token both show the key disabled. An analyst sees
no approve button, and the API refuses her forced request.

A second incident, on another key and with geography reasons, shows its usage and country charts;
a run there is denied by the second responder and shows as denied; the key is disabled and
enabled again with the key buttons (the token refuses, then allows, encryption); one alert is
marked a true positive by a responder and another a false positive by the analyst (verdicts are
analysts' work; the response buttons stay hidden from her), and ``GET /v1/verdicts`` has both.
Screenshots land in ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from pkcs11 import KeyType
from playwright.sync_api import Browser, Page, expect, sync_playwright
from softhsm import AES_USES, SoftHsmToken, make_token
from streaming_support import make_world, pipeline_factory

from detector.adapters.audit import generate_signing_key
from detector.adapters.keys.pkcs11_backend import Pkcs11Backend
from detector.adapters.responder import default_playbooks_dir
from detector.adapters.store import Store
from detector.adapters.store.users import UserRepository
from detector.api import create_app
from detector.api.routes.console import CSP
from detector.config import AuditSettings, ResponseSettings, Settings
from detector.domain.incidents import Incident
from detector.domain.suppressions import alert_countries
from detector.domain.users import Role
from detector.response.runner import PlaybookRunner

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PLAYBOOK = "contain-key-on-approval"  # shipped in playbooks/: approval, then disable
RESPONSE_BUTTONS = ("approve-step", "deny-step", "run-playbook", "key-disable", "key-enable")


@dataclass
class Console:
    base: str
    store: Store
    runner: PlaybookRunner
    token: SoftHsmToken
    incident: Incident
    geo: Incident  # another key's incident whose reasons name countries
    tokens: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _store_attacks(store: Store, root: Path) -> None:
    """Store the alerts of a small simulation."""
    world = make_world(root, keys=8, seed=5)
    pipeline = pipeline_factory(world, Settings())()
    pipeline.process(world.sim.test)
    store.save_batch(pipeline.finish())


def _incident_with_attacks(store: Store, other: Incident) -> Incident:
    """The busiest high-severity single-key incident, on another key than ``other``."""
    serious = {"high", "critical"}
    found = [
        i for i in store.list_incidents(limit=1000)
        if len(i.key_ids) == 1 and i.severity.label in serious and i.key_ids[0] not in other.key_ids
    ]  # fmt: skip
    assert found, "the simulated attacks open high-severity incidents"
    best = max(found, key=lambda i: (i.alert_count, i.incident_id))
    incident = store.get_incident(best.incident_id)
    assert incident is not None
    return incident


def _geo_incident(store: Store) -> Incident:
    """The busiest single-key incident with countries in its reasons."""
    found = []
    for listed in store.list_incidents(limit=1000):
        incident = store.get_incident(listed.incident_id)
        if incident is None or len(incident.key_ids) != 1:
            continue
        alerts = [a for a in map(store.get_alert, incident.alert_ids) if a is not None]
        if len(alerts) >= 2 and any(alert_countries(a) for a in alerts):
            found.append(incident)
    assert found, "the simulated attacks include travel or a new country"
    return max(found, key=lambda i: (i.alert_count, i.incident_id))


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    root = tmp_path_factory.mktemp("console")
    token = make_token(root / "hsm", label="kw-console", pin="kw-console-pin")
    store = Store(f"sqlite:///{root / 'kw.db'}")
    store.migrate()
    _store_attacks(store, root / "world")
    geo = _geo_incident(store)
    incident = _incident_with_attacks(store, geo)
    with token.open() as session:
        for key_id in (*incident.key_ids, *geo.key_ids):
            session.generate_key(KeyType.AES, 256, label=key_id, store=True, capabilities=AES_USES)
    (root / "playbooks").mkdir()  # only the shipped manual one: no automatic run gets in the way
    shutil.copy(default_playbooks_dir() / f"{PLAYBOOK}.yaml", root / "playbooks")
    generate_signing_key(root / "audit.key")
    settings = Settings(
        response=ResponseSettings(playbooks_dir=root / "playbooks", default_backend="pkcs11"),
        audit=AuditSettings(signing_key=root / "audit.key"),
    )
    backend = Pkcs11Backend(token.module, token.label, token.pin)
    app = create_app(settings, store, backends={"pkcs11": backend})
    users = UserRepository(store)
    tokens = {}
    for name, role in (("rita", Role.RESPONDER), ("rob", Role.RESPONDER), ("ann", Role.ANALYST)):
        users.add(name, role)
        tokens[name] = users.issue_token(name)

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = threading.Thread(target=server.run, daemon=True)
    serving.start()
    runner: PlaybookRunner = app.state.keywatch.runner
    stop = threading.Event()
    ticking = threading.Thread(target=_tick_loop, args=(runner, stop), daemon=True)  # `keywatch respond`
    ticking.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield Console(f"http://127.0.0.1:{port}", store, runner, token, incident, geo, tokens)
    stop.set()
    server.should_exit = True
    serving.join(10)
    ticking.join(10)
    store.close()


def _tick_loop(runner: PlaybookRunner, stop: threading.Event) -> None:
    while not stop.wait(0.3):
        runner.tick()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _log_in(browser: Browser, console: Console, who: str, violations: list[str]) -> Page:
    page = browser.new_context().new_page()
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    response = page.goto(f"{console.base}/console/")
    assert response is not None and response.headers["content-security-policy"] == CSP
    page.get_by_test_id("token-input").fill(console.tokens[who])
    page.get_by_test_id("login").click()
    expect(page.get_by_test_id("whoami")).to_contain_text(who)
    return page


def _open_incident(page: Page, console: Console, incident: Incident | None = None) -> None:
    incident = incident or console.incident
    page.goto(f"{console.base}/console/#/incident/{incident.incident_id}")
    expect(page.get_by_test_id("incident-title")).to_have_text(incident.title)
    expect(page.get_by_test_id("key-state")).to_have_text("enabled")


def _forced_approve(page: Page, run_id: str) -> int:
    """What a hand-made request with this page's token gets from the approve endpoint."""
    status: int = page.evaluate(
        """async (runId) => (await fetch(`/v1/runs/${runId}/steps/0/approve`, {method: "POST",
            headers: {Authorization: `Bearer ${sessionStorage.getItem("keywatch.token")}`}})).status""",
        run_id,
    )
    return status


def test_contain_an_incident_from_the_console(browser: Browser, console: Console) -> None:
    violations: list[str] = []
    key_id = console.incident.key_ids[0]
    assert console.token.can_encrypt(key_id)

    rita = _log_in(browser, console, "rita", violations)
    expect(rita.get_by_test_id("incident-row").first).to_be_visible()
    _shot(rita, "01-incidents")
    rita.goto(f"{console.base}/console/#/alerts")
    expect(rita.get_by_test_id("alert-row").first).to_be_visible()
    _shot(rita, "02-alert-queue")

    _open_incident(rita, console)
    n_alerts = len(console.incident.alert_ids)
    expect(rita.get_by_test_id("usage-bar")).to_have_count(n_alerts)
    assert rita.get_by_test_id("reason").count() >= n_alerts
    assert rita.get_by_test_id("evidence").count() > 0
    rita.get_by_test_id("playbook-select").select_option(PLAYBOOK)
    rita.get_by_test_id("mode-select").select_option("staged")
    rita.get_by_test_id("run-playbook").click()
    expect(rita.get_by_test_id("flash")).to_contain_text(f"{PLAYBOOK} (staged)")
    expect(rita.get_by_test_id("run-status")).to_have_text("waiting", timeout=15_000)
    expect(rita.get_by_test_id("approve-step")).to_have_count(0)  # the requester never decides
    expect(rita.get_by_test_id("runs")).to_contain_text("another responder decides")
    run_id = rita.get_by_test_id("run").get_attribute("data-run-id")
    assert run_id
    assert _forced_approve(rita, run_id) == 403
    _shot(rita, "03-incident-waiting-for-approval")

    ann = _log_in(browser, console, "ann", violations)
    _open_incident(ann, console)
    expect(ann.get_by_test_id("run-status")).to_have_text("waiting")
    for hidden in RESPONSE_BUTTONS:
        expect(ann.get_by_test_id(hidden)).to_have_count(0)
    assert _forced_approve(ann, run_id) == 403
    _shot(ann, "04-incident-as-analyst")

    rob = _log_in(browser, console, "rob", violations)
    _open_incident(rob, console)
    rob.get_by_test_id("approve-step").click()
    expect(rob.get_by_test_id("flash")).to_contain_text("approved")
    expect(rob.get_by_test_id("key-state")).to_have_text("disabled", timeout=15_000)
    expect(rob.get_by_test_id("run-status")).to_have_text("completed")
    expect(rob.get_by_test_id("incident-status")).to_have_text("contained")
    expect(rob.get_by_test_id("key-enable")).to_be_visible()
    _shot(rob, "05-key-disabled")
    expect(rita.get_by_test_id("key-state")).to_have_text("disabled", timeout=15_000)  # polling

    assert not console.token.can_encrypt(key_id), "the key is disabled inside the token"
    assert violations == []


def test_charts_deny_key_buttons_and_verdicts(browser: Browser, console: Console) -> None:
    violations: list[str] = []
    geo, key_id = console.geo, console.geo.key_ids[0]
    alerts = [a for a in map(console.store.get_alert, geo.alert_ids) if a is not None]
    countries = set().union(*map(alert_countries, alerts))

    rita = _log_in(browser, console, "rita", violations)
    _open_incident(rita, console, geo)
    _expect_drawn(rita, "usage-chart", len(alerts))
    _expect_drawn(rita, "country-chart", 1)
    chart_text = rita.get_by_test_id("country-chart").text_content() or ""
    assert any(c in chart_text for c in countries), (countries, chart_text)
    _shot(rita, "06-incident-charts")

    rita.get_by_test_id("playbook-select").select_option(PLAYBOOK)
    rita.get_by_test_id("mode-select").select_option("staged")
    rita.get_by_test_id("run-playbook").click()
    expect(rita.get_by_test_id("run-status")).to_have_text("waiting", timeout=15_000)
    rob = _log_in(browser, console, "rob", violations)
    _open_incident(rob, console, geo)
    rob.get_by_test_id("deny-step").click()
    expect(rob.get_by_test_id("flash")).to_contain_text("denied")
    expect(rob.get_by_test_id("run-status")).to_have_text("denied")
    expect(rob.get_by_test_id("approve-step")).to_have_count(0)
    expect(rita.get_by_test_id("run-status")).to_have_text("denied", timeout=15_000)  # polling
    expect(rob.get_by_test_id("key-state")).to_have_text("enabled")
    assert console.token.can_encrypt(key_id), "a denied run leaves the key alone"
    _shot(rob, "07-run-denied")

    rob.get_by_test_id("key-disable").click()
    expect(rob.get_by_test_id("key-state")).to_have_text("disabled", timeout=15_000)
    assert not console.token.can_encrypt(key_id)
    _shot(rob, "08-key-disabled-by-button")
    rob.get_by_test_id("key-enable").click()
    expect(rob.get_by_test_id("key-state")).to_have_text("enabled", timeout=15_000)
    assert console.token.can_encrypt(key_id), "the enabled key encrypts again inside the token"

    ann = _log_in(browser, console, "ann", violations)
    _open_incident(ann, console, geo)
    for hidden in RESPONSE_BUTTONS:
        expect(ann.get_by_test_id(hidden)).to_have_count(0)
    pages = {"rob": rob, "ann": ann}
    marked = {alerts[0].alert_id: ("true_positive", "rob"), alerts[1].alert_id: ("false_positive", "ann")}
    for alert_id, (verdict, who) in marked.items():
        row = pages[who].locator(f'[data-testid="incident-alert"][data-alert-id="{alert_id}"]')
        row.get_by_test_id(f"verdict-{verdict}").click()
        expect(pages[who].get_by_test_id("flash")).to_contain_text(f"Alert marked {verdict}")
    _shot(ann, "09-verdicts")
    with httpx.Client(base_url=console.base) as client:
        answer = client.get("/v1/verdicts", headers={"Authorization": f"Bearer {console.tokens['ann']}"})
    assert {v["alert_id"]: (v["verdict"], v["author"]) for v in answer.json()["items"]} == marked
    assert violations == []


def _expect_drawn(page: Page, test_id: str, bars: int) -> None:
    """The chart is visible, has a size, and draws at least ``bars`` bars."""
    chart = page.get_by_test_id(test_id)
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and box["width"] > 0 and box["height"] > 0
    assert chart.locator("rect").count() >= bars


def test_quick_navigation_draws_one_page(browser: Browser, console: Console) -> None:
    """Pages load asynchronously: one still loading for an earlier navigation must not draw too."""
    violations: list[str] = []
    ann = _log_in(browser, console, "ann", violations)
    target = f"#/incident/{console.incident.incident_id}"
    ann.evaluate(f"() => {{ location.hash = '{target}'; setTimeout(() => {{ location.hash = '#/alerts'; "
                 f"setTimeout(() => {{ location.hash = '{target}'; }}, 0); }}, 0); }}")  # fmt: skip
    expect(ann.get_by_test_id("key-state")).to_be_visible()  # whatever state earlier tests left
    ann.wait_for_timeout(1500)  # every response of the three navigations is in
    expect(ann.get_by_test_id("incident-title")).to_have_count(1)
    expect(ann.get_by_test_id("key-state")).to_have_count(1)
    expect(ann.get_by_test_id("alert-queue")).to_have_count(0)
    assert not violations


def test_console_headers_redirect_and_whoami(console: Console) -> None:
    with httpx.Client(base_url=console.base) as client:
        moved = client.get("/console", follow_redirects=False)
        assert moved.status_code in (307, 308) and moved.headers["location"].endswith("/console/")
        for path in ("/console/", "/console/app.js", "/console/style.css", "/console/missing.js"):
            response = client.get(path)
            assert response.headers["content-security-policy"] == CSP, path
            assert response.headers["x-content-type-options"] == "nosniff"
        assert client.get("/console/missing.js").status_code == 404
        page = client.get("/console/").text
        assert '<script src="app.js" defer></script>' in page
        assert "://" not in page  # nothing is fetched from elsewhere
        me = client.get("/v1/me", headers={"Authorization": f"Bearer {console.tokens['ann']}"})
        assert me.json() == {"name": "ann", "role": "analyst"}
        assert client.get("/v1/me").status_code == 401


def test_no_script_in_the_console_builds_html_from_strings() -> None:
    script = (Path(__file__).resolve().parents[2] / "detector/api/console/app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in script, sink
