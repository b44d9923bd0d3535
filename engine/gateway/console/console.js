// The engine's web console: one page over the HTTP/JSON API (/v1/...), with the caller's token
// as a bearer header, so it sees and may do exactly what that token may through gRPC.
// No build step: plain modern JavaScript. Routes live in the URL's fragment (#/inbox, ...).
"use strict";

const TOKEN_KEY = "engine.token";
const app = { token: sessionStorage.getItem(TOKEN_KEY), watch: null, claims: null };

// ------------------------------------------------------------------------------- helpers

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" })[c]);
}

// Markdown for questions: paragraphs, lists, code blocks, `code`, **bold**, *em*, [links](url).
// Everything is escaped first; only http(s) and mailto links become anchors.
function markdown(source) {
  const blocks = String(source || "").replace(/\r\n/g, "\n").split(/\n{2,}/);
  const inline = (text) => escapeHtml(text)
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\(((?:https?:|mailto:)[^)\s]+)\)/g,
      (_, label, url) => `<a href="${url}" rel="noopener noreferrer" target="_blank">${label}</a>`);
  return blocks.map((block) => {
    if (block.startsWith("```")) {
      const body = block.replace(/^```[^\n]*\n?/, "").replace(/\n?```$/, "");
      return `<pre><code>${escapeHtml(body)}</code></pre>`;
    }
    const lines = block.split("\n");
    if (lines.every((line) => /^\s*[-*] /.test(line))) {
      return `<ul>${lines.map((l) => `<li>${inline(l.replace(/^\s*[-*] /, ""))}</li>`).join("")}</ul>`;
    }
    if (lines.every((line) => /^\s*\d+\. /.test(line))) {
      return `<ol>${lines.map((l) => `<li>${inline(l.replace(/^\s*\d+\. /, ""))}</li>`).join("")}</ol>`;
    }
    const heading = /^(#{1,3}) (.*)$/.exec(block);
    if (heading && lines.length === 1) return `<p><strong>${inline(heading[2])}</strong></p>`;
    return `<p>${lines.map(inline).join("<br>")}</p>`;
  }).join("");
}

function short(value) {
  return String(value || "").replace(/^(RUN_STATUS_|ACTION_TYPE_|STEP_OUTCOME_)/, "").toLowerCase();
}

function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  return el("time", { datetime: timestamp, title: timestamp }, date.toLocaleString());
}

function notice(text) {
  document.getElementById("notice").textContent = text || "";
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.status || "";
    const info = (error.details || []).find((d) => (d["@type"] || "").endsWith("ErrorInfo"));
    this.reason = info ? info.reason : "";
  }
  toString() {
    return this.reason ? `${this.message} (${this.reason})` : this.message;
  }
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { "Authorization": `Bearer ${app.token}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401) signOut(String(error));
    throw error;
  }
  return data;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) if (value) search.set(key, value);
  const text = search.toString();
  return text ? `?${text}` : "";
}

// ------------------------------------------------------------------------------- sign-in

function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
  } catch (_) {
    return null;
  }
}

function signIn(token) {
  app.token = token.trim();
  app.claims = claimsOf(app.token);
  sessionStorage.setItem(TOKEN_KEY, app.token);
}

function signOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  app.token = null;
  app.claims = null;
  notice(why || "Signed out.");
  location.hash = "#/signin";
  route();
}

function signInPage(main) {
  const input = el("input", { type: "password", id: "token", autocomplete: "off", required: true });
  const form = el("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      signIn(input.value);
      try {
        await api("GET", "/v1/definitions?page_size=1");
        notice("");
        location.hash = "#/inbox";
      } catch (error) {
        signOut(`That token was refused: ${error}`);
      }
    },
  },
  el("label", { for: "token" }, "Token (a JWT from your organization's admin, or ENGINE_TOKEN)"),
  input,
  el("div", { class: "controls" }, el("button", { class: "primary", type: "submit" }, "Sign in")));
  main.append(el("h1", {}, "Sign in"), form);
  input.focus();
}

// ------------------------------------------------------------------------------- prompts

function rulesText(action) {
  const rules = (action.parameters || {}).answer_rules;
  if (!rules) return "Anyone in the organization may answer.";
  const who = [];
  if (rules.roles && rules.roles.length) who.push(`roles ${rules.roles.join(", ")}`);
  if (rules.subjects && rules.subjects.length) who.push(rules.subjects.join(", "));
  let text = who.length ? `May answer: ${who.join("; ")}.` : "Anyone in the organization may answer.";
  if (rules.approvals > 1) text += ` Needs ${rules.approvals} approvals.`;
  if (rules.allow_starter === false) text += " The run's starter may not answer.";
  return text;
}

function answeredText(answers) {
  if (!answers || !answers.length) return null;
  return `Answered by ${answers.map((a) => `${a.subject || "(no subject)"}${
    a.answer === undefined ? "" : ` (${JSON.stringify(a.answer)})`}`).join(", ")}.`;
}

function promptCard(action, onAnswered) {
  const params = action.parameters || {};
  const kind = params.prompt_type || "info";
  const status = el("div", { role: "status", "aria-live": "polite" });
  const question = el("div", { class: "question" });
  question.innerHTML = markdown(params.message);
  const buttons = [];

  async function answer(result) {
    buttons.forEach((button) => { button.disabled = true; });
    status.className = "";
    status.textContent = "Sending…";
    try {
      const advance = await api("POST", `/v1/workflows/${encodeURIComponent(action.workflow_id)}:submitResult`,
        { action_id: action.action_id, result, request_id: `console-${action.action_id}-${Date.now()}` });
      status.className = "done";
      status.textContent = `Answered. The run is ${short(advance.status)}${
        advance.pending_actions && advance.pending_actions.length
          ? ` at ${advance.pending_actions.map((a) => a.step_id).join(", ")}` : ""}.`;
      if (onAnswered) onAnswered(advance);
    } catch (error) {
      status.className = "problem";
      status.textContent = `Not answered: ${error}`;
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  const button = (label, result, cls) => {
    const b = el("button", { type: "button", class: cls, onclick: () => answer(result) }, label);
    buttons.push(b);
    return b;
  };
  const controls = el("div", { class: "controls" });
  if (kind === "confirm") {
    controls.append(button("Approve", true, "primary"), button("Reject", false, "danger"));
  } else if (kind === "choice") {
    for (const option of params.options || []) controls.append(button(String(option), option));
  } else if (kind === "text") {
    const id = `text-${action.action_id}`;
    const area = el("textarea", { id, "aria-label": "Your answer" }, params.default || "");
    const send = el("button", { type: "submit", class: "primary" }, "Send");
    buttons.push(send);
    const form = el("form", { onsubmit: (event) => { event.preventDefault(); answer(area.value); } },
      area, el("div", { class: "controls" }, send));
    controls.append(form);
  } else {
    controls.append(button("Acknowledge", null, "primary"));
  }

  const context = action.state && Object.keys(action.state).length
    ? el("details", {}, el("summary", {}, "Context"), el("pre", {}, JSON.stringify(action.state, null, 2)))
    : null;
  return el("article", { class: "card prompt", "data-action": action.action_id, "data-step": action.step_id },
    el("header", {},
      el("strong", {}, action.step_id),
      el("span", { class: "badge" }, kind),
      el("a", { href: `#/runs/${encodeURIComponent(action.workflow_id)}` }, action.workflow_id)),
    question,
    el("div", { class: "meta" }, rulesText(action), " ", answeredText(action.answers) || "",
      action.deadline ? el("span", {}, " Due ", when(action.deadline), ".") : null),
    context,
    controls,
    status);
}

// ------------------------------------------------------------------------------- pages

async function inboxPage(main) {
  main.append(el("h1", {}, "Inbox"));
  const list = el("section", { "aria-label": "Pending prompts" });
  main.append(list);
  const data = await api("GET", `/v1/actions${query({ action_type: "ACTION_TYPE_PROMPT", page_size: 100 })}`);
  const actions = data.pending_actions || [];
  if (!actions.length) list.append(el("p", { class: "meta" }, "Nothing is waiting for a person."));
  for (const action of actions) list.append(promptCard(action));
}

async function runsPage(main, params) {
  const status = params.get("status") || "";
  const select = el("select", { id: "status-filter", onchange: () => {
    location.hash = `#/runs${select.value ? `?status=${select.value}` : ""}`;
  } }, ["", "waiting", "running", "completed", "failed", "cancelled"].map((value) =>
    el("option", { value, selected: value === status }, value || "all")));
  main.append(el("h1", {}, "Runs"),
    el("p", {}, el("label", { for: "status-filter" }, "Status "), select));
  const data = await api("GET", `/v1/workflows${query({
    status: status ? `RUN_STATUS_${status.toUpperCase()}` : "", page_size: 100 })}`);
  const rows = (data.workflows || []).map((run) => el("tr", {},
    el("td", {}, el("a", { href: `#/runs/${encodeURIComponent(run.workflow_id)}` }, run.workflow_id)),
    el("td", {}, run.definition_name),
    el("td", {}, el("span", { class: `badge ${short(run.status)}` }, short(run.status))),
    el("td", {}, run.current_step || ""),
    el("td", { class: "hide-narrow" }, when(run.start_time))));
  main.append(rows.length
    ? el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Run"), el("th", {}, "Definition"),
      el("th", {}, "Status"), el("th", {}, "Step"), el("th", { class: "hide-narrow" }, "Started"))),
    el("tbody", {}, rows))
    : el("p", { class: "meta" }, "No runs."));
}

function timeline(history) {
  return el("ol", { class: "timeline" }, (history || []).map((entry) => {
    const outcome = entry.finish_time ? short(entry.outcome || "completed") : "running";
    return el("li", { class: outcome, "data-step": entry.step_id },
      el("strong", {}, entry.step_id), " ", el("span", { class: "meta" }, entry.type), " ",
      el("span", { class: `badge ${outcome}` }, outcome),
      entry.attempts > 1 ? el("span", { class: "meta" }, ` ${entry.attempts} attempts`) : null,
      el("div", { class: "meta" }, when(entry.start_time),
        entry.finish_time ? el("span", {}, " → ", when(entry.finish_time)) : null),
      entry.error ? el("div", { class: "problem" }, entry.error) : null,
      answeredText(entry.answers) ? el("div", { class: "meta" }, answeredText(entry.answers)) : null);
  }));
}

function runView(run) {
  const pending = (run.pending_actions || []).filter((a) => short(a.type) === "prompt");
  const others = (run.pending_actions || []).filter((a) => short(a.type) !== "prompt");
  return el("div", { id: "run-view" },
    el("p", {},
      el("span", { class: `badge ${short(run.status)}`, id: "run-status" }, short(run.status)), " ",
      run.current_step ? el("span", {}, "at ", el("strong", {}, run.current_step), " ") : null,
      el("span", { class: "meta" }, `${run.definition_name} v${run.definition_version}`,
        run.started_by ? ` · started by ${run.started_by}` : "", " · ", when(run.start_time))),
    run.error ? el("p", { class: "problem" }, run.error) : null,
    pending.length ? el("h2", {}, "Waiting for you") : null,
    pending.map((action) => promptCard(action)),
    others.length ? el("h2", {}, "Waiting for executors") : null,
    others.map((action) => el("div", { class: "card" }, el("strong", {}, action.step_id), " ",
      el("span", { class: "badge" }, short(action.type)),
      el("pre", {}, JSON.stringify(action.parameters, null, 2)))),
    el("h2", {}, "Timeline"), timeline(run.history),
    el("h2", {}, "State"), el("pre", {}, JSON.stringify(run.state || {}, null, 2)),
    run.result !== undefined && run.result !== null
      ? el("div", {}, el("h2", {}, "Result"), el("pre", {}, JSON.stringify(run.result, null, 2))) : null);
}

async function graphOf(name, version) {
  const box = el("div", { class: "graph", id: "graph" });
  try {
    const response = await fetch(`/console/graph/${encodeURIComponent(name)}${query({ version })}`,
      { headers: { "Authorization": `Bearer ${app.token}` } });
    if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
    const graph = await response.json();
    if (window.mermaid) {
      const { svg } = await window.mermaid.render(`g${Date.now()}`, graph.mermaid);
      box.innerHTML = svg;
    } else {
      box.append(el("pre", {}, graph.mermaid));
    }
  } catch (error) {
    box.append(el("p", { class: "problem" }, `The graph could not be drawn: ${error}`));
  }
  return box;
}

async function runPage(main, id) {
  main.append(el("h1", {}, "Run ", el("code", {}, id)));
  const holder = el("div");
  main.append(holder);
  const { workflow: run } = await api("GET", `/v1/workflows/${encodeURIComponent(id)}`);
  holder.replaceChildren(runView(run));
  main.append(el("h2", {}, "Definition"), await graphOf(run.definition_name, run.definition_version));
  follow(id, holder);
}

// Live updates: WatchWorkflow's stream of the run as it changes (newline-delimited JSON,
// read with fetch so that the bearer header goes with it).
function follow(id, holder) {
  const controller = new AbortController();
  app.watch = controller;
  (async () => {
    const response = await fetch(`/v1/workflows/${encodeURIComponent(id)}:watch`,
      { headers: { "Authorization": `Bearer ${app.token}` }, signal: controller.signal });
    if (!response.ok || !response.body) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const message = JSON.parse(line);
        if (message.workflow) {
          const focused = document.activeElement && holder.contains(document.activeElement);
          holder.replaceChildren(runView(message.workflow));
          holder.dataset.version = message.workflow.status_version || "";
          if (focused) holder.querySelector("button, textarea, a")?.focus();
        }
      }
    }
  })().catch((error) => {
    if (error.name !== "AbortError") notice(`Live updates stopped: ${error}`);
  });
}

async function definitionsPage(main, name) {
  if (name) {
    const { definition } = await api("GET", `/v1/definitions/${encodeURIComponent(name)}`);
    main.append(el("h1", {}, definition.name, el("span", { class: "meta" }, ` v${definition.version}`)),
      el("p", {}, definition.description || ""),
      el("h2", {}, "Graph"), await graphOf(definition.name, definition.version),
      el("h2", {}, "YAML"), el("pre", {}, definition.yaml));
    return;
  }
  main.append(el("h1", {}, "Definitions"));
  const data = await api("GET", "/v1/definitions?page_size=100");
  const rows = (data.definitions || []).map((d) => el("tr", {},
    el("td", {}, el("a", { href: `#/definitions/${encodeURIComponent(d.name)}` }, d.name)),
    el("td", {}, d.version), el("td", { class: "hide-narrow" }, d.description || "")));
  main.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Version"),
    el("th", { class: "hide-narrow" }, "Description"))), el("tbody", {}, rows)));
}

async function schedulesPage(main) {
  main.append(el("h1", {}, "Schedules"));
  const data = await api("GET", "/v1/schedules?page_size=100");
  const schedules = data.schedules || [];
  if (!schedules.length) main.append(el("p", { class: "meta" }, "No schedules."));
  for (const schedule of schedules) {
    const status = el("div", { role: "status", "aria-live": "polite" });
    const act = (verb) => async () => {
      try {
        await api("POST", `/v1/schedules/${encodeURIComponent(schedule.schedule_id)}:${verb}`, {});
        status.className = "done";
        status.textContent = `${verb}: done.`;
        if (verb !== "trigger") route();
      } catch (error) {
        status.className = "problem";
        status.textContent = `${verb}: ${error}`;
      }
    };
    const spec = schedule.spec || {};
    main.append(el("article", { class: "card", "data-schedule": schedule.schedule_id },
      el("header", {}, el("strong", {}, schedule.schedule_id),
        el("span", { class: "badge" }, schedule.paused ? "paused" : "active")),
      el("div", { class: "meta" }, `${schedule.definition_name} · `,
        (spec.cron || []).join(", ") || "interval/calendar", spec.time_zone ? ` (${spec.time_zone})` : "",
        schedule.next_fire_times && schedule.next_fire_times.length
          ? el("span", {}, " · next ", when(schedule.next_fire_times[0])) : null),
      schedule.note ? el("p", {}, schedule.note) : null,
      el("div", { class: "controls" },
        schedule.paused
          ? el("button", { type: "button", onclick: act("unpause") }, "Unpause")
          : el("button", { type: "button", onclick: act("pause") }, "Pause"),
        el("button", { type: "button", onclick: act("trigger") }, "Trigger now")),
      status));
  }
}

// ------------------------------------------------------------------------------- router

async function route() {
  takeToken();
  if (app.watch) { app.watch.abort(); app.watch = null; }
  const main = document.getElementById("main");
  main.replaceChildren();
  const [path, search] = (location.hash.slice(1) || "/inbox").split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const signedIn = Boolean(app.token);
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("signout").hidden = !signedIn;
  document.getElementById("who").textContent = signedIn && app.claims
    ? `${app.claims.sub || "(no subject)"} · org ${app.claims.org || "?"}` : "";
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.getAttribute("href") === `#/${parts[0] || "inbox"}`);
    if (link.hasAttribute("aria-current")) link.setAttribute("aria-current", "page");
  }
  if (!signedIn) { signInPage(main); return; }
  const pages = {
    inbox: () => inboxPage(main),
    runs: () => (parts[1] ? runPage(main, parts[1]) : runsPage(main, params)),
    definitions: () => definitionsPage(main, parts[1]),
    schedules: () => schedulesPage(main),
    signin: () => { location.hash = "#/inbox"; },
  };
  try {
    await (pages[parts[0]] || pages.inbox)();
  } catch (error) {
    main.append(el("p", { class: "problem", role: "alert" }, String(error)));
  }
}

// A sign-in link carries the token in the fragment (never sent to the server): take it and
// drop it from the address bar and the history (on load, or when a link opens in this tab).
function takeToken() {
  const match = /^#token=([^&]+)/.exec(location.hash);
  if (!match) return;
  signIn(decodeURIComponent(match[1]));
  notice("");
  history.replaceState(null, "", `${location.pathname}#/inbox`);
}

function start() {
  if (app.token) app.claims = claimsOf(app.token);
  document.getElementById("signout").addEventListener("click", () => signOut());
  if (window.mermaid) window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  window.addEventListener("hashchange", route);
  route();
}

start();
