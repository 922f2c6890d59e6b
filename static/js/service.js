// A web service's Monitoring tab: three plotly charts (requests per minute; latency p50,
// p95, p99; error rate) over the range the selector picks (1h, 24h, 7d), read from
//
//   <section id="service-monitor" data-metrics-url="<api-service-metrics URL>" data-range="1h">
//     <button data-range="24h"> … <div data-chart="requests|latency|errors"> …
//
// The API answers one point per bucket (a minute up to 6 hours, coarser beyond), with
// the window's totals, which refresh the stat tiles. The charts redraw every 30 s while
// the page is visible. The section gets data-ready="1" once the charts are drawn.
(function () {
  "use strict";

  const root = document.getElementById("service-monitor");
  if (!root) return;
  const REFRESH_MS = 30000;
  const FONT = 'system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif';
  const COLORS = { requests: "#2563eb", p50: "#16a34a", p95: "#f97316", p99: "#dc2626", errors: "#dc2626" };
  const status = root.querySelector("[data-chart-status]");
  const note = root.querySelector("[data-range-note]");
  const charts = {};
  root.querySelectorAll("[data-chart]").forEach((el) => { charts[el.dataset.chart] = el; });
  let range = root.dataset.range || "1h";
  let timer = null;
  let inFlight = null;

  // Deferred scripts: plotly.js may still be starting when this runs.
  const plotlyReady = new Promise((resolve, reject) => {
    const check = () => (typeof Plotly !== "undefined" ? resolve() : reject(new Error("plotly.js did not load.")));
    if (typeof Plotly !== "undefined" || document.readyState === "complete") check();
    else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", check);
    else window.addEventListener("load", check);
  });
  plotlyReady.catch(() => {});

  // Plotly reads zone-less date strings as they are: show the reader's local time.
  function local(iso) {
    const d = new Date(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  function layout(yTitle, extra) {
    return Object.assign({
      margin: { l: 54, r: 14, t: 8, b: 36 },
      height: 240,
      font: { family: FONT, size: 11.5, color: "#1b1f24" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      showlegend: false,
      hovermode: "x unified",
      xaxis: { type: "date", gridcolor: "#eef1f5", linecolor: "#e1e4e8" },
      yaxis: { title: { text: yTitle, standoff: 6 }, gridcolor: "#eef1f5", zeroline: true, zerolinecolor: "#e1e4e8", rangemode: "tozero" },
    }, extra || {});
  }

  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  function line(x, y, name, color, extra) {
    return Object.assign({ type: "scatter", mode: "lines", x, y, name, line: { color, width: 1.8, shape: "linear" }, connectgaps: false }, extra || {});
  }

  function draw(data) {
    const s = data.series;
    const x = s.time.map(local);
    const jobs = [
      Plotly.react(charts.requests, [
        line(x, s.requests_per_minute, "requests/min", COLORS.requests, { fill: "tozeroy", fillcolor: "rgba(37,99,235,.10)", hovertemplate: "%{y:.3~f} req/min<extra></extra>" }),
      ], layout("requests / min"), CONFIG),
      Plotly.react(charts.latency, [
        line(x, s.p50_ms, "p50", COLORS.p50, { mode: "lines+markers", marker: { size: 5 }, hovertemplate: "p50 %{y:.1f} ms<extra></extra>" }),
        line(x, s.p95_ms, "p95", COLORS.p95, { mode: "lines+markers", marker: { size: 5 }, hovertemplate: "p95 %{y:.1f} ms<extra></extra>" }),
        line(x, s.p99_ms, "p99", COLORS.p99, { mode: "lines+markers", marker: { size: 5 }, hovertemplate: "p99 %{y:.1f} ms<extra></extra>" }),
      ], layout("ms", { showlegend: true, legend: { orientation: "h", x: 0, y: 1.12, font: { size: 11 } } }), CONFIG),
      Plotly.react(charts.errors, [
        line(x, s.error_rate, "error rate", COLORS.errors, { mode: "lines+markers", marker: { size: 5 }, fill: "tozeroy", fillcolor: "rgba(220,38,38,.08)", hovertemplate: "%{y:.2%} errors<extra></extra>" }),
      ], layout("errors", { yaxis: { title: { text: "share of requests", standoff: 6 }, tickformat: ".1~%", rangemode: "tozero", gridcolor: "#eef1f5", zerolinecolor: "#e1e4e8" } }), CONFIG),
    ];
    return Promise.all(jobs);
  }

  function totals(t) {
    const set = (name, text) => {
      const el = document.querySelector(`[data-total="${name}"]`);
      if (el) el.textContent = text;
    };
    const ms = (v) => (v === null || v === undefined ? "—" : `${v.toFixed(1)} ms`);
    set("requests", t.requests.toLocaleString());
    set("error_rate", t.error_rate === null ? "—" : `${(t.error_rate * 100).toFixed(t.error_rate < 0.1 ? 1 : 0)}%`);
    set("latency_p50_ms", ms(t.latency_p50_ms));
    set("latency_p95_ms", ms(t.latency_p95_ms));
    set("latency_p99_ms", ms(t.latency_p99_ms));
  }

  async function load() {
    const asked = range;
    if (inFlight) inFlight.abort();
    const controller = new AbortController();
    inFlight = controller;
    try {
      const response = await fetch(`${root.dataset.metricsUrl}?range=${encodeURIComponent(asked)}`, {
        headers: { Accept: "application/json" }, cache: "no-store", credentials: "same-origin", signal: controller.signal,
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.message || `HTTP ${response.status}`);
      await plotlyReady;
      if (asked !== range) return;
      await draw(body);
      root.lastMetrics = body; // what the charts show (the browser tests compare them)
      totals(body.totals);
      if (note) note.textContent = `last ${asked}` + (body.bucket_seconds > 60 ? ` · ${body.bucket_seconds / 60}-minute buckets` : " · per minute");
      status.textContent = body.totals.requests ? "" : "No requests in this range yet.";
      status.hidden = !status.textContent;
      root.dataset.ready = "1";
    } catch (error) {
      if (error.name === "AbortError") return;
      status.hidden = false;
      status.textContent = `The charts could not be loaded: ${error.message}`;
      status.classList.add("error");
    } finally {
      if (inFlight === controller) inFlight = null;
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (document.visibilityState === "visible") load().finally(schedule);
      else schedule();
    }, REFRESH_MS);
  }

  root.querySelectorAll("button[data-range]").forEach((button) => {
    button.addEventListener("click", () => {
      range = button.dataset.range;
      root.querySelectorAll("button[data-range]").forEach((b) => {
        const on = b === button;
        b.classList.toggle("primary", on);
        b.setAttribute("aria-pressed", on ? "true" : "false");
      });
      root.dataset.ready = "0";
      status.hidden = false;
      status.classList.remove("error");
      status.textContent = "Loading charts…";
      load();
      schedule();
    });
  });

  load();
  schedule();
})();
