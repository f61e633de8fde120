// The bitrouter dashboard: polls /api/dashboard every two seconds (while the tab is visible),
// asks only for what changed (`known` = the newest request it has), and draws everything with
// the DOM and small SVG charts. Data from the server is only ever set as text, never as markup.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HOUR = 3600 * 1000;
  const POLL_MS = 2000;
  const KEY_STORE = "bitrouter-key";

  const state = {
    range: "24h",
    known: null,
    key: sessionStorage.getItem(KEY_STORE),
    data: null,
    seen: null,
    timer: null,
  };

  const $ = (id) => document.getElementById(id);
  const num = (n) => (n == null ? "-" : Number(n).toLocaleString("en-US"));
  const pct = (p) => (p == null ? "-" : `${Number(p).toFixed(1)}%`);
  const ms = (v) => (v == null ? "-" : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);

  /** An element with a class and text. */
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = String(text);
    return e;
  }

  /** An SVG element with attributes. */
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }

  function span(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
    if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
    if (m > 0) return `${m}m`;
    return `${s}s`;
  }

  function clock(t) {
    return new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  }

  function windowName(minutes) {
    if (minutes === 300) return "5-hour";
    if (minutes === 10080) return "Weekly";
    if (minutes == null) return "Window";
    return minutes % 60 === 0 ? `${minutes / 60}-hour` : `${minutes}-minute`;
  }

  function setLive(kind, detail) {
    const live = $("live");
    live.dataset.state = kind;
    live.textContent = kind === "live" ? "live" : kind === "paused" ? "paused" : detail || "offline";
    live.title = detail || "";
  }

  // ------------------------------------------------------------------------------------------
  // Fetching

  function schedule(delay) {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, delay);
  }

  async function poll() {
    clearTimeout(state.timer);
    if (document.hidden) {
      setLive("paused");
      return;
    }
    const params = new URLSearchParams({ range: state.range });
    if (state.known != null) params.set("known", String(state.known));
    const headers = { Accept: "application/json" };
    if (state.key) headers["x-bitrouter-key"] = state.key;
    let response;
    try {
      response = await fetch(`/api/dashboard?${params}`, { headers, cache: "no-store" });
    } catch (_) {
      setLive("error", "server unreachable");
      schedule(POLL_MS * 2);
      return;
    }
    if (response.status === 401) {
      setLive("error", "key needed");
      $("key-prompt").hidden = false;
      $("key-input").focus();
      return;
    }
    if (!response.ok) {
      setLive("error", `server answered ${response.status}`);
      schedule(POLL_MS * 2);
      return;
    }
    const doc = await response.json();
    $("key-prompt").hidden = true;
    render(doc);
    setLive("live");
    schedule(POLL_MS);
  }

  // ------------------------------------------------------------------------------------------
  // Rendering

  function render(doc) {
    $("version").textContent = `v${doc.version}`;
    if (!doc.unchanged) {
      state.data = doc;
      state.known = doc.history.last_id;
      renderTotals(doc);
      renderCharts(doc);
      renderBreakdown("by-client", doc.by_client);
      renderBreakdown("by-model", doc.by_model);
      renderRecent(doc.recent);
      renderErrors(doc.errors);
    }
    renderAccounts(doc.accounts, (state.data && state.data.quota_history) || [], doc);
    renderHistoryState(doc.history);
  }

  function setValue(id, value, text) {
    const e = $(id);
    e.dataset.value = value == null ? "" : String(value);
    e.textContent = text;
  }

  function renderTotals(doc) {
    const t = doc.totals;
    $("period-label").textContent = `(last ${doc.range})`;
    setValue("total-requests", t.requests, num(t.requests));
    setValue("total-errors", t.errors, num(t.errors));
    setValue("total-input", t.input_tokens, num(t.input_tokens));
    setValue("total-cached", t.cached_tokens, num(t.cached_tokens));
    setValue("total-output", t.output_tokens, num(t.output_tokens));
    setValue("total-reasoning", t.reasoning_tokens, num(t.reasoning_tokens));
    setValue("total-cache-hit", t.cache_hit_percent, pct(t.cache_hit_percent));
    $("total-latency").textContent = `${ms(t.p50_ms)} / ${ms(t.p95_ms)}`;
  }

  function renderAccounts(accounts, quotaHistory, doc) {
    const box = $("accounts");
    box.replaceChildren();
    if (!accounts.length) {
      box.append(el("p", "muted", "No accounts yet: sign in with `bitrouter login openai-codex`."));
      return;
    }
    const nowS = Date.now() / 1000;
    for (const a of accounts) {
      const card = el("article", "card");
      card.dataset.account = `${a.provider}:${a.label}`;
      const title = el("h3", null, `${a.provider} · ${a.label}`);
      if (a.plan) title.append(el("span", "badge", a.plan));
      if (a.cooling_until && a.cooling_until > nowS) {
        const badge = el("span", "badge cooling", "cooling down");
        badge.dataset.reset = String(a.cooling_until);
        badge.dataset.prefix = "cooling down, usable in ";
        title.append(badge);
      }
      card.append(title);
      const windows = [["primary", a.primary], ["secondary", a.secondary]].filter(([, w]) => w && w.used_percent != null);
      if (!windows.length) card.append(el("p", "muted", "No quota figures yet."));
      for (const [which, w] of windows) {
        const left = Math.max(0, Math.min(100, 100 - w.used_percent));
        const meter = el("div", "meter");
        meter.dataset.window = which;
        const row = el("div", "row");
        const name = el("span", null, `${windowName(w.window_minutes)} `);
        const leftText = el("b", "left", `${left.toFixed(0)}% left`);
        leftText.dataset.value = String(left);
        name.append(leftText);
        row.append(name);
        const reset = el("span", "reset", "");
        if (w.reset_at) {
          reset.dataset.reset = String(w.reset_at);
          reset.dataset.prefix = "resets in ";
          reset.title = new Date(w.reset_at * 1000).toLocaleString();
        }
        row.append(reset);
        const bar = el("div", left <= 0 ? "bar empty" : left < 20 ? "bar low" : "bar");
        const fill = el("span");
        fill.style.width = `${left}%`;
        bar.append(fill);
        meter.append(row, bar);
        card.append(meter);
      }
      const points = quotaHistory.filter((q) => q.provider === a.provider && q.account === a.label && q.primary_used_percent != null);
      if (points.length >= 2) card.append(sparkline(points, doc));
      if (a.quota_checked_at) {
        const source = a.quota_source === "usage_endpoint" ? "usage endpoint" : "answer headers";
        card.append(el("p", "muted", `quota read ${span(nowS - a.quota_checked_at)} ago from ${source}`));
      }
      box.append(card);
    }
    tick();
  }

  /** The 5-hour window's use over the period, as a line. */
  function sparkline(points, doc) {
    const width = 300, height = 28;
    const since = state.data ? state.data.since_ms : doc.since_ms;
    const span_ = Math.max(1, doc.now_ms - since);
    const chart = svg("svg", { class: "spark", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img" });
    const coords = points.map((p) => {
      const x = ((p.at_ms - since) / span_) * width;
      const y = height - (Math.max(0, Math.min(100, p.primary_used_percent)) / 100) * height;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    chart.append(svg("title", {}), svg("polyline", { points: coords.join(" "), fill: "none", stroke: "currentColor", "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
    chart.firstChild.textContent = "5-hour window used over the period";
    return chart;
  }

  /** Updates every countdown on the page. */
  function tick() {
    const nowS = Date.now() / 1000;
    for (const e of document.querySelectorAll("[data-reset]")) {
      const at = Number(e.dataset.reset);
      e.textContent = at > nowS ? `${e.dataset.prefix}${span(at - nowS)}` : "reset";
    }
  }

  /** Buckets of the period: hours for a day, local days for longer. */
  function buckets(doc) {
    const out = [];
    if (doc.range === "24h") {
      for (let t = Math.floor(doc.since_ms / HOUR) * HOUR; t <= doc.now_ms; t += HOUR) {
        out.push({ key: t, label: new Date(t).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) });
      }
      return { out, keyOf: (t) => Math.floor(t / HOUR) * HOUR };
    }
    const dayKey = (t) => new Date(t).toDateString();
    const seen = new Set();
    for (let t = doc.since_ms; t <= doc.now_ms + HOUR; t += HOUR) {
      const k = dayKey(Math.min(t, doc.now_ms));
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ key: k, label: new Date(Math.min(t, doc.now_ms)).toLocaleDateString([], { month: "short", day: "numeric" }) });
    }
    return { out, keyOf: dayKey };
  }

  function renderCharts(doc) {
    const { out, keyOf } = buckets(doc);
    const sums = new Map(out.map((b) => [b.key, { requests: 0, errors: 0, input: 0, cached: 0, output: 0 }]));
    for (const p of doc.series) {
      const s = sums.get(keyOf(p.t));
      if (!s) continue;
      s.requests += p.requests;
      s.errors += p.errors;
      s.input += p.input_tokens;
      s.cached += p.cached_tokens;
      s.output += p.output_tokens;
    }
    const rows = out.map((b) => ({ ...b, ...sums.get(b.key) }));
    barChart($("chart-requests"), rows, (r) => [
      ["ok", r.requests - r.errors],
      ["err", r.errors],
    ], (r) => `${r.label}: ${num(r.requests)} requests, ${num(r.errors)} failed`, (g, r) => {
      g.dataset.requests = String(r.requests);
      g.dataset.errors = String(r.errors);
    });
    barChart($("chart-tokens"), rows, (r) => [
      ["cached", r.cached],
      ["input", Math.max(0, r.input - r.cached)],
      ["output", r.output],
    ], (r) => `${r.label}: ${num(r.input)} input (${num(r.cached)} cached), ${num(r.output)} output`, (g, r) => {
      g.dataset.input = String(r.input);
      g.dataset.cached = String(r.cached);
      g.dataset.output = String(r.output);
    });
  }

  /** A stacked bar chart; `parts` gives each bar's [class, value] segments from the bottom. */
  function barChart(target, rows, parts, describe, annotate) {
    const width = 600, height = 180, left = 44, bottom = 18, top = 8;
    target.setAttribute("viewBox", `0 0 ${width} ${height}`);
    target.replaceChildren();
    const totals = rows.map((r) => parts(r).reduce((a, [, v]) => a + v, 0));
    const max = Math.max(1, ...totals);
    const plotH = height - bottom - top;
    const step = (width - left) / Math.max(1, rows.length);
    const barW = Math.max(1, step * 0.75);
    target.append(svg("line", { class: "axis", x1: left, x2: width, y1: height - bottom, y2: height - bottom }));
    const maxLabel = svg("text", { x: left - 4, y: top + 8, "text-anchor": "end" });
    maxLabel.textContent = num(max);
    const zero = svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end" });
    zero.textContent = "0";
    target.append(maxLabel, zero);
    rows.forEach((r, i) => {
      const g = svg("g", { class: "bar" });
      annotate(g, r);
      const title = svg("title");
      title.textContent = describe(r);
      g.append(title);
      let y = height - bottom;
      const x = left + i * step + (step - barW) / 2;
      for (const [cls, value] of parts(r)) {
        if (value <= 0) continue;
        const h = (value / max) * plotH;
        y -= h;
        g.append(svg("rect", { class: cls, x: x.toFixed(1), y: y.toFixed(1), width: barW.toFixed(1), height: Math.max(0.5, h).toFixed(1) }));
      }
      target.append(g);
      const labelEvery = Math.ceil(rows.length / 6);
      if (i % labelEvery === 0) {
        const label = svg("text", { x: (left + i * step + step / 2).toFixed(1), y: height - 4, "text-anchor": "middle" });
        label.textContent = r.label;
        target.append(label);
      }
    });
  }

  function renderBreakdown(id, groups) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    if (!groups.length) {
      const row = el("tr", "empty-row");
      const cell = el("td", null, "No requests in this period.");
      cell.colSpan = 5;
      row.append(cell);
      body.append(row);
      return;
    }
    const most = Math.max(1, ...groups.map((g) => g.requests));
    for (const g of groups) {
      const row = el("tr");
      row.dataset.key = g.key;
      const requests = el("td", "num share");
      const share = el("i");
      share.style.width = `${(g.requests / most) * 100}%`;
      requests.append(share, document.createTextNode(num(g.requests)));
      requests.dataset.value = String(g.requests);
      row.append(
        el("td", null, g.key),
        requests,
        el("td", "num", num(g.input_tokens + g.output_tokens)),
        el("td", "num", pct(g.cache_hit_percent)),
        el("td", "num", num(g.errors)),
      );
      body.append(row);
    }
  }

  function failed(r) {
    return r.status >= 400 || r.error_code != null;
  }

  function renderRecent(rows) {
    const body = $("recent").tBodies[0];
    const first = state.seen == null;
    const seen = state.seen || new Set();
    body.replaceChildren();
    if (!rows.length) {
      const row = el("tr", "empty-row");
      const cell = el("td", null, "No requests yet. Point a client at this server and they appear here.");
      cell.colSpan = 9;
      row.append(cell);
      body.append(row);
    }
    for (const r of rows) {
      const row = el("tr", !first && !seen.has(r.id) ? "new" : null);
      row.dataset.id = String(r.id);
      const client = el("td", null, r.client);
      if (r.user_agent) client.title = r.user_agent;
      const model = r.model && r.model_asked && r.model !== r.model_asked ? `${r.model_asked} → ${r.model}` : r.model || r.model_asked || "-";
      const served = r.provider ? `${r.provider}:${r.account || "-"}` : "-";
      const servedCell = el("td", "served", served);
      if (r.failovers > 0) servedCell.append(el("span", "badge", `${r.failovers} failover${r.failovers > 1 ? "s" : ""}`));
      if (r.tries > 1) servedCell.title = `${r.tries} upstream tries`;
      const tokens = r.input_tokens == null && r.output_tokens == null ? "-" : `${num(r.input_tokens)} / ${num(r.cached_tokens)} / ${num(r.output_tokens)}`;
      const status = el("td", failed(r) ? "num status-err" : "num", r.error_code && r.status < 400 ? `${r.status} ${r.error_code}` : r.status);
      row.append(
        el("td", null, clock(r.at_ms)),
        client,
        el("td", null, r.endpoint),
        el("td", "model", model),
        servedCell,
        status,
        el("td", "num", tokens),
        el("td", "num", ms(r.ttfb_ms)),
        el("td", "num", `${ms(r.duration_ms)}${r.streamed ? " ⇣" : ""}`),
      );
      body.append(row);
    }
    state.seen = new Set(rows.map((r) => r.id));
  }

  function renderErrors(rows) {
    const body = $("errors").tBodies[0];
    body.replaceChildren();
    if (!rows.length) {
      const row = el("tr", "empty-row");
      const cell = el("td", null, "No errors.");
      cell.colSpan = 6;
      row.append(cell);
      body.append(row);
    }
    for (const r of rows) {
      const row = el("tr");
      row.dataset.id = String(r.id);
      row.append(
        el("td", null, clock(r.at_ms)),
        el("td", null, r.client),
        el("td", "model", r.model || r.model_asked || "-"),
        el("td", "num status-err", r.status),
        el("td", null, r.error_code || "-"),
        el("td", "message", r.error_message || "-"),
      );
      body.append(row);
    }
  }

  function renderHistoryState(h) {
    const box = $("history-state");
    box.replaceChildren();
    if (!h.enabled) {
      box.append(el("span", null, "History is off (`history: off` in bitrouter.yaml): only accounts are shown."));
      return;
    }
    box.append(el("span", null, `History: ${num(h.written)} records stored in this run, ${num(h.dropped)} dropped.`));
    const trouble = h.error || h.trouble;
    if (trouble) box.append(document.createTextNode(" "), el("span", "trouble", trouble));
  }

  // ------------------------------------------------------------------------------------------
  // Wiring

  function chooseRange(range) {
    state.range = range;
    state.known = null;
    for (const b of document.querySelectorAll("#ranges button")) {
      b.setAttribute("aria-pressed", String(b.dataset.range === range));
    }
    poll();
  }

  function start() {
    for (const b of document.querySelectorAll("#ranges button")) {
      b.addEventListener("click", () => chooseRange(b.dataset.range));
    }
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.key = $("key-input").value.trim();
      $("key-input").value = "";
      sessionStorage.setItem(KEY_STORE, state.key);
      state.known = null;
      poll();
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) poll();
    });
    setInterval(tick, 1000);
    poll();
  }

  start();
})();
