// Tiergate dashboard: reads /admin/* (with the admin key) and /metrics; charts are inline SVG.
"use strict";

const COLORS = ["#2f6fde", "#1f9d55", "#d9822b", "#9b51e0", "#d64545", "#0fa3b1", "#8a6d3b", "#5b6478"];
const REFRESH_MS = 2000;
const state = { key: sessionStorage.getItem("tiergate-admin-key"), view: "overview",
  rates: [], lastTotals: null, logAfter: 0, timer: null };

const $ = (sel) => document.querySelector(sel);
const fmt = (n, digits = 0) => (n === null || n === undefined || Number.isNaN(n)) ? "-" :
  Number(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
const usd = (n) => "$" + fmt(n, n < 1 ? 4 : 2);
const pctText = (r) => (r === null || r === undefined || Number.isNaN(r)) ? "-" : fmt(r * 100, 1) + "%";
const ms = (s) => (s === null || s === undefined) ? "-" : fmt(s * 1000, s < 0.01 ? 2 : 1) + " ms";

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: {
    authorization: "Bearer " + state.key, "content-type": "application/json", ...(options.headers || {}) } });
  if (response.status === 401) { logout("The admin key was refused."); throw new Error("unauthorized"); }
  if (!response.ok) throw new Error(path + ": HTTP " + response.status);
  return response;
}
const getJSON = async (path) => (await api(path)).json();

// ---------------------------------------------------------------- Prometheus text format
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[2]) for (const l of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: parseFloat(m[3]) });
  }
  return out;
}
const sum = (metrics, name, pred = () => true) =>
  metrics.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);

function quantile(metrics, base, q) {
  const buckets = new Map();
  for (const s of metrics) if (s.name === base + "_bucket") {
    const le = s.labels.le === "+Inf" ? Infinity : parseFloat(s.labels.le);
    buckets.set(le, (buckets.get(le) || 0) + s.value);
  }
  const bounds = [...buckets.keys()].sort((a, b) => a - b);
  const total = buckets.get(Infinity) || 0;
  if (!total) return null;
  const rank = q * total;
  let prevBound = 0, prevCount = 0;
  for (const b of bounds) {
    const c = buckets.get(b);
    if (c >= rank) {
      if (b === Infinity) return prevBound;
      return prevBound + (b - prevBound) * ((rank - prevCount) / Math.max(c - prevCount, 1e-9));
    }
    prevBound = b; prevCount = c;
  }
  return prevBound;
}

// ---------------------------------------------------------------- SVG charts
const NS = "http://www.w3.org/2000/svg";
function svg(width, height) {
  const el = document.createElementNS(NS, "svg");
  el.setAttribute("viewBox", `0 0 ${width} ${height}`);
  el.setAttribute("preserveAspectRatio", "none");
  return el;
}
function node(parent, tag, attrs, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}
function lineChart(container, series, labels) {
  const W = 600, H = 200, P = 28;
  const chart = svg(W, H);
  const max = Math.max(1e-9, ...series.flat());
  node(chart, "line", { x1: P, y1: H - P, x2: W, y2: H - P, stroke: "#dde1e8" });
  node(chart, "text", { x: 2, y: 12, "font-size": 10, fill: "#6b7385" }, fmt(max, max < 10 ? 2 : 0));
  series.forEach((points, i) => {
    if (points.length < 2) return;
    const step = (W - P) / (points.length - 1);
    const d = points.map((v, j) => `${j ? "L" : "M"}${P + j * step},${H - P - (v / max) * (H - 2 * P)}`).join(" ");
    node(chart, "path", { d, fill: "none", stroke: COLORS[i], "stroke-width": 2 });
    node(chart, "text", { x: P + 4 + i * 120, y: H - 8, "font-size": 11, fill: COLORS[i] }, labels[i]);
  });
  container.replaceChildren(chart);
}
function barChart(container, bars) {  // bars: [{label, value}]
  const W = 600, H = 200, P = 24;
  const chart = svg(W, H);
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = (W - P) / Math.max(bars.length, 1);
  bars.forEach((b, i) => {
    const h = (b.value / max) * (H - 2 * P);
    node(chart, "rect", { x: P + i * width + 4, y: H - P - h, width: Math.max(width - 8, 2), height: h, fill: COLORS[i % COLORS.length] });
    node(chart, "text", { x: P + i * width + 4, y: H - 8, "font-size": 10, fill: "#1d2330" }, b.label);
    node(chart, "text", { x: P + i * width + 4, y: H - P - h - 3, "font-size": 10, fill: "#6b7385" }, fmt(b.value));
  });
  container.replaceChildren(chart);
}
function stackedBars(container, columns, groups) {  // columns: [{label, parts: {group: v}}]
  const W = 720, H = 260, P = 30;
  const chart = svg(W, H);
  const totals = columns.map((c) => Object.values(c.parts).reduce((a, v) => a + v, 0));
  const max = Math.max(1e-9, ...totals);
  const width = (W - P) / Math.max(columns.length, 1);
  node(chart, "text", { x: 2, y: 12, "font-size": 10, fill: "#6b7385" }, fmt(max, max < 10 ? 4 : 0));
  columns.forEach((c, i) => {
    let y = H - P;
    groups.forEach((g, gi) => {
      const v = c.parts[g] || 0;
      if (!v) return;
      const h = (v / max) * (H - 2 * P);
      y -= h;
      node(chart, "rect", { x: P + i * width + 1, y, width: Math.max(width - 2, 1), height: h, fill: COLORS[gi % COLORS.length] });
    });
    if (i % 3 === 0) node(chart, "text", { x: P + i * width, y: H - 10, "font-size": 9, fill: "#6b7385" }, c.label);
  });
  container.replaceChildren(chart);
}

// ---------------------------------------------------------------- tables
function fillTable(table, rows, build) {
  const body = table.querySelector("tbody");
  body.replaceChildren(...rows.map((r) => { const tr = document.createElement("tr"); build(tr, r); return tr; }));
}
function td(tr, text, cls) {
  const cell = document.createElement("td");
  if (text instanceof Node) cell.appendChild(text); else cell.textContent = text;
  if (cls) cell.className = cls;
  tr.appendChild(cell);
  return cell;
}
function meter(ratio) {
  const bar = document.createElement("div"); bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = Math.min(100, (ratio || 0) * 100) + "%";
  if (ratio >= 1) fill.className = "over"; else if (ratio >= 0.8) fill.className = "hot";
  bar.appendChild(fill);
  return bar;
}

// ---------------------------------------------------------------- views
async function overview() {
  const metrics = parseMetrics(await (await fetch("/metrics")).text());
  const requests = sum(metrics, "tiergate_requests_total");
  const errors = sum(metrics, "tiergate_requests_total", (l) => Number(l.status) >= 400);
  $("#stat-requests").textContent = fmt(requests);
  $("#stat-errors").textContent = fmt(errors);
  $("#stat-error-rate").textContent = requests ? pctText(errors / requests) : "-";
  $("#stat-spend").textContent = usd(sum(metrics, "tiergate_cost_usd_total"));
  $("#stat-tokens").textContent = fmt(sum(metrics, "tiergate_tokens_total", (l) => l.direction === "in")) +
    " / " + fmt(sum(metrics, "tiergate_tokens_total", (l) => l.direction === "out"));
  $("#stat-overhead").textContent = ms(quantile(metrics, "tiergate_gateway_overhead_seconds", 0.5));

  const now = Date.now();
  if (state.lastTotals) {
    const dt = (now - state.lastTotals.at) / 1000;
    state.rates.push([(requests - state.lastTotals.requests) / dt, (errors - state.lastTotals.errors) / dt]);
    state.rates = state.rates.slice(-60);
  }
  state.lastTotals = { at: now, requests, errors };
  lineChart($("#chart-rate"), [state.rates.map((r) => r[0]), state.rates.map((r) => r[1])], ["requests/s", "errors/s"]);

  const latency = [["latency", "tiergate_request_latency_seconds"], ["TTFT (streams)", "tiergate_time_to_first_token_seconds"],
    ["gateway overhead", "tiergate_gateway_overhead_seconds"]];
  fillTable($("#table-latency"), latency, (tr, [label, base]) => {
    td(tr, label);
    for (const q of [0.5, 0.95, 0.99]) td(tr, ms(quantile(metrics, base, q)));
  });

  const layers = {};
  for (const s of metrics) if (s.name === "tiergate_cache_total") {
    const l = (layers[s.labels.layer] ||= { hits: 0, lookups: 0 });
    if (s.labels.outcome === "bypass") continue;
    l.lookups += s.value;
    if (s.labels.outcome === "hit" || s.labels.outcome === "semantic_hit" || s.labels.outcome === "stale") l.hits += s.value;
  }
  fillTable($("#table-cache"), Object.entries(layers), (tr, [layer, l]) => {
    tr.dataset.layer = layer;
    td(tr, layer); td(tr, fmt(l.hits)); td(tr, fmt(l.lookups));
    const rate = l.lookups ? l.hits / l.lookups : 0;
    td(tr, pctText(rate), "rate"); td(tr, meter(rate));
  });

  const byAlias = {};
  for (const s of metrics) if (s.name === "tiergate_requests_total") {
    const k = s.labels.alias + " " + s.labels.status;
    byAlias[k] = (byAlias[k] || 0) + s.value;
  }
  barChart($("#chart-alias"), Object.entries(byAlias).sort((a, b) => b[1] - a[1]).slice(0, 10).map(([label, value]) => ({ label, value })));

  // Whatever the router and escalation stages export (names with tier / escalat / router).
  const router = metrics.filter((s) => /tier|escalat|router/.test(s.name.replace(/^tiergate_/, "")) &&
    !s.name.endsWith("_created") && !s.name.endsWith("_bucket"));
  fillTable($("#table-router"), router, (tr, s) => {
    td(tr, s.name); td(tr, Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(" ")); td(tr, fmt(s.value, 0));
  });
  $("#router-empty").hidden = router.length > 0;

  const failures = metrics.filter((s) => s.name === "tiergate_target_failures_total");
  fillTable($("#table-failures"), failures, (tr, s) => { td(tr, s.labels.target); td(tr, s.labels.kind); td(tr, fmt(s.value)); });
}

async function spend() {
  const group = $("#spend-group").value, measure = $("#spend-measure").value;
  const data = await getJSON(`/admin/usage/series?group_by=${group}&hours=24`);
  const value = (row) => measure === "tokens" ? row.tokens_in + row.tokens_out : row[measure];
  const totals = {};
  let usdTotal = 0, requestsTotal = 0, tokensTotal = 0;
  for (const p of data.points) for (const r of p.rows) {
    const t = (totals[r[group]] ||= { requests: 0, tokens_in: 0, tokens_out: 0, usd: 0 });
    t.requests += r.requests; t.tokens_in += r.tokens_in; t.tokens_out += r.tokens_out; t.usd += r.usd;
    usdTotal += r.usd; requestsTotal += r.requests; tokensTotal += r.tokens_in + r.tokens_out;
  }
  const groups = Object.keys(totals).sort((a, b) => totals[b].usd - totals[a].usd || a.localeCompare(b));
  const columns = data.points.map((p) => ({ label: p.hour.slice(11, 16),
    parts: Object.fromEntries(p.rows.map((r) => [r[group], value(r)])) }));
  stackedBars($("#chart-spend"), columns, groups);
  $("#spend-legend").replaceChildren(...groups.map((g, i) => {
    const span = document.createElement("span"); const dot = document.createElement("i");
    dot.className = "c" + (i % COLORS.length); span.append(dot, g); return span;
  }));
  $("#spend-total-usd").textContent = usd(usdTotal);
  $("#spend-total-requests").textContent = fmt(requestsTotal);
  $("#spend-total-tokens").textContent = fmt(tokensTotal);
  fillTable($("#table-spend"), groups, (tr, g) => {
    const t = totals[g];
    td(tr, g); td(tr, fmt(t.requests)); td(tr, fmt(t.tokens_in)); td(tr, fmt(t.tokens_out)); td(tr, usd(t.usd));
  });
}

async function targets() {
  const data = await getJSON("/admin/targets");
  fillTable($("#table-targets"), data.targets, (tr, t) => {
    tr.dataset.target = t.name;
    td(tr, t.name); td(tr, t.model);
    const badge = document.createElement("span");
    badge.className = "badge " + t.state; badge.textContent = t.state.replace("_", "-");
    td(tr, badge, "state");
    td(tr, t.reason || ""); td(tr, fmt(t.calls)); td(tr, fmt(t.failures)); td(tr, pctText(t.error_ratio));
    td(tr, `${fmt(t.ttft_p50_ms, 1)} / ${fmt(t.ttft_p95_ms, 1)}`);
    const button = document.createElement("button");
    const closed = t.state === "closed";
    button.className = "btn" + (closed ? "" : " secondary");
    button.textContent = closed ? "Eject" : "Restore";
    button.dataset.action = closed ? "eject" : "restore";
    button.addEventListener("click", async () => {
      button.disabled = true;
      const body = closed ? JSON.stringify({ for_s: 300, reason: "dashboard" }) : undefined;
      await api(`/admin/targets/${encodeURIComponent(t.name)}/${button.dataset.action}`, { method: "POST", body });
      await targets();
    });
    td(tr, button);
  });
}

async function budgets() {
  const data = await getJSON("/admin/budgets");
  $("#budgets-empty").hidden = data.data.length > 0;
  fillTable($("#table-budgets"), data.data, (tr, b) => {
    const money = b.budget.startsWith("usd");
    td(tr, b.scope); td(tr, b.name); td(tr, b.budget);
    td(tr, money ? usd(b.used) : fmt(b.used)); td(tr, money ? usd(b.limit) : fmt(b.limit));
    const cell = td(tr, meter(b.ratio)); cell.append(" " + pctText(b.ratio));
  });
}

async function log() {
  const data = await getJSON(`/admin/logs?after=${state.logAfter}&limit=200`);
  state.logAfter = data.last;
  if (!$("#log-follow").checked || !data.lines.length) return;
  const body = $("#table-log tbody");
  for (const line of data.lines) {
    const tr = document.createElement("tr");
    const time = new Date(line.ts * 1000).toISOString().slice(11, 23);
    if (line.event !== "request") {
      tr.className = "event";
      td(tr, time); const c = td(tr, `${line.event}: ${line.target || ""} ${line.from || ""} -> ${line.to || ""}`); c.colSpan = 11;
    } else {
      tr.dataset.requestId = line.request_id;
      for (const v of [time, line.request_id, line.key_id, line.alias, line.target || "-", line.status, line.outcome,
        fmt(line.latency_ms, 1), line.ttft_ms === null ? "-" : fmt(line.ttft_ms, 1),
        `${line.tokens_in} / ${line.tokens_out}`, fmt(line.cost_usd, 6), line.cache || "-"]) td(tr, String(v));
    }
    body.prepend(tr);
  }
  while (body.children.length > 200) body.lastChild.remove();
}

const VIEWS = { overview, spend, targets, budgets, log };

async function refresh() {
  clearTimeout(state.timer);
  try {
    if (state.view !== "overview") await overview();  // keeps the live rate going
    await VIEWS[state.view]();
  } catch (err) {
    if (err.message !== "unauthorized") console.warn(err.message);
  }
  if (state.key) state.timer = setTimeout(refresh, REFRESH_MS);
}

function show(view) {
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== "view-" + view;
  refresh();
}

function logout(message) {
  state.key = null;
  sessionStorage.removeItem("tiergate-admin-key");
  clearTimeout(state.timer);
  $("#tabs").hidden = $("#logout").hidden = true;
  for (const s of document.querySelectorAll(".view")) s.hidden = true;
  $("#login-view").hidden = false;
  $("#login-error").textContent = message || "";
}

async function login(key) {
  const response = await fetch("/admin/targets", { headers: { authorization: "Bearer " + key } });
  if (!response.ok) { logout(response.status === 401 ? "The admin key was refused." : "HTTP " + response.status); return; }
  state.key = key;
  sessionStorage.setItem("tiergate-admin-key", key);
  const data = await response.json();
  $("#whoami").textContent = "config " + data.config_version;
  $("#login-view").hidden = true;
  $("#tabs").hidden = $("#logout").hidden = false;
  show(state.view);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", (e) => { e.preventDefault(); login($("#admin-key").value.trim()); });
  $("#logout").addEventListener("click", () => logout());
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => show(b.dataset.view));
  $("#spend-group").addEventListener("change", refresh);
  $("#spend-measure").addEventListener("change", refresh);
  if (state.key) login(state.key);
});
