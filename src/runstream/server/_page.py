"""The chat page served at `GET /`: one self-contained HTML document.

Everything is inline (CSS, JavaScript, icons), so the page works offline and
behind any proxy: no CDN, no web fonts, no build step. It talks to the app with
relative URLs (`graphs`, `runs`, `runs/{id}/cancel`) and follows a run with the
browser's `EventSource` on the `events_url` that `POST /runs` returns.

Resuming: the browser reconnects by itself with `Last-Event-ID`; when an
`EventSource` gives up (a non-200 answer closes it), the page opens a new one
with `?after=<last seq seen>`. Events with a seq at or below the last one seen
are ignored, so nothing is rendered twice. All event text goes into the page
through `textContent` and text nodes, never as HTML.
"""

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>runstream</title>
<link rel="icon" href="data:,">
<style>
:root {
  --bg: #f6f7f9;
  --panel: #ffffff;
  --text: #1d2330;
  --muted: #6b7280;
  --faint: #9aa1ad;
  --border: #e3e6eb;
  --accent: #3056d3;
  --accent-hover: #2545b5;
  --user-bg: #3056d3;
  --user-text: #ffffff;
  --soft: #f1f3f6;
  --ok: #16a34a;
  --ok-soft: #e8f6ee;
  --err: #d92d20;
  --err-soft: #fdecea;
  --warn: #b45309;
  --bar: #3056d3;
  --shadow: 0 1px 2px rgba(16, 24, 40, 0.06);
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
  color-scheme: light;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #14161b;
    --panel: #1b1e24;
    --text: #e6e8ec;
    --muted: #9aa1ad;
    --faint: #6b7280;
    --border: #2b2f37;
    --accent: #6d8cff;
    --accent-hover: #8aa2ff;
    --user-bg: #3a55c4;
    --soft: #22262e;
    --ok-soft: #15301f;
    --err-soft: #3a1d1b;
    --bar: #6d8cff;
    color-scheme: dark;
  }
}
* { box-sizing: border-box; }
html, body { height: 100%; margin: 0; }
body {
  display: flex;
  flex-direction: column;
  background: var(--bg);
  color: var(--text);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue",
    "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
}
button, select, textarea { font: inherit; color: inherit; }

/* header */
header {
  display: flex;
  align-items: center;
  gap: 14px;
  padding: 10px 24px;
  background: var(--panel);
  border-bottom: 1px solid var(--border);
}
.brand { display: flex; align-items: center; gap: 8px; font-weight: 650; letter-spacing: -0.01em; }
.logo {
  width: 22px; height: 22px; border-radius: 6px;
  background: linear-gradient(135deg, var(--accent), #8b5cf6);
}
.graph-picker {
  display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 13px;
}
select#graph {
  padding: 4px 26px 4px 10px;
  border: 1px solid var(--border);
  border-radius: 8px;
  background: var(--soft);
  font-size: 14px;
}
.spacer { flex: 1; }
#conn { font-size: 13px; color: var(--warn); }
#conn button {
  margin-left: 6px; border: 0; background: none; color: var(--accent);
  cursor: pointer; text-decoration: underline; padding: 0;
}
#phase { font-size: 13px; color: var(--muted); }
#run-status {
  font-size: 12px;
  font-weight: 600;
  text-transform: uppercase;
  letter-spacing: 0.04em;
  padding: 3px 10px;
  border-radius: 999px;
  background: var(--soft);
  color: var(--muted);
}
#run-status:empty { display: none; }
#run-status[data-kind="running"] { color: var(--accent); }
#run-status[data-kind="completed"] { background: var(--ok-soft); color: var(--ok); }
#run-status[data-kind="failed"], #run-status[data-kind="canceled"] {
  background: var(--err-soft); color: var(--err);
}

/* conversation */
main#log { flex: 1; overflow-y: auto; }
.thread { max-width: 800px; margin: 0 auto; padding: 20px 24px 28px; }
.empty {
  margin: 14vh auto 0;
  text-align: center;
  color: var(--muted);
}
.empty h1 { font-size: 22px; font-weight: 600; color: var(--text); margin: 0 0 6px; }
.empty p { margin: 0; }
.turn-user { display: flex; justify-content: flex-end; margin: 18px 0 14px; }
.bubble-user {
  max-width: 75%;
  padding: 8px 14px;
  border-radius: 16px 16px 4px 16px;
  background: var(--user-bg);
  color: var(--user-text);
  white-space: pre-wrap;
  overflow-wrap: anywhere;
}
.turn-assistant { display: flex; gap: 12px; align-items: flex-start; }
.avatar {
  flex: none;
  width: 30px; height: 30px;
  border-radius: 50%;
  display: grid; place-items: center;
  background: var(--soft);
  border: 1px solid var(--border);
  color: var(--muted);
  font-size: 13px; font-weight: 650; text-transform: uppercase;
}
.turn-body { flex: 1; min-width: 0; display: flex; flex-direction: column; gap: 10px; }
.agent-name { font-size: 13px; font-weight: 600; color: var(--text); margin-top: 4px; }
.agent-name .via { font-weight: 400; color: var(--faint); margin-left: 6px; }

/* thoughts */
details.thought {
  border-left: 2px solid var(--border);
  padding: 0 0 0 12px;
  color: var(--muted);
}
details.thought > summary {
  cursor: pointer;
  font-size: 13px;
  list-style: none;
  user-select: none;
}
details.thought > summary::-webkit-details-marker { display: none; }
details.thought > summary::before {
  content: "\25B8"; display: inline-block; width: 14px; transition: transform 0.15s;
}
details.thought[open] > summary::before { transform: rotate(90deg); }
.thought-text {
  font-size: 14px; font-style: italic; white-space: pre-wrap; margin: 4px 0 2px;
  overflow-wrap: anywhere;
}

/* replies */
.reply-box {
  background: var(--panel);
  border: 1px solid var(--border);
  border-radius: 4px 16px 16px 16px;
  padding: 10px 14px;
  box-shadow: var(--shadow);
}
.reply, .child-reply { white-space: pre-wrap; overflow-wrap: anywhere; }
.streaming::after {
  content: "";
  display: inline-block;
  width: 7px; height: 1.05em;
  margin-left: 2px;
  vertical-align: text-bottom;
  background: var(--accent);
  animation: blink 1s steps(2) infinite;
}
@keyframes blink { 50% { opacity: 0; } }
.notice {
  font-size: 14px; padding: 8px 12px; border-radius: 10px;
  background: var(--soft); border: 1px dashed var(--border);
}

/* tool cards */
.tool-card {
  background: var(--panel);
  border: 1px solid var(--border);
  border-radius: 12px;
  padding: 9px 12px;
  box-shadow: var(--shadow);
}
.tool-card + .tool-card { margin-top: -4px; }
.tool-head { display: flex; align-items: center; gap: 9px; min-width: 0; }
.status {
  flex: none;
  width: 20px; height: 20px;
  display: grid; place-items: center;
  border-radius: 50%;
  font-size: 12px; font-weight: 700;
}
.tool-card[data-state="done"] .status { background: var(--ok-soft); color: var(--ok); }
.tool-card[data-state="error"] .status,
.tool-card[data-state="canceled"] .status { background: var(--err-soft); color: var(--err); }
.spinner {
  width: 14px; height: 14px;
  border: 2px solid var(--border);
  border-top-color: var(--accent);
  border-radius: 50%;
  animation: spin 0.8s linear infinite;
}
@keyframes spin { to { transform: rotate(360deg); } }
.tool-name { font-family: var(--mono); font-size: 13.5px; font-weight: 600; flex: none; }
.tool-args {
  flex: 1; min-width: 0;
  font-family: var(--mono); font-size: 12.5px; color: var(--muted);
  white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
}
.tool-time { flex: none; font-size: 12px; color: var(--faint); font-variant-numeric: tabular-nums; }
.progress {
  height: 4px; margin: 8px 0 2px 29px;
  border-radius: 999px; background: var(--soft); overflow: hidden;
}
.progress[hidden] { display: none; }
.bar {
  height: 100%; width: 0; border-radius: 999px;
  background: var(--bar); transition: width 0.25s ease;
}
.tool-card[data-state="done"] .bar { background: var(--ok); opacity: 0.55; }
.tool-card[data-state="done"] .progress {
  height: 0; margin-top: 0; margin-bottom: 0;
  transition: height 0.2s 0.6s, margin 0.2s 0.6s;
}
.tool-foot {
  display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 14px;
  margin: 3px 0 0 29px; font-size: 12.5px; color: var(--muted);
}
.tool-foot:empty { display: none; }
.tool-msg:empty, .tool-error:empty { display: none; }
.tool-error { flex-basis: 100%; font-size: 13px; color: var(--err); overflow-wrap: anywhere; }
details.tool-result { order: 2; }
details.tool-result[open] { flex-basis: 100%; }
details.tool-result > summary { cursor: pointer; user-select: none; color: var(--faint); }
details.tool-result > summary:hover { color: var(--accent); }
details.tool-result pre {
  margin: 6px 0 2px; padding: 8px 10px; max-height: 220px; overflow: auto;
  background: var(--soft); border-radius: 8px;
  font-family: var(--mono); font-size: 12px; color: var(--text);
  white-space: pre-wrap; overflow-wrap: anywhere;
}
.child-run {
  margin: 8px 0 2px 29px;
  padding: 8px 12px;
  border-left: 2px solid var(--accent);
  background: var(--soft);
  border-radius: 0 10px 10px 0;
  display: flex; flex-direction: column; gap: 8px;
}
.child-head {
  display: flex; align-items: center; gap: 8px; font-size: 12.5px; color: var(--muted);
}
.child-head .agent { font-weight: 600; color: var(--text); }
.child-state { margin-left: auto; font-size: 12px; }
.child-reply { font-size: 14px; }

/* end of a turn */
.turn-foot {
  display: flex; flex-wrap: wrap; align-items: center; gap: 6px 14px;
  font-size: 12.5px; color: var(--muted);
}
.turn-foot:empty { display: none; }
.usage {
  display: flex; flex-wrap: wrap; align-items: center; gap: 4px 6px;
  font-variant-numeric: tabular-nums;
}
.usage[hidden] { display: none; }
.usage .part { padding: 1px 8px; border-radius: 999px; background: var(--soft); }
.usage .model { font-family: var(--mono); font-size: 12px; color: var(--text); }
.usage .total { font-weight: 600; color: var(--text); margin-left: 2px; }
.turn-state { font-weight: 600; }
.turn-state[data-kind="completed"] { color: var(--ok); }
.turn-state[data-kind="failed"], .turn-state[data-kind="canceled"] { color: var(--err); }
.run-error { flex-basis: 100%; color: var(--err); overflow-wrap: anywhere; }
.run-error:empty { display: none; }

/* composer */
footer { background: var(--panel); border-top: 1px solid var(--border); }
.composer { max-width: 800px; margin: 0 auto; padding: 12px 24px 14px; }
.input-row {
  display: flex; align-items: flex-end; gap: 8px;
  padding: 6px 6px 6px 14px;
  border: 1px solid var(--border);
  border-radius: 14px;
  background: var(--panel);
  box-shadow: var(--shadow);
}
.input-row:focus-within { border-color: var(--accent); }
textarea#question {
  flex: 1;
  min-height: 24px; max-height: 180px;
  padding: 6px 0;
  border: 0; outline: 0; resize: none;
  background: transparent;
  line-height: 1.5;
}
.btn {
  flex: none;
  height: 36px; padding: 0 16px;
  border-radius: 10px; border: 1px solid transparent;
  font-weight: 600; font-size: 14px;
  cursor: pointer;
}
.btn:disabled { opacity: 0.45; cursor: default; }
#send { background: var(--accent); color: #fff; }
#send:not(:disabled):hover { background: var(--accent-hover); }
#stop { background: var(--panel); border-color: var(--border); color: var(--err); }
#stop[hidden] { display: none; }
.hint { margin-top: 6px; font-size: 12px; color: var(--faint); text-align: center; }
</style>
</head>
<body>
<header>
  <div class="brand"><span class="logo" aria-hidden="true"></span>runstream</div>
  <label class="graph-picker">graph
    <select id="graph" aria-label="graph"><option value="">loading…</option></select>
  </label>
  <span class="spacer"></span>
  <span id="conn" role="status" aria-live="polite"></span>
  <span id="phase"></span>
  <span id="run-status" role="status" aria-live="polite"></span>
</header>
<main id="log">
  <div class="thread" id="thread">
    <div class="empty" id="empty">
      <h1>Ask something</h1>
      <p>Pick a graph, type a question and watch the run stream in.</p>
    </div>
  </div>
</main>
<footer>
  <div class="composer">
    <div class="input-row">
      <textarea id="question" rows="1" placeholder="Ask a question…"
        aria-label="question"></textarea>
      <button class="btn" id="stop" type="button" hidden>Stop</button>
      <button class="btn" id="send" type="button">Send</button>
    </div>
    <div class="hint">Enter sends · Shift+Enter for a new line</div>
  </div>
</footer>
<script>
"use strict";
(function () {
  const EVENT_TYPES = [
    "workflow", "planner_thought", "assistant_reply", "tool_start", "tool_update",
    "tool_end", "usage", "agent_run_started", "await_clarification",
    "await_external_tools", "state_update", "custom",
  ];
  const TERMINAL = new Set(["completed", "failed", "canceled"]);
  const MAX_RETRIES = 8;

  const $ = (id) => document.getElementById(id);
  const ui = {
    graph: $("graph"), question: $("question"), send: $("send"), stop: $("stop"),
    log: $("log"), thread: $("thread"), empty: $("empty"),
    status: $("run-status"), phase: $("phase"), conn: $("conn"),
  };

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "t-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
  }

  const threadId = randomId();
  let current = null;  // the run being followed
  let graphsReady = false;

  // ---- small formatting helpers ----------------------------------------------

  function seconds(s) {
    if (typeof s !== "number" || !isFinite(s)) return "";
    return s < 1 ? Math.round(s * 1000) + " ms" : s.toFixed(s < 10 ? 2 : 1) + " s";
  }

  function json(value, indent) {
    try { return JSON.stringify(value, null, indent); } catch (e) { return String(value); }
  }

  function clip(text, n) {
    return text.length > n ? text.slice(0, n - 1) + "…" : text;
  }

  function argsLine(payload) {
    if (payload === null || payload === undefined) return "";
    if (typeof payload === "string") return payload;
    if (typeof payload === "object" && !Array.isArray(payload)) {
      return Object.keys(payload).map((k) => k + ": " + json(payload[k])).join(", ");
    }
    return json(payload);
  }

  function errorText(error) {
    if (!error) return "";
    if (typeof error === "string") return error;
    const type = error.type ? String(error.type) : "";
    const message = error.message ? String(error.message) : "";
    return type && message ? type + ": " + message : type || message;
  }

  // ---- header state ------------------------------------------------------------

  function setStatus(text, kind) {
    ui.status.textContent = text;
    ui.status.setAttribute("data-kind", kind || text);
  }

  function setPhase(text) { ui.phase.textContent = text ? text.replace(/_/g, " ") : ""; }

  function setConn(text, retry) {
    ui.conn.textContent = text || "";
    if (retry) {
      const again = el("button", "", "retry");
      again.type = "button";
      again.addEventListener("click", retry);
      ui.conn.append(again);
    }
  }

  function setBusy(busy) {
    ui.send.disabled = busy || !graphsReady;
    ui.stop.hidden = !busy;
    ui.stop.disabled = !busy;
    ui.stop.textContent = "Stop";
  }

  // ---- scrolling: follow the bottom unless the reader scrolled up --------------

  function pinned() {
    const log = ui.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function toBottom() { ui.log.scrollTop = ui.log.scrollHeight; }

  // ---- a turn: the user's question and the run's rendering ----------------------

  function addTurn(question, graph) {
    ui.empty.hidden = true;
    for (const old of ui.thread.querySelectorAll("#usage")) old.removeAttribute("id");
    const user = el("div", "turn-user");
    user.append(el("div", "bubble-user", question));
    const assistant = el("div", "turn-assistant");
    const avatar = el("div", "avatar", (graph || "?").slice(0, 1));
    avatar.title = graph;
    const body = el("div", "turn-body");
    const who = el("div", "agent-name", graph);
    body.append(who);
    const views = el("div", "turn-body");
    const foot = el("div", "turn-foot");
    const usage = el("div", "usage");
    usage.id = "usage";
    usage.hidden = true;
    const state = el("span", "turn-state");
    const error = el("div", "run-error");
    foot.append(usage, state, error);
    body.append(views, foot);
    assistant.append(avatar, body);
    ui.thread.append(user, assistant);
    toBottom();
    return { root: assistant, graph, avatar, who, views, usage, state, error, foot };
  }

  function newView(container, depth) {
    return { body: container, depth, replies: new Map(), thoughts: new Map(), head: null };
  }

  function newRun(id, eventsUrl, turn) {
    const run = {
      id, eventsUrl, turn,
      lastSeq: -1, es: null, done: false, retries: 0, timer: null,
      views: new Map(), cards: new Map(), usage: new Map(), started: Date.now(),
    };
    run.views.set(id, newView(turn.views, 0));
    return run;
  }

  function viewFor(run, ev) {
    let view = run.views.get(ev.run_id);
    if (!view) {
      // A child whose AgentRunStarted we never saw: show it under the root.
      const box = el("div", "child-run");
      const head = el("div", "child-head");
      head.append(el("span", "", "↳"), el("span", "agent", ev.agent || "child run"));
      box.append(head);
      run.views.get(run.id).body.append(box);
      view = newView(box, 1);
      run.views.set(ev.run_id, view);
    }
    return view;
  }

  // ---- event handlers -----------------------------------------------------------

  function onThought(view, ev, label) {
    let t = view.thoughts.get(ev.message_id);
    if (!t) {
      const details = el("details", "thought");
      details.open = true;
      const summary = el("summary", "", label === "internal" ? "Working…" : "Thinking…");
      const body = el("div", "thought-text");
      const text = document.createTextNode("");
      body.append(text);
      details.append(summary, body);
      view.body.append(details);
      t = { details, summary, text, first: ev.ts, label };
      view.thoughts.set(ev.message_id, t);
    }
    if (ev.text) t.text.appendData(String(ev.text));
    if (ev.done) {
      const timed = typeof ev.ts === "number" && typeof t.first === "number";
      const took = timed ? ev.ts - t.first : null;
      const name = t.label === "internal" ? "Worked" : "Thought";
      t.summary.textContent = took !== null ? name + " for " + seconds(took) : name;
      t.details.open = false;
    }
  }

  function onReply(view, ev) {
    let r = view.replies.get(ev.message_id);
    if (!r) {
      const text = document.createTextNode("");
      let target;
      if (view.depth === 0) {
        const box = el("div", "reply-box");
        target = el("div", "reply streaming");
        box.append(target);
        view.body.append(box);
      } else {
        target = el("div", "child-reply streaming");
        view.body.append(target);
      }
      target.append(text);
      r = { target, text };
      view.replies.set(ev.message_id, r);
    }
    if (ev.text) r.text.appendData(String(ev.text));
    if (ev.done) r.target.classList.remove("streaming");
  }

  function card(run, view, ev) {
    let c = run.cards.get(ev.tool_call_id);
    if (c) return c;
    const root = el("div", "tool-card");
    root.setAttribute("data-tool-name", String(ev.tool_name || "tool"));
    root.setAttribute("data-state", "running");
    const head = el("div", "tool-head");
    const status = el("span", "status");
    status.append(el("span", "spinner"));
    status.title = "running";
    const args = el("span", "tool-args");
    const time = el("span", "tool-time");
    head.append(status, el("span", "tool-name", ev.tool_name || "tool"), args, time);
    const progress = el("div", "progress");
    progress.hidden = true;
    const bar = el("div", "bar");
    progress.append(bar);
    const foot = el("div", "tool-foot");
    const msg = el("span", "tool-msg");
    const error = el("div", "tool-error");
    foot.append(msg, error);
    root.append(head, progress, foot);
    view.body.append(root);
    c = { root, status, args, time, progress, bar, foot, msg, error, state: "running" };
    run.cards.set(ev.tool_call_id, c);
    return c;
  }

  function onToolStart(run, view, ev) {
    const c = card(run, view, ev);
    const line = argsLine(ev.payload);
    c.args.textContent = clip(line, 160);
    c.args.title = json(ev.payload, 2);
  }

  function onToolUpdate(run, view, ev) {
    const c = card(run, view, ev);
    if (typeof ev.progress === "number" && isFinite(ev.progress)) {
      c.progress.hidden = false;
      c.bar.style.width = Math.max(0, Math.min(1, ev.progress)) * 100 + "%";
    }
    if (ev.message) c.msg.textContent = String(ev.message);
  }

  function onToolEnd(run, view, ev) {
    const c = card(run, view, ev);
    const failed = !!ev.error;
    c.state = failed ? "error" : "done";
    c.root.setAttribute("data-state", c.state);
    c.status.replaceChildren(document.createTextNode(failed ? "✗" : "✓"));
    c.status.title = failed ? "failed" : "done";
    c.time.textContent = seconds(ev.duration);
    if (failed) c.error.textContent = errorText(ev.error);
    else if (!c.progress.hidden) c.bar.style.width = "100%";
    if (!failed && ev.result !== null && ev.result !== undefined) {
      const details = el("details", "tool-result");
      details.append(el("summary", "", "result"), el("pre", "", clip(json(ev.result, 2), 4000)));
      c.foot.append(details);
    }
  }

  function onChild(run, view, ev) {
    const c = card(run, view, ev);
    const box = el("div", "child-run");
    const head = el("div", "child-head");
    const state = el("span", "child-state", "running");
    head.append(el("span", "", "↳ agent"), el("span", "agent", ev.child_agent || "child"), state);
    box.append(head);
    c.root.insertBefore(box, c.foot);
    c.child = box;
    const child = newView(box, view.depth + 1);
    child.head = state;
    run.views.set(ev.child_run_id, child);
  }

  function onUsage(run, ev) {
    const model = String(ev.model || "model");
    const u = run.usage.get(model) || { input: 0, output: 0 };
    u.input += Number(ev.input_tokens) || 0;
    u.output += Number(ev.output_tokens) || 0;
    run.usage.set(model, u);
    renderUsage(run);
  }

  function renderUsage(run) {
    const box = run.turn.usage;
    box.replaceChildren();
    let total = 0;
    box.append(el("span", "label", "tokens"));
    for (const [model, u] of run.usage) {
      total += u.input + u.output;
      const part = el("span", "part");
      const counts = " " + u.input.toLocaleString("en-US") + " in · " +
        u.output.toLocaleString("en-US") + " out";
      part.append(el("span", "model", model), document.createTextNode(counts));
      box.append(part);
    }
    box.append(el("span", "total", "total " + total.toLocaleString("en-US")));
    box.setAttribute("data-total", String(total));
    box.hidden = false;
  }

  function onWorkflow(run, view, ev) {
    const phase = String(ev.phase || "");
    if (ev.run_id === run.id && phase === "started" && ev.agent && ev.agent !== run.turn.graph) {
      run.turn.who.replaceChildren(document.createTextNode(String(ev.agent)),
        el("span", "via", "graph " + run.turn.graph));
      run.turn.avatar.textContent = String(ev.agent).slice(0, 1);
    }
    if (ev.run_id !== run.id) {
      if (view.head && TERMINAL.has(phase)) {
        view.head.textContent = phase;
        for (const r of view.replies.values()) r.target.classList.remove("streaming");
      }
      return;
    }
    if (TERMINAL.has(phase)) finish(run, phase, errorText(ev.error));
    else setPhase(phase);
  }

  function notice(view, text) { view.body.append(el("div", "notice", text)); }

  function handle(run, ev) {
    if (!ev || typeof ev.seq !== "number" || ev.seq <= run.lastSeq) return;  // seen already
    run.lastSeq = ev.seq;
    const follow = pinned();
    const view = viewFor(run, ev);
    switch (ev.type) {
      case "workflow": onWorkflow(run, view, ev); break;
      case "planner_thought": onThought(view, ev, "thought"); break;
      case "assistant_reply":
        if (ev.internal) onThought(view, ev, "internal");
        else onReply(view, ev);
        break;
      case "tool_start": onToolStart(run, view, ev); break;
      case "tool_update": onToolUpdate(run, view, ev); break;
      case "tool_end": onToolEnd(run, view, ev); break;
      case "agent_run_started": onChild(run, view, ev); break;
      case "usage": onUsage(run, ev); break;
      case "await_clarification":
        notice(view, "The run asks: " + String(ev.question || ""));
        break;
      case "await_external_tools":
        notice(view, "Waiting for external tools: " +
          (ev.calls || []).map((c) => String(c.tool_name)).join(", "));
        break;
      default: break;  // state_update, custom: nothing to show in a chat
    }
    if (follow) toBottom();
  }

  // ---- the end of a run -----------------------------------------------------------

  function stopStream(run) {
    if (run.timer) { clearTimeout(run.timer); run.timer = null; }
    if (run.es) { run.es.close(); run.es = null; }
  }

  function finish(run, phase, message) {
    if (run.done) return;
    run.done = true;
    stopStream(run);
    for (const c of run.cards.values()) {
      if (c.state !== "running") continue;
      c.state = "canceled";
      c.root.setAttribute("data-state", "canceled");
      c.status.replaceChildren(document.createTextNode("✗"));
      c.status.title = phase;
    }
    for (const view of run.views.values()) {
      for (const r of view.replies.values()) r.target.classList.remove("streaming");
      if (view.head && view.head.textContent === "running") view.head.textContent = phase;
    }
    const follow = pinned();
    run.turn.state.textContent = phase + " · " + seconds((Date.now() - run.started) / 1000);
    run.turn.state.setAttribute("data-kind", phase);
    if (message) run.turn.error.textContent = message;
    setStatus(phase, phase);
    setPhase("");
    setConn("");
    setBusy(false);
    if (follow) toBottom();
    ui.question.focus();
  }

  // ---- following a run: EventSource, with our own resume when it gives up -----

  function connect(run) {
    if (run.done) return;
    run.timer = null;
    const url = new URL(run.eventsUrl, location.href);
    if (run.lastSeq >= 0) url.searchParams.set("after", String(run.lastSeq));
    const es = new EventSource(url.href);
    run.es = es;
    const onEvent = (message) => {
      if (run.es !== es || run.done) return;
      let ev;
      try { ev = JSON.parse(message.data); } catch (e) { return; }
      run.retries = 0;
      if (ui.conn.textContent) setConn("");
      handle(run, ev);
    };
    for (const type of EVENT_TYPES) es.addEventListener(type, onEvent);
    es.onmessage = onEvent;
    es.onerror = () => {
      if (run.es !== es || run.done) return;
      if (es.readyState !== EventSource.CLOSED) {
        setConn("reconnecting…");  // the browser retries with Last-Event-ID
        return;
      }
      es.close();
      run.es = null;
      if (run.retries >= MAX_RETRIES) {
        setConn("connection lost", () => {
          run.retries = 0;
          setConn("reconnecting…");
          connect(run);
        });
        return;
      }
      const delay = Math.min(8000, 250 * Math.pow(2, run.retries));
      run.retries += 1;
      setConn("reconnecting…");
      run.timer = setTimeout(() => connect(run), delay);
    };
  }

  window.addEventListener("online", () => {
    const run = current;
    if (run && !run.done && !run.es) {
      if (run.timer) clearTimeout(run.timer);
      connect(run);
    }
  });

  // ---- starting and stopping runs -------------------------------------------------

  async function send() {
    const text = ui.question.value.trim();
    const graph = ui.graph.value;
    if (!text || !graph || !graphsReady || (current && !current.done)) return;
    ui.question.value = "";
    autosize();
    const turn = addTurn(text, graph);
    setBusy(true);
    ui.stop.disabled = true;
    setStatus("starting", "running");
    setPhase("");
    let body = {};
    try {
      const response = await fetch("runs", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ graph, input: text, thread_id: threadId }),
      });
      body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const detail = body && body.detail !== undefined ? body.detail : "HTTP " + response.status;
        throw new Error(typeof detail === "string" ? detail : json(detail));
      }
    } catch (err) {
      turn.state.textContent = "failed";
      turn.state.setAttribute("data-kind", "failed");
      const why = err && err.message ? err.message : String(err);
      turn.error.textContent = "Could not start the run: " + why;
      setStatus("failed", "failed");
      setBusy(false);
      return;
    }
    current = newRun(String(body.run_id), String(body.events_url), turn);
    turn.root.setAttribute("data-run-id", current.id);
    setStatus("running", "running");
    ui.stop.disabled = false;
    connect(current);
  }

  async function stop() {
    const run = current;
    if (!run || run.done) return;
    ui.stop.disabled = true;
    ui.stop.textContent = "Stopping…";
    try {
      const url = "runs/" + encodeURIComponent(run.id) + "/cancel";
      const response = await fetch(url, { method: "POST" });
      if (!response.ok) throw new Error("HTTP " + response.status);
    } catch (err) {
      if (!run.done) { ui.stop.disabled = false; ui.stop.textContent = "Stop"; }
    }
  }

  async function loadGraphs() {
    try {
      const response = await fetch("graphs", { headers: { Accept: "application/json" } });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        throw new Error(response.status === 401
          ? "this server needs a bearer token, which the page cannot send"
          : String(body.detail || "HTTP " + response.status));
      }
      const names = Array.isArray(body.graphs) ? body.graphs.map(String) : [];
      ui.graph.replaceChildren();
      for (const name of names) {
        const option = el("option", "", name);
        option.value = name;
        ui.graph.append(option);
      }
      if (!names.length) throw new Error("the server has no graphs");
      graphsReady = true;
      setBusy(false);
    } catch (err) {
      ui.graph.replaceChildren(el("option", "", "unavailable"));
      setStatus("unavailable", "failed");
      ui.empty.replaceChildren(el("h1", "", "Cannot list graphs"),
        el("p", "", err && err.message ? err.message : String(err)));
    }
  }

  function autosize() {
    ui.question.style.height = "auto";
    ui.question.style.height = Math.min(ui.question.scrollHeight, 180) + "px";
  }

  ui.send.addEventListener("click", send);
  ui.stop.addEventListener("click", stop);
  ui.question.addEventListener("input", autosize);
  ui.question.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  setBusy(false);
  loadGraphs();
  ui.question.focus();
})();
</script>
</body>
</html>
"""
