// agent-runtime dashboard: polls /dashboard/data and redraws the Chart.js charts in place.
// Credentials ride in the HttpOnly dashboard cookie (same-origin fetch); this script never sees them.
"use strict";

(function () {
  const body = document.body;
  const refreshMs = Math.max(1000, Number(body.dataset.refreshMs) || 5000);
  const palette = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#f59f00", "#0c8599", "#c92a2a", "#5c7cfa",
    "#82c91e", "#868e96"];
  const colors = new Map();
  const charts = {};
  let refreshes = 0;
  let timer = null;

  function colorOf(key) {
    if (!colors.has(key)) colors.set(key, palette[colors.size % palette.length]);
    return colors.get(key);
  }

  function label(ts) {
    const d = new Date(ts * 1000);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }

  function number(n) {
    return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n);
  }

  function usd(n) {
    if (n === 0) return "$0";
    return "$" + (n >= 1 ? n.toFixed(2) : n >= 0.01 ? n.toFixed(4) : String(Number(n.toPrecision(3))));
  }

  function ms(v) {
    return v === null || v === undefined ? "–" : v >= 1000 ? (v / 1000).toFixed(2) + "s" : Math.round(v) + "ms";
  }

  function makeChart(id, type, options) {
    const canvas = document.getElementById(id);
    charts[id] = new Chart(canvas, {
      type: type,
      data: { labels: [], datasets: [] },
      options: Object.assign({
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 12 } } },
      }, options),
    });
  }

  // Stacked bars over the minutes; counts get whole-number ticks, money gets dollar ticks.
  function stacked(yTitle, ticks) {
    return {
      scales: {
        x: { stacked: true },
        y: { stacked: true, beginAtZero: true, title: { display: true, text: yTitle }, ticks: ticks || { precision: 0 } },
      },
    };
  }

  const usdTicks = { callback: function (value) { return usd(Number(value)); } };

  function setup() {
    makeChart("chart-runs", "bar", stacked("runs"));
    makeChart("chart-latency", "line", {
      spanGaps: true,
      scales: { y: { beginAtZero: true, title: { display: true, text: "ms" } } },
      elements: { point: { radius: 2 } },
      plugins: {
        legend: { position: "bottom", labels: { boxWidth: 12, sort: function (a, b) { return a.text.localeCompare(b.text); } } },
      },
    });
    makeChart("chart-tokens", "bar", stacked("tokens"));
    makeChart("chart-cost", "bar", stacked("USD", usdTicks));
    makeChart("chart-problems", "bar", stacked("count"));
    makeChart("chart-templates", "bar", {
      indexAxis: "y",
      scales: {
        x: { beginAtZero: true, position: "bottom", title: { display: true, text: "tokens" } },
        x2: { beginAtZero: true, position: "top", grid: { drawOnChartArea: false }, title: { display: true, text: "USD" },
          ticks: usdTicks },
      },
    });
  }

  // Replace a chart's datasets, keeping each series' color stable across refreshes.
  function draw(id, labels, series, extra) {
    const chart = charts[id];
    chart.data.labels = labels;
    chart.data.datasets = series.map(function (s) {
      const color = s.color || colorOf(s.key);
      return Object.assign({ label: s.key, data: s.data, backgroundColor: color, borderColor: color }, extra || {}, s.options || {});
    });
    chart.update("none");
  }

  function perKey(table, field) {
    return Object.keys(table).map(function (key) { return { key: key, data: table[key][field] }; });
  }

  function sum(values) { return values.reduce(function (a, b) { return a + b; }, 0); }

  function render(snap) {
    const labels = snap.minutes.map(label);
    const t = snap.totals;
    draw("chart-runs", labels, perKey(snap.by_template, "runs"));
    draw("chart-latency", labels, [
      { key: "p50", data: snap.latency_ms.p50, color: "#2b8a3e" },
      { key: "p95", data: snap.latency_ms.p95, color: "#f59f00" },
      { key: "p99", data: snap.latency_ms.p99, color: "#c92a2a", options: { borderDash: [6, 4], order: -1 } }, // on top, dashed
    ], { fill: false, tension: 0.2 });
    draw("chart-tokens", labels, perKey(snap.by_model, "tokens"));
    draw("chart-cost", labels, perKey(snap.by_model, "cost_usd"));
    const problems = Object.keys(snap.error_codes).map(function (code) {
      return { key: "error: " + code, data: snap.error_codes[code] };
    });
    problems.push({ key: "rate-limited", data: snap.rate_limited, color: "#5c7cfa" });
    problems.push({ key: "quota rejected", data: snap.quota_rejected, color: "#ae3ec9" });
    draw("chart-problems", labels, problems);
    const names = Object.keys(snap.by_template);
    draw("chart-templates", names, [
      { key: "tokens", data: names.map(function (n) { return sum(snap.by_template[n].tokens); }), color: "#2f6fde",
        options: { xAxisID: "x" } },
      { key: "cost (USD)", data: names.map(function (n) { return sum(snap.by_template[n].cost_usd); }), color: "#e8590c",
        options: { xAxisID: "x2" } },
    ]);
    document.getElementById("t-runs").textContent = number(t.runs);
    document.getElementById("t-errors").textContent = number(t.errors);
    document.getElementById("t-rate").textContent = number(t.rate_limited);
    document.getElementById("t-quota").textContent = number(t.quota_rejected);
    document.getElementById("t-latency").textContent = ms(t.p50_ms) + " / " + ms(t.p95_ms) + " / " + ms(t.p99_ms);
    document.getElementById("t-tokens").textContent = number(t.input_tokens) + " / " + number(t.output_tokens);
    document.getElementById("t-cost").textContent = usd(t.cost_usd);
    document.getElementById("scope").textContent =
      snap.view === "fleet" ? "all tenants" : "tenant " + snap.tenant;
  }

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
  }

  function renderRuns(runs) {
    const tbody = document.querySelector("#runs tbody");
    tbody.replaceChildren();
    runs.forEach(function (run) {
      const row = tbody.insertRow();
      row.dataset.runId = run.run_id;
      cell(row, new Date(run.created_at * 1000).toLocaleTimeString());
      cell(row, run.run_id);
      cell(row, run.status, "status-" + run.status);
      cell(row, run.template);
      cell(row, ms(run.duration_ms));
      cell(row, number(run.total_tokens));
      cell(row, usd(run.cost_usd));
      cell(row, String(run.attempts));
      row.addEventListener("click", function () { showRun(run.run_id); });
    });
    body.dataset.runs = String(runs.length);
  }

  function field(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 1);
    list.append(dt, dd);
  }

  async function showRun(runId) {
    const response = await fetch("/dashboard/runs/" + encodeURIComponent(runId),
      { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) { status("run " + runId + ": HTTP " + response.status, true); return; }
    const detail = await response.json();
    const run = detail.run;
    document.getElementById("run-title").textContent = run.run_id + " (" + run.status + ")";
    const fields = document.getElementById("run-fields");
    fields.replaceChildren();
    [["template", run.template], ["session", run.session_id], ["input", run.input], ["output", run.output],
      ["error", run.error], ["attempts", String(run.attempts)], ["recoveries", String(run.recoveries)],
      ["worker", run.worker], ["usage", run.usage], ["duration", ms(run.duration_ms)]].forEach(function (f) {
      field(fields, f[0], f[1]);
    });
    const events = document.getElementById("run-events");
    events.replaceChildren();
    detail.events.forEach(function (e) {
      const li = document.createElement("li");
      li.textContent = e.type + (e.step ? " [" + e.step + "]" : "") + " " + JSON.stringify(e.data);
      events.append(li);
    });
    document.getElementById("run-detail").hidden = false;
    body.dataset.detail = run.run_id;
  }

  async function refreshRuns() {
    const response = await fetch("/dashboard/runs?limit=50",
      { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
    if (response.ok) renderRuns((await response.json()).runs);
  }

  function status(text, isError) {
    const el = document.getElementById("status");
    el.textContent = text;
    el.classList.toggle("error", Boolean(isError));
  }

  async function refresh() {
    const minutes = document.getElementById("minutes").value;
    const view = document.getElementById("view").value;
    try {
      const response = await fetch("/dashboard/data?minutes=" + encodeURIComponent(minutes) + "&view=" + view,
        { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.status === 401 || response.status === 403) {
        status("signed out: reload the page to sign in again", true);
        return;
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      const snap = await response.json();
      render(snap);
      await refreshRuns();
      refreshes += 1;
      body.dataset.refreshes = String(refreshes);
      status("updated " + new Date().toLocaleTimeString() + " · worker pid " + snap.worker.pid);
    } catch (err) {
      status("refresh failed (" + err.message + "); retrying", true);
    }
  }

  function schedule() {
    if (timer !== null) clearInterval(timer);
    timer = setInterval(refresh, refreshMs);
  }

  document.addEventListener("DOMContentLoaded", function () {
    const minutes = document.getElementById("minutes");
    minutes.value = body.dataset.minutes;
    if (minutes.value !== body.dataset.minutes) {
      const option = new Option(body.dataset.minutes + " min", body.dataset.minutes, true, true);
      minutes.add(option);
    }
    if (body.dataset.fleet !== "true") document.getElementById("view").parentElement.hidden = true;
    minutes.addEventListener("change", refresh);
    document.getElementById("view").addEventListener("change", refresh);
    setup();
    refresh();
    schedule();
  });
})();
