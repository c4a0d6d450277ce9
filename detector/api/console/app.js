// KeyWatch SOC console: hash routes, one bearer token in sessionStorage, the REST API only.
// Every piece of data reaches the page as text nodes or attributes: no HTML is ever parsed from data.
"use strict";

(() => {
  const TOKEN_KEY = "keywatch.token";
  const RANK = { analyst: 1, responder: 2, admin: 3 };
  const POLL_MS = 4000;
  const VERDICT_PATH = "/v1/alerts/{alert_id}/verdict";
  const SVG_NS = "http://www.w3.org/2000/svg";
  const state = { me: null, verdict: null, timers: [] };

  // -- DOM helpers -------------------------------------------------------------------------------

  function build(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {  // nested lists: the country chart's rows
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const el = (tag, attrs, ...children) => build(document.createElement(tag), attrs, children);
  const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), attrs, children);
  const $ = (id) => document.getElementById(id);

  function flash(text, kind = "ok") {
    $("flash").replaceChildren(el("p", { class: kind, "data-testid": "flash" }, text));
  }

  const when = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, " UTC") : "—");
  const sev = (label) => el("span", { class: `sev sev-${label}` }, label);
  const can = (role) => state.me !== null && RANK[state.me.role] >= RANK[role];
  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

  // -- API -----------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(`${status}: ${detail}`);
      this.status = status;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store", credentials: "omit",
    });
    let data = null;
    try { data = await response.json(); } catch (_) { data = null; }
    if (response.status === 401 && path !== "/v1/me") logout("Your token was refused: paste it again.");
    if (!response.ok) {
      const detail = data && data.detail !== undefined ? data.detail : response.statusText;
      throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail));
    }
    return data;
  }

  async function act(what, call) {
    try {
      const result = await call();
      flash(what);
      return result;
    } catch (err) {
      flash(`${what} failed — ${err.message}`, "error");
      return null;
    }
  }

  // The verdict endpoint is optional: look it up in the API's own schema (no request with side effects).
  async function probeVerdict() {
    try {
      const schema = await (await fetch("/v1/openapi.json", { cache: "no-store" })).json();
      const op = schema.paths && schema.paths[VERDICT_PATH] && schema.paths[VERDICT_PATH].post;
      if (!op) return null;
      const ref = (((op.requestBody || {}).content || {})["application/json"] || {}).schema || {};
      const model = ref.$ref ? schema.components.schemas[ref.$ref.split("/").pop()] : ref;
      for (const [field, spec] of Object.entries((model && model.properties) || {})) {
        const options = spec.enum || ((spec.$ref && schema.components.schemas[spec.$ref.split("/").pop()]) || {}).enum;
        if (options) return { field, options };
      }
      return { field: "verdict", options: ["true_positive", "false_positive"] };
    } catch (_) {
      return null;
    }
  }

  // -- session -------------------------------------------------------------------------------------

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    state.me = null;
    $("nav").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    if (message) flash(message, "error");
    if (location.hash !== "#/login") location.hash = "#/login";
    else route();
  }

  async function loadSession() {
    state.me = await api("GET", "/v1/me");
    state.verdict = await probeVerdict();
    $("who").textContent = `${state.me.name} (${state.me.role})`;
    $("who").setAttribute("data-testid", "whoami");
    $("nav").hidden = false;
    $("logout").hidden = false;
  }

  function loginPage(view) {
    const input = el("textarea", { id: "token-input", rows: 2, autocomplete: "off", spellcheck: "false",
      placeholder: "kw_…", "data-testid": "token-input" });
    const submit = async (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, input.value.trim());
      try {
        await loadSession();
      } catch (err) {
        sessionStorage.removeItem(TOKEN_KEY);
        flash(`Log in failed — ${err.message}`, "error");
        return;
      }
      flash(`Logged in as ${state.me.name}`);
      if (location.hash === "#/incidents") route();
      else location.hash = "#/incidents";
    };
    view.append(el("h1", {}, "Log in"), el("section", {},
      el("p", {}, "Paste the API token `keywatch users add` printed for you. It stays in this tab only."),
      el("form", { onsubmit: submit }, input,
        el("div", { class: "row" }, el("button", { type: "submit", "data-testid": "login" }, "Log in")))));
  }

  // -- alert queue ---------------------------------------------------------------------------------

  function verdictButtons(alert) {
    if (!state.verdict) return [];
    const { field, options } = state.verdict;
    return options.map((option) => el("button", {
      type: "button", class: "secondary", "data-testid": `verdict-${option}`,
      onclick: () => act(`Alert marked ${option}`, () => api("POST",
        `/v1/alerts/${encodeURIComponent(alert.alert_id)}/verdict`, { [field]: option })),
    }, option.replace(/_/g, " ")));
  }

  function alertRow(alert) {
    const first = alert.reasons.length ? alert.reasons[0].text : "";
    return el("tr", { "data-testid": "alert-row", "data-alert-id": alert.alert_id },
      el("td", {}, when(alert.window_end)), el("td", {}, sev(alert.severity)), el("td", {}, alert.detector),
      el("td", { class: "mono" }, alert.key_id), el("td", { class: "mono" }, alert.principal || "—"),
      el("td", {}, first), el("td", {}, String(alert.count)), el("td", {}, verdictButtons(alert)));
  }

  function alertsPage(view) {
    const body = el("tbody");
    const stamp = el("span", { class: "muted", "data-testid": "queue-updated" });
    const head = ["Window end", "Severity", "Detector", "Key", "Principal", "Why", "Windows", ""];
    view.append(el("h1", {}, "Alert queue"), el("p", {}, "Newest first, refreshed every few seconds. ", stamp),
      el("table", { "data-testid": "alert-queue" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), body));
    const load = async () => {
      try {
        const page = await api("GET", "/v1/alerts?limit=100");
        body.replaceChildren(...page.items.map(alertRow));
        stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
      } catch (err) {
        stamp.textContent = `refresh failed — ${err.message}`;
      }
    };
    load();
    state.timers.push(setInterval(load, POLL_MS));
  }

  // -- incidents list --------------------------------------------------------------------------------

  function incidentsPage(view) {
    const body = el("tbody");
    const filter = el("select", { "data-testid": "status-filter", onchange: () => load() },
      ["", "open", "acknowledged", "contained", "resolved", "false_positive"].map(
        (s) => el("option", { value: s }, s || "any status")));
    const head = ["Incident", "Severity", "Status", "Keys", "Principals", "Alerts", "Last seen", "Assignee"];
    view.append(el("h1", {}, "Incidents"), el("div", { class: "row" }, "Status ", filter),
      el("table", { "data-testid": "incidents" }, el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))), body));
    const load = async () => {
      const query = filter.value ? `&status=${encodeURIComponent(filter.value)}` : "";
      const page = await api("GET", `/v1/incidents?limit=200${query}`);
      body.replaceChildren(...page.items.map((i) => el("tr", { "data-testid": "incident-row" },
        el("td", {}, el("a", { href: `#/incident/${encodeURIComponent(i.incident_id)}`, "data-testid": "incident-link" }, i.title)),
        el("td", {}, sev(i.severity)), el("td", {}, i.status), el("td", { class: "mono" }, i.key_ids.join(", ")),
        el("td", { class: "mono" }, i.principals.join(", ")), el("td", {}, String(i.alert_count)),
        el("td", {}, when(i.last_seen)), el("td", {}, i.assignee || "—"))));
    };
    load().catch((err) => flash(`Loading incidents failed — ${err.message}`, "error"));
    state.timers.push(setInterval(() => load().catch(() => {}), POLL_MS * 3));
  }

  // -- the usage chart (inline SVG) ------------------------------------------------------------------

  const SEV_COLOURS = { low: "#6b8e23", medium: "#d49a00", high: "#d9531e", critical: "#b00020" };

  function callsOf(alert) {
    let calls = 0;
    for (const r of alert.reasons) {
      for (const m of r.text.matchAll(/(\d[\d,]*) (?:data )?calls?\b/g)) calls = Math.max(calls, Number(m[1].replace(/,/g, "")));
    }
    return calls || alert.count;
  }

  function countriesOf(alerts) {
    const seen = new Map();
    const add = (country, calls, kind) => {
      const c = seen.get(country) || { calls: 0, kind };
      c.calls += calls;
      seen.set(country, c);
    };
    const usual = new Set();
    for (const a of alerts) {
      for (const r of a.reasons) {
        const from = r.feature === "new_country_events" && r.text.match(/ from ([^,(]+?),/);
        if (from) add(from[1].trim(), Number(r.value) || 1, "new");
        if (from && typeof r.baseline === "string") r.baseline.split(", ").filter(Boolean).forEach((u) => usual.add(u));
        const hop = r.text.match(/ was in (.+?) and then (.+?) [\d,.]+ km away/);
        if (hop) { add(hop[1], 1, "travel"); add(hop[2], 1, "travel"); }
      }
    }
    return { seen, usual };
  }

  // One bar per alert: its latest window, as tall as the calls its reasons count; a dashed line
  // at the same height spans the whole episode (first window to last) when the alert was merged.
  function timeChart(alerts) {
    const W = 860, H = 190, L = 50, B = 30, T = 14;
    const spans = alerts.map((a) => ({ a, first: Date.parse(a.first_window_start), start: Date.parse(a.window_start),
      end: Date.parse(a.window_end), calls: callsOf(a) }));
    const lo = Math.min(...spans.map((s) => s.first)), hi = Math.max(...spans.map((s) => s.end), lo + 60000);
    const top = Math.max(...spans.map((s) => s.calls), 1);
    const x = (t) => L + ((t - lo) / (hi - lo)) * (W - L - 10);
    const y = (v) => H - B - (v / top) * (H - B - T);
    const colour = (s) => SEV_COLOURS[s.a.severity] || "#1f5fbf";
    return svg("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "data-testid": "usage-chart",
      "aria-label": "calls per alerted window over time" },
      svg("line", { x1: L, y1: H - B, x2: W - 10, y2: H - B, stroke: "#888" }),
      svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#888" }),
      svg("text", { x: 4, y: T + 4 }, `${top} calls`), svg("text", { x: 4, y: H - B }, "0"),
      svg("text", { x: L, y: H - 8 }, when(new Date(lo).toISOString())),
      svg("text", { x: W - 10, y: H - 8, "text-anchor": "end" }, when(new Date(hi).toISOString())),
      spans.filter((s) => s.first < s.start).map((s) => svg("line", { x1: x(s.first), x2: x(s.end), y1: y(s.calls),
        y2: y(s.calls), stroke: colour(s), "stroke-dasharray": "4 3", "stroke-opacity": 0.7 })),
      spans.map((s) => svg("rect", { x: x(s.start), y: y(s.calls), width: Math.max(x(s.end) - x(s.start), 5),
        height: H - B - y(s.calls), fill: colour(s), "data-testid": "usage-bar" },
        svg("title", {}, `${s.a.detector}: ${s.calls} calls; episode ${when(s.a.first_window_start)} – ${when(s.a.window_end)}` +
          ` over ${s.a.count} window(s)`))));
  }

  function countryChart(alerts) {
    const { seen, usual } = countriesOf(alerts);
    const usualText = usual.size ? `Usually used from: ${[...usual].join(", ")}.` : "";
    if (!seen.size) return el("p", { class: "muted" }, `No country appears in these alerts' reasons. ${usualText}`);
    const rows = [...seen.entries()].sort((p, q) => q[1].calls - p[1].calls);
    const top = Math.max(...rows.map(([, c]) => c.calls), 1), W = 860, R = 22, L = 140;
    return el("div", {}, svg("svg", { class: "chart", viewBox: `0 0 ${W} ${rows.length * R + 10}`, role: "img",
      "data-testid": "country-chart", "aria-label": "calls by country" },
      rows.map(([country, c], i) => [
        svg("text", { x: 4, y: i * R + 18 }, country),
        svg("rect", { x: L, y: i * R + 6, height: 14, width: Math.max(((W - L - 230) * c.calls) / top, 3),
          fill: c.kind === "new" ? "#b00020" : "#d49a00" }),
        svg("text", { x: L + Math.max(((W - L - 230) * c.calls) / top, 3) + 6, y: i * R + 18 },
          c.kind === "new" ? `${c.calls} calls, never seen before` : `${c.calls} travel hop(s)`),
      ])), el("p", { class: "muted" }, usualText));
  }

  // -- incident page -----------------------------------------------------------------------------------

  function keySection(keyId, inventory, refresh) {
    const info = inventory.find((k) => k.key_id === keyId || k.label === keyId);
    const st = info ? info.state : "unknown";
    const path = `/v1/keys/${keyId.split("/").map(encodeURIComponent).join("/")}`;
    const button = (verb, cls) => el("button", { type: "button", class: cls, "data-testid": `key-${verb}`,
      onclick: async () => { await act(`Key ${keyId}: ${verb}`, () => api("POST", `${path}/${verb}`)); refresh(); } },
    `${verb[0].toUpperCase()}${verb.slice(1)} key`);
    return el("div", { class: "row" }, el("span", { class: "mono" }, keyId),
      el("span", { class: `state-${st}`, "data-testid": "key-state" }, st),
      can("responder") && st !== "disabled" && button("disable", "danger"),
      can("responder") && st === "disabled" && button("enable", "secondary"));
  }

  function runBlock(run, refresh) {
    const mine = state.me && run.requested_by === state.me.name;
    const decide = (step, verb) => el("button", { type: "button", class: verb === "approve" ? "" : "secondary",
      "data-testid": `${verb}-step`, onclick: async () => {
        await act(`Step ${step.step_id} ${verb === "approve" ? "approved" : "denied"}`,
          () => api("POST", `/v1/runs/${encodeURIComponent(run.run_id)}/steps/${step.step_index}/${verb}`, {}));
        refresh();
      } }, verb === "approve" ? "Approve" : "Deny");
    const rows = run.steps.map((s) => {
      const waiting = s.action === "require_approval" && s.status === "waiting";
      let cell = "";
      if (waiting && can("responder") && !mine) cell = [decide(s, "approve"), " ", decide(s, "deny")];
      else if (waiting && mine) cell = el("span", { class: "muted" }, "you requested this run: another responder decides");
      else if (waiting) cell = el("span", { class: "muted" }, "waiting for a responder");
      return el("tr", {}, el("td", {}, String(s.step_index)), el("td", {}, s.step_id), el("td", {}, s.action),
        el("td", { "data-testid": "step-status" }, s.status), el("td", {}, s.error || ""), el("td", {}, cell));
    });
    return el("div", { "data-testid": "run", "data-run-id": run.run_id },
      el("p", {}, el("strong", {}, run.playbook), ` — ${run.mode}, `,
        el("span", { "data-testid": "run-status" }, run.status), `, requested by ${run.requested_by}`),
      el("table", {}, el("tbody", {}, rows)));
  }

  async function startForm(incidentId, refresh) {
    const library = await api("GET", "/v1/playbooks");
    const playbook = el("select", { "data-testid": "playbook-select" },
      library.items.map((p) => el("option", { value: p.name, title: p.description }, p.name)));
    const mode = el("select", { "data-testid": "mode-select" }, library.modes.map((m) => el("option", { value: m }, m)));
    const plan = el("ol", { "data-testid": "plan" });
    const start = async () => {
      const body = { playbook: playbook.value, mode: mode.value };
      const result = await act(`Playbook ${body.playbook} (${body.mode})`,
        () => api("POST", `/v1/incidents/${encodeURIComponent(incidentId)}/runs`, body));
      plan.replaceChildren(...((result && result.plan) || []).map((line) => el("li", {}, line)));
      refresh();
    };
    return el("div", {}, el("div", { class: "row" }, "Playbook ", playbook, " mode ", mode,
      el("button", { type: "button", "data-testid": "run-playbook", onclick: start }, "Run playbook")),
      el("p", { class: "muted" }, "Staged and active runs are queued; the responder service executes them."), plan);
  }

  function staticParts(incident) {
    const reasons = incident.alerts.map((a) => el("li", { "data-testid": "incident-alert", "data-alert-id": a.alert_id },
      sev(a.severity), ` ${a.detector} on `, el("span", { class: "mono" }, a.key_id),
      a.principal ? [" by ", el("span", { class: "mono" }, a.principal)] : "",
      ` (${when(a.first_window_start)} – ${when(a.window_end)})`,
      el("ul", {}, a.reasons.map((r) => el("li", { "data-testid": "reason" }, r.text))),
      verdictButtons(a)));
    const evidence = incident.evidence_event_ids.map((e) => el("li", { "data-testid": "evidence" }, e));
    return [
      el("section", {}, el("h2", {}, "Why"), el("ul", { class: "reasons" }, reasons)),
      el("section", {}, el("h2", {}, "How often and from where"),
        incident.alerts.length ? timeChart(incident.alerts) : el("p", {}, "No alerts."),
        countryChart(incident.alerts)),
      el("section", {}, el("h2", {}, `Evidence (${evidence.length} events)`), el("ul", { class: "evidence" }, evidence)),
    ];
  }

  async function incidentPage(view, incidentId) {
    let incident = await api("GET", `/v1/incidents/${encodeURIComponent(incidentId)}`);
    const summary = el("p", { "data-testid": "incident-summary" });
    const keys = el("div", { "data-testid": "keys" });
    const runs = el("div", { "data-testid": "runs" });
    const timeline = el("ol", { class: "timeline", "data-testid": "timeline" });
    let latest = 0;  // a poll and a button's refresh can overlap: only the newest one may draw
    const refresh = async () => {
      const ticket = ++latest;
      try {
        const fetched = await api("GET", `/v1/incidents/${encodeURIComponent(incidentId)}`);
        const [inventory, runList] = await Promise.all([api("GET", "/v1/keys"), api("GET", `/v1/runs?incident=${encodeURIComponent(incidentId)}`)]);
        if (ticket !== latest) return;
        incident = fetched;
        summary.replaceChildren(sev(incident.severity), ` status `, el("strong", { "data-testid": "incident-status" }, incident.status),
          ` · ${incident.alert_count} alert(s) · first ${when(incident.first_seen)} · last ${when(incident.last_seen)}`,
          ` · assignee ${incident.assignee || "none"}`);
        keys.replaceChildren(...incident.key_ids.map((k) => keySection(k, inventory.items, refresh)));
        runs.replaceChildren(...(runList.items.length ? runList.items.map((r) => runBlock(r, refresh)) : [el("p", { class: "muted" }, "No playbook runs yet.")]));
        timeline.replaceChildren(...(incident.timeline || []).map((t) => el("li", {},
          `${when(t.at)} — ${t.actor || "system"}: `, t.text)));
      } catch (err) {
        flash(`Refresh failed — ${err.message}`, "error");
      }
    };
    view.append(el("p", {}, el("a", { href: "#/incidents" }, "← incidents")),
      el("h1", { "data-testid": "incident-title" }, incident.title), summary,
      el("section", {}, el("h2", {}, "Key"), keys),
      el("section", {}, el("h2", {}, "Playbook runs"), can("responder") ? await startForm(incidentId, refresh) : "", runs),
      ...staticParts(incident),
      el("section", {}, el("h2", {}, "Timeline"), timeline));
    await refresh();
    if (view.isConnected) state.timers.push(setInterval(refresh, POLL_MS));  // not for a page navigated away from
  }

  // -- routing -------------------------------------------------------------------------------------------

  async function route() {
    state.timers.forEach(clearInterval);
    state.timers = [];
    // A fresh container per navigation: a page still loading for an earlier one draws into a
    // detached container instead of next to this page.
    const view = el("div", {});
    $("view").replaceChildren(view);
    const hash = location.hash || "#/";
    if (!state.me) {
      loginPage(view);
      return;
    }
    const incident = hash.match(/^#\/incident\/(.+)$/);
    try {
      if (incident) await incidentPage(view, decodeURIComponent(incident[1]));
      else if (hash === "#/alerts") alertsPage(view);
      else incidentsPage(view);
    } catch (err) {
      view.replaceChildren(el("p", { class: "error" }, `Could not load this page — ${err.message}`));
    }
  }

  async function start() {
    $("logout").addEventListener("click", () => logout("Logged out."));
    window.addEventListener("hashchange", route);
    if (token()) {
      try { await loadSession(); } catch (_) { sessionStorage.removeItem(TOKEN_KEY); state.me = null; }
    }
    route();
  }

  document.addEventListener("DOMContentLoaded", start);
})();
