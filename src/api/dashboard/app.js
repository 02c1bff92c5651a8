// The supervisor dashboard: reads the token once (?token=... or the sign-in field), keeps
// it in localStorage, then follows the API's live stream. No library, no network beyond
// the engine itself.
"use strict";

const TEXT = {
  zh: {
    disconnected: "未连接", connected: "实时", sign_in: "登录", sign_out: "退出",
    token_prompt: "访问令牌", bad_token: "令牌无效", queues: "队列", queue: "队列",
    waiting: "排队", longest_wait: "最长等待", service_level: "今日服务水平",
    asa: "平均应答速度", offered: "呼入", answered: "接通", abandoned: "放弃",
    agents_free: "空闲坐席", today_chart: "今日排队趋势", avg_waiting: "平均排队数",
    avg_wait_s: "平均等待（秒）", agents: "坐席", agent: "坐席", state: "状态",
    time_in_state: "状态时长", calls: "接听", talk_time: "通话时长", occupancy: "占用率",
    logged_out: "未登录", available: "空闲", ringing: "振铃", on_call: "通话中",
    wrap_up: "话后处理", paused: "暂停", unreachable: "话机无响应", lang_switch: "English",
  },
  en: {
    disconnected: "offline", connected: "live", sign_in: "Sign in", sign_out: "Sign out",
    token_prompt: "Access token", bad_token: "Token refused", queues: "Queues", queue: "Queue",
    waiting: "Waiting", longest_wait: "Longest wait", service_level: "Service level today",
    asa: "ASA", offered: "Offered", answered: "Answered", abandoned: "Abandoned",
    agents_free: "Agents free", today_chart: "Today", avg_waiting: "Average calls waiting",
    avg_wait_s: "Average wait (s)", agents: "Agents", agent: "Agent", state: "State",
    time_in_state: "Time in state", calls: "Calls", talk_time: "Talk time",
    occupancy: "Occupancy", logged_out: "Logged out", available: "Available",
    ringing: "Ringing", on_call: "On call", wrap_up: "Wrap-up", paused: "Paused",
    unreachable: "phone not answering", lang_switch: "中文",
  },
};

const state = {
  token: null,
  lang: localStorage.getItem("hotline.lang"),
  limits: null,
  overview: null,
  clockSkew: 0,
  chartQueue: null,
  chartDay: null,
  // The live stream: its AbortController, and whether it is connected.
  source: null,
  live: false,
};

const $ = (sel) => document.querySelector(sel);
const t = (key) => (TEXT[state.lang] || TEXT.zh)[key] || key;

function applyLanguage() {
  document.documentElement.lang = state.lang === "en" ? "en" : "zh-CN";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("#lang").textContent = t("lang_switch");
  $("#conn").textContent = t(state.live ? "connected" : "disconnected");
  render();
}

function duration(ms) {
  if (ms == null) return "—";
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (n) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

function pct(v) { return v == null ? "—" : `${v.toFixed(1)}%`; }

// Colour class for a figure: higher is worse unless `lowIsBad`.
function level(value, warn, alert, lowIsBad) {
  if (value == null) return "";
  if (lowIsBad) return value <= alert ? "alert" : value <= warn ? "warn" : "ok";
  return value >= alert ? "alert" : value >= warn ? "warn" : "ok";
}

function cell(row, text, cls, extra) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  if (extra) td.classList.add(extra);
  row.appendChild(td);
  return td;
}

function serverNow() { return Date.now() + state.clockSkew; }

function render() {
  const o = state.overview;
  if (!o || !state.limits) return;
  const L = state.limits;
  const now = serverNow();
  const qbody = $("#queues tbody");
  qbody.replaceChildren();
  for (const q of o.queues) {
    const tr = document.createElement("tr");
    tr.dataset.queue = q.queue;
    const longest = q.live.oldest_entered_at == null ? 0 : now - q.live.oldest_entered_at;
    const abandonedPct = q.today.offered > 0 ? (100 * q.today.abandoned) / q.today.offered : null;
    cell(tr, q.queue, "name");
    cell(tr, String(q.live.waiting), "waiting", level(q.live.waiting, L.waiting_warn, L.waiting_alert));
    cell(tr, q.live.waiting ? duration(longest) : "—", "longest",
      level(longest / 1000, L.longest_wait_warn_s, L.longest_wait_alert_s));
    cell(tr, pct(q.today.service_level_pct), "sl",
      level(q.today.service_level_pct, L.service_level_warn_pct, L.service_level_alert_pct, true));
    cell(tr, q.today.asa_ms == null ? "—" : duration(q.today.asa_ms), "asa");
    cell(tr, String(q.today.offered), "offered");
    cell(tr, String(q.today.answered), "answered");
    cell(tr, String(q.today.abandoned), "abandoned",
      level(abandonedPct, L.abandoned_warn_pct, L.abandoned_alert_pct));
    cell(tr, String(q.live.agents.available), "free");
    qbody.appendChild(tr);
  }
  const abody = $("#agents tbody");
  abody.replaceChildren();
  for (const a of o.agents) {
    const tr = document.createElement("tr");
    tr.dataset.agent = a.agent;
    cell(tr, a.agent, "name");
    const st = cell(tr, "", "state-cell");
    const badge = document.createElement("span");
    badge.className = `state ${a.state}`;
    badge.textContent = t(a.state) + (a.reason ? ` (${a.reason})` : "") + (a.queue ? ` · ${a.queue}` : "");
    st.appendChild(badge);
    if (a.reachable === false) {
      // Probes find the phone down: the ACD offers it nothing until it answers again.
      const down = document.createElement("span");
      down.className = "unreachable";
      down.textContent = t("unreachable");
      st.appendChild(down);
    }
    cell(tr, duration(now - a.since), "in-state");
    cell(tr, String(a.today.calls), "calls");
    cell(tr, duration(a.today.talk_ms), "talk");
    cell(tr, pct(a.today.occupancy_pct), "occupancy");
    abody.appendChild(tr);
  }
  const select = $("#chart-queue");
  const names = o.queues.map((q) => q.queue);
  if (select.options.length !== names.length || names.some((n, i) => select.options[i].value !== n)) {
    select.replaceChildren(...names.map((n) => new Option(n, n)));
    if (!names.includes(state.chartQueue)) state.chartQueue = names[0] || null;
    select.value = state.chartQueue || "";
    loadChart();
  }
  drawChart();
  $("#clock").textContent = new Date(now).toLocaleTimeString(state.lang === "en" ? "en-GB" : "zh-CN");
}

async function api(path) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${state.token}` } });
  if (r.status === 401) throw new Error("unauthorized");
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

async function loadChart() {
  if (!state.chartQueue) return;
  try {
    state.chartDay = await api(`/api/v1/queues/${encodeURIComponent(state.chartQueue)}/intervals`);
    drawChart();
  } catch (e) {
    console.warn(e);
  }
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text != null) el.textContent = text;
  return el;
}

// Calls waiting (left axis) and average wait in seconds (right axis) per 15 minutes,
// midnight to midnight.
function drawChart() {
  const chart = $("#chart");
  const day = state.chartDay;
  chart.replaceChildren();
  if (!day || !state.overview) return;
  const W = 960, H = 260, left = 40, right = 44, top = 10, bottom = 24;
  const pw = W - left - right, ph = H - top - bottom;
  const dayStart = state.overview.day_start;
  const live = state.overview.queues.find((q) => q.queue === day.queue);
  // Each interval is drawn at its middle; the current count is drawn at "now".
  const points = day.intervals.map((f) => ({
    at: f.start + 450000, waiting: f.avg_waiting, wait: f.avg_wait_ms == null ? null : f.avg_wait_ms / 1000,
  }));
  if (live) points.push({ at: serverNow(), waiting: live.live.waiting, wait: null });
  const maxWaiting = Math.max(1, ...points.map((p) => p.waiting));
  const maxWait = Math.max(10, ...points.map((p) => p.wait || 0));
  const x = (at) => left + (pw * Math.min(1, Math.max(0, (at - dayStart) / 86400000)));
  const yl = (v) => top + ph - (ph * v) / maxWaiting;
  const yr = (v) => top + ph - (ph * v) / maxWait;
  for (let h = 0; h <= 24; h += 3) {
    const px = left + (pw * h) / 24;
    chart.appendChild(svg("line", { class: "grid", x1: px, x2: px, y1: top, y2: top + ph }));
    chart.appendChild(svg("text", { x: px - 8, y: H - 6 }, `${String(h).padStart(2, "0")}:00`));
  }
  chart.appendChild(svg("line", { class: "axis", x1: left, x2: left + pw, y1: top + ph, y2: top + ph }));
  chart.appendChild(svg("text", { x: 4, y: top + 10 }, maxWaiting.toFixed(maxWaiting < 10 ? 1 : 0)));
  chart.appendChild(svg("text", { x: W - right + 4, y: top + 10 }, `${Math.round(maxWait)}s`));
  const path = (key, y) => points.filter((p) => p[key] != null)
    .map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p[key]).toFixed(1)}`).join(" ");
  chart.appendChild(svg("path", { class: "waiting", d: path("waiting", yl) }));
  chart.appendChild(svg("path", { class: "wait", d: path("wait", yr) }));
}

function showConnection(live) {
  state.live = live;
  $("#conn").className = live ? "conn up" : "conn down";
  $("#conn").textContent = t(live ? "connected" : "disconnected");
}

// The live stream (server-sent events) read with fetch, so the token travels in the
// Authorization header: EventSource cannot send one, and a token in the address ends up
// in logs and browser history. Reconnects two seconds after the stream breaks.
function connect() {
  if (state.source) state.source.abort();
  const ctl = new AbortController();
  state.source = ctl;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const r = await fetch("/api/v1/stream", {
          headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
          signal: ctl.signal,
        });
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        showConnection(true);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            streamEvent(buf.slice(0, end));
            buf = buf.slice(end + 2);
          }
        }
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      showConnection(false);
      await new Promise((ok) => setTimeout(ok, 2000));
    }
  })();
}

// One server-sent event: `event:` and `data:` lines.
function streamEvent(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (event !== "overview" || !data.length) return;
  const o = JSON.parse(data.join("\n"));
  state.clockSkew = o.now - Date.now();
  const intervalChanged = !state.overview || Math.floor(o.now / 900000) !== Math.floor(state.overview.now / 900000);
  state.overview = o;
  render();
  if (intervalChanged) loadChart();
}

async function start() {
  try {
    state.limits = await api("/api/v1/dashboard");
  } catch (e) {
    showLogin(e.message === "unauthorized" ? t("bad_token") : e.message);
    return;
  }
  if (!state.lang) state.lang = state.limits.language === "en" ? "en" : "zh";
  $("#title").textContent = state.limits.title;
  document.title = state.limits.title;
  $("#login").hidden = true;
  $("#board").hidden = false;
  $("#signout").hidden = false;
  applyLanguage();
  connect();
}

function showLogin(message) {
  if (state.source) state.source.abort();
  state.source = null;
  $("#board").hidden = true;
  $("#signout").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  applyLanguage();
}

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("#token").value.trim();
  localStorage.setItem("hotline.token", state.token);
  start();
});
$("#signout").addEventListener("click", () => {
  localStorage.removeItem("hotline.token");
  state.token = null;
  showLogin("");
});
$("#lang").addEventListener("click", () => {
  state.lang = state.lang === "en" ? "zh" : "en";
  localStorage.setItem("hotline.lang", state.lang);
  applyLanguage();
});
$("#chart-queue").addEventListener("change", (e) => { state.chartQueue = e.target.value; loadChart(); });
setInterval(render, 1000);
setInterval(loadChart, 60000);

// A token in the address (?token=...) is taken once, stored, and removed from the address.
const params = new URLSearchParams(location.search);
if (params.has("token")) {
  localStorage.setItem("hotline.token", params.get("token"));
  params.delete("token");
  const rest = params.toString();
  history.replaceState(null, "", location.pathname + (rest ? `?${rest}` : ""));
}
if (params.get("lang") === "en" || params.get("lang") === "zh") state.lang = params.get("lang");
state.token = localStorage.getItem("hotline.token");
if (state.token) start(); else showLogin("");
