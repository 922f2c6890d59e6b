// Metric charts: one plotly line chart per metric key, each run a trace in its own colour.
//
//   <div class="metric-charts" data-metric-charts data-url="<chart-metric URL>"
//        data-runs='[{"id": "<run id>", "name": "<run name>"}, ...]' data-keys='["loss", ...]'
//        [data-points="2000"]></div>
//
// Needs plotly.js loaded first. Charts load when they scroll into view, a few requests at
// a time. In step mode, zooming asks the server for the visible step range, so a long
// history shows its raw points once zoomed in; a double-click goes back to the overview.
// The container gets data-ready="1" once the charts in view at start are drawn.
// window.MetricCharts exposes the run palette for the other plots of a page.
(function () {
  "use strict";

  const PALETTE = [
    "#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2",
    "#db2777", "#854d0e", "#65a30d", "#4f46e5", "#ca8a04", "#475569",
  ];
  const MAX_IN_FLIGHT = 4;
  const FILTER_FROM = 7; // keys: show the name filter from this many metrics on
  const LEGEND_ROWS_FROM = 9; // runs: from here the legend moves to the side
  const FONT = 'system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif';

  // The colour of the run at this position of the page's run list: the same in every chart.
  function colorFor(index) {
    if (index < PALETTE.length) return PALETTE[index];
    const hue = Math.round((index * 137.508) % 360); // golden angle: far from the neighbours
    return `hsl(${hue}, 62%, 42%)`;
  }

  function formatValue(value) {
    if (value === null || value === undefined) return "NaN/∞ (gap)";
    if (Number.isInteger(value) && Math.abs(value) < 1e15) return String(value);
    const abs = Math.abs(value);
    if (abs !== 0 && (abs < 1e-4 || abs >= 1e9)) return value.toExponential(4);
    return String(Number(value.toPrecision(6)));
  }

  function pad(n, width = 2) {
    return String(n).padStart(width, "0");
  }

  // Local wall time, as plotly reads date strings without a zone (no UTC shift).
  function localTime(ms) {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function formatDuration(seconds) {
    if (seconds < 60) return `${Number(seconds.toFixed(3))} s`;
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h} h ${pad(m)} min` : `${m} min ${pad(s % 60)} s`;
  }

  // Exponential moving average with TensorBoard's debiasing, so the start is not pulled
  // towards zero. Gaps (NaN, ±inf) stay gaps and do not reset the average.
  function smooth(values, weight) {
    if (!weight) return values;
    const out = new Array(values.length);
    let last = 0;
    let count = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || !Number.isFinite(v)) {
        out[i] = v;
        continue;
      }
      last = last * weight + (1 - weight) * v;
      count += 1;
      out[i] = last / (1 - Math.pow(weight, count));
    }
    return out;
  }

  function relativeUnit(maxSeconds) {
    if (maxSeconds >= 7200) return { div: 3600, label: "h" };
    if (maxSeconds >= 120) return { div: 60, label: "min" };
    return { div: 1, label: "s" };
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function parseJSON(raw, fallback) {
    try {
      return JSON.parse(raw || "");
    } catch (error) {
      return fallback;
    }
  }

  // charts.js may run before plotly.js (both deferred; fetching first overlaps the data
  // requests with plotly's start-up): draw once plotly is there.
  const plotlyReady = new Promise((resolve, reject) => {
    const check = () => (typeof Plotly !== "undefined" ? resolve() : reject(new Error("plotly.js did not load.")));
    if (typeof Plotly !== "undefined" || document.readyState === "complete") check();
    else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", check);
    else window.addEventListener("load", check);
  });
  plotlyReady.catch(() => {}); // each chart reports it; no unhandled rejection besides

  class MetricCharts {
    constructor(root) {
      this.root = root;
      this.url = root.dataset.url;
      this.runs = parseJSON(root.dataset.runs, []);
      this.keys = parseJSON(root.dataset.keys, []);
      this.points = parseInt(root.dataset.points || "2000", 10);
      this.runIndex = new Map(this.runs.map((run, index) => [run.id, index]));
      this.mode = "step";
      this.smoothing = 0;
      this.logY = false;
      this.queue = [];
      this.inFlight = 0;
      this.charts = [];
      this.waiting = null; // charts in view at start, until drawn
      this.build();
    }

    build() {
      this.root.classList.add("mc");
      if (!this.keys.length) {
        const empty = el("div", { class: "empty" });
        const whose = this.runs.length > 1 ? "these runs" : "this run";
        empty.append(el("h2", {}, "No metrics"), el("p", {}, `No metrics have been logged for ${whose}.`));
        this.root.append(empty);
        this.ready();
        return;
      }
      this.root.append(this.toolbar());
      this.grid = el("div", { class: "mc-grid" });
      for (const key of this.keys) this.charts.push(this.card(key));
      this.root.append(this.grid);
      if (this.noMatch) {
        this.root.append(this.noMatch);
        this.applyFilter();
      }
      this.observe();
    }

    toolbar() {
      const bar = el("div", { class: "mc-toolbar", role: "toolbar", "aria-label": "Chart options" });
      const xLabel = el("label", {}, "X axis ");
      const x = el("select", { "data-mc": "x" });
      for (const [value, label] of [["step", "Step"], ["wall", "Wall time"], ["relative", "Relative time"]]) {
        x.append(el("option", { value }, label));
      }
      x.addEventListener("change", () => {
        this.mode = x.value;
        for (const chart of this.charts) chart.detail = null;
        this.redrawAll();
      });
      xLabel.append(x);

      const sLabel = el("label", { class: "mc-smoothing" }, "Smoothing ");
      const slider = el("input", { type: "range", min: "0", max: "0.99", step: "0.01", value: "0", "data-mc": "smoothing", "aria-label": "Smoothing" });
      const shown = el("output", {}, "0");
      let pending = null;
      slider.addEventListener("input", () => {
        this.smoothing = parseFloat(slider.value);
        shown.textContent = this.smoothing.toFixed(2);
        // Redraw at most once a frame while the slider moves.
        if (pending === null) {
          pending = requestAnimationFrame(() => {
            pending = null;
            this.redrawAll();
          });
        }
      });
      sLabel.append(slider, shown);

      const logLabel = el("label", { class: "mc-check" });
      const log = el("input", { type: "checkbox", "data-mc": "log" });
      log.addEventListener("change", () => {
        this.logY = log.checked;
        this.redrawAll();
      });
      logLabel.append(log, document.createTextNode(" Log scale"));

      bar.append(xLabel, sLabel, logLabel);
      if (this.keys.length >= FILTER_FROM) {
        const filter = el("input", { type: "search", placeholder: "Filter metrics", "aria-label": "Filter metrics", "data-mc": "filter" });
        const count = el("span", { class: "mc-count" });
        this.applyFilter = () => {
          const needle = filter.value.trim().toLowerCase();
          let shownCount = 0;
          for (const chart of this.charts) {
            const match = !needle || chart.key.toLowerCase().includes(needle);
            chart.card.hidden = !match;
            shownCount += match ? 1 : 0;
          }
          count.textContent = needle ? `${shownCount} of ${this.charts.length} metrics` : `${this.charts.length} metrics`;
          this.noMatch.hidden = shownCount > 0;
        };
        filter.addEventListener("input", this.applyFilter);
        this.noMatch = el("p", { class: "empty mc-nomatch" }, "No metric matches the filter.");
        this.noMatch.hidden = true;
        bar.append(filter, count);
      }
      bar.append(el("span", { class: "mc-hint" }, "Drag to zoom · double-click to reset"));
      return bar;
    }

    card(key) {
      const card = el("section", { class: "mc-card", "data-key": key, "data-state": "idle" });
      const head = el("header");
      head.append(el("h3", { title: key }, key));
      const note = el("span", { class: "mc-note" });
      head.append(note);
      const plot = el("div", { class: "mc-plot" });
      plot.append(el("div", { class: "mc-loading" }, "Loading…"));
      const foot = el("p", { class: "mc-foot" });
      card.append(head, plot, foot);
      this.grid.append(card);
      return { key, card, plot, note, foot, data: null, detail: null, drawn: false, state: "idle" };
    }

    observe() {
      // The charts in view start loading now, not a frame later: the first requests
      // overlap with plotly's start-up. The rest load as they scroll into view.
      const margin = 200;
      const bottom = window.innerHeight + margin;
      this.waiting = new Set(this.charts.filter((chart) => {
        const box = chart.card.getBoundingClientRect();
        return box.height > 0 && box.top < bottom && box.bottom > -margin;
      }));
      if (!this.waiting.size) this.ready();
      this.waiting.forEach((chart) => this.enqueue(chart));
      const later = this.charts.filter((chart) => !this.waiting.has(chart));
      if (!("IntersectionObserver" in window)) {
        later.forEach((chart) => this.enqueue(chart));
        return;
      }
      const byCard = new Map(this.charts.map((chart) => [chart.card, chart]));
      const observer = new IntersectionObserver((entries) => {
        for (const entry of entries) {
          if (!entry.isIntersecting) continue;
          observer.unobserve(entry.target);
          this.enqueue(byCard.get(entry.target));
        }
      }, { rootMargin: `${margin}px 0px` });
      later.forEach((chart) => observer.observe(chart.card));
    }

    enqueue(chart) {
      if (chart.state !== "idle") return;
      chart.state = "queued";
      this.queue.push(chart);
      this.pump();
    }

    pump() {
      while (this.inFlight < MAX_IN_FLIGHT && this.queue.length) {
        const chart = this.queue.shift();
        this.inFlight += 1;
        this.load(chart).finally(() => {
          this.inFlight -= 1;
          this.settled(chart);
          this.pump();
        });
      }
    }

    settled(chart) {
      if (this.waiting && this.waiting.delete(chart) && this.waiting.size === 0) this.ready();
    }

    ready() {
      this.root.dataset.ready = "1";
      this.root.dispatchEvent(new CustomEvent("metric-charts:ready", { bubbles: true }));
    }

    async fetchSeries(key, range) {
      const params = new URLSearchParams({ key, runs: this.runs.map((run) => run.id).join(","), points: String(this.points) });
      if (range) {
        params.set("min_step", String(range[0]));
        params.set("max_step", String(range[1]));
      }
      let response;
      try {
        response = await fetch(`${this.url}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      } catch (error) {
        throw new Error("The server could not be reached.");
      }
      const type = response.headers.get("Content-Type") || "";
      if (!type.includes("application/json")) {
        throw new Error(response.ok ? "Your session has ended: reload the page to sign in again." : `The server answered ${response.status}.`);
      }
      const body = await response.json();
      if (!response.ok) throw new Error(body.error || `The server answered ${response.status}.`);
      return body;
    }

    async load(chart) {
      chart.state = "loading";
      chart.card.dataset.state = "loading";
      try {
        chart.data = await this.fetchSeries(chart.key, null);
        await plotlyReady;
        this.draw(chart);
      } catch (error) {
        this.fail(chart, error.message);
      }
    }

    fail(chart, message) {
      chart.state = "error";
      chart.card.dataset.state = "error";
      if (chart.drawn) Plotly.purge(chart.plot);
      chart.drawn = false;
      chart.plot.replaceChildren(el("div", { class: "mc-error", role: "alert" }, `Could not load this chart. ${message}`));
    }

    redrawAll() {
      for (const chart of this.charts) {
        if (chart.state === "drawn") this.draw(chart);
      }
    }

    series(chart) {
      return (chart.detail || chart.data).series.filter((s) => s.step.length > 0);
    }

    draw(chart) {
      const shown = this.series(chart);
      const missing = chart.data.series.filter((s) => s.step.length === 0).map((s) => s.name || s.run_id.slice(0, 8));
      chart.note.textContent = "";
      if (!shown.length && !chart.detail) {
        chart.state = "empty";
        chart.card.dataset.state = "empty";
        if (chart.drawn) Plotly.purge(chart.plot);
        chart.drawn = false;
        chart.plot.replaceChildren(el("div", { class: "empty mc-empty" }, `No data points for “${chart.key}” in ${this.runs.length > 1 ? "these runs" : "this run"}.`));
        chart.foot.textContent = "";
        return;
      }
      const { traces, xTitle } = this.traces(shown);
      const layout = this.layout(chart, xTitle);
      if (!chart.drawn) chart.plot.replaceChildren();
      chart.suppress = true;
      Plotly.react(chart.plot, traces, layout, {
        responsive: true,
        displaylogo: false,
        modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
        toImageButtonOptions: { filename: chart.key.replace(/[^\w.-]+/g, "_") },
      }).then(() => {
        chart.suppress = false;
      });
      if (!chart.drawn) {
        chart.drawn = true;
        chart.plot.on("plotly_relayout", (event) => this.relayout(chart, event));
      }
      chart.state = "drawn";
      chart.card.dataset.state = "drawn";
      this.footnote(chart, shown, missing);
    }

    footnote(chart, shown, missing) {
      const parts = [];
      const cut = shown.filter((s) => s.downsampled);
      if (chart.detail) {
        const [a, b] = chart.zoom;
        parts.push(`Steps ${a.toLocaleString()}–${b.toLocaleString()}: ${cut.length ? "downsampled, zoom in further for raw points" : "raw points"}.`);
      } else if (cut.length) {
        const total = cut.reduce((sum, s) => sum + s.total, 0);
        const kept = cut.reduce((sum, s) => sum + s.step.length, 0);
        parts.push(`Showing ${kept.toLocaleString()} of ${total.toLocaleString()} points (first, last, min and max per step bucket). Zoom in for detail.`);
      }
      if (missing.length && this.runs.length > 1) parts.push(`Not logged by ${missing.join(", ")}.`);
      chart.foot.textContent = parts.join(" ");
    }

    traces(shown) {
      let xTitle = "Step";
      let unit = null;
      if (this.mode === "relative") {
        let max = 0;
        for (const s of shown) {
          const start = s.start_time ?? s.time[0];
          max = Math.max(max, (s.time[s.time.length - 1] - start) / 1000);
        }
        unit = relativeUnit(max);
        xTitle = `Relative time (${unit.label})`;
      } else if (this.mode === "wall") {
        xTitle = "Wall time";
      }
      const traces = [];
      const manyRuns = this.runs.length >= LEGEND_ROWS_FROM;
      for (const s of shown) {
        const index = this.runIndex.get(s.run_id) ?? 0;
        const color = colorFor(index);
        const name = s.name || s.run_id.slice(0, 8);
        const start = s.start_time ?? s.time[0];
        let x;
        if (this.mode === "wall") x = s.time.map(localTime);
        else if (this.mode === "relative") x = s.time.map((t) => (t - start) / 1000 / unit.div);
        else x = s.step;
        const custom = s.step.map((step, i) => [
          step.toLocaleString(),
          formatValue(s.value[i]),
          localTime(s.time[i]).slice(0, 19),
          formatDuration((s.time[i] - start) / 1000),
        ]);
        const smoothed = smooth(s.value, this.smoothing);
        const lineMode = s.step.length === 1 ? "markers" : s.step.length <= 30 ? "lines+markers" : "lines";
        if (this.smoothing) {
          traces.push({
            type: "scatter", mode: "lines", x, y: s.value, name, legendgroup: s.run_id, showlegend: false,
            line: { color, width: 1 }, opacity: 0.25, hoverinfo: "skip",
          });
        }
        traces.push({
          type: "scatter",
          mode: lineMode,
          x,
          y: smoothed,
          name,
          legendgroup: s.run_id,
          line: { color, width: manyRuns ? 1.4 : 1.8 },
          marker: { color, size: 5 },
          customdata: custom,
          hovertemplate:
            "<b>%{fullData.name}</b><br>step %{customdata[0]}<br>value %{customdata[1]}" +
            (this.smoothing ? "<br>smoothed %{y:.6g}" : "") +
            "<br>%{customdata[2]} (+%{customdata[3]})<extra></extra>",
        });
      }
      return { traces, xTitle };
    }

    layout(chart, xTitle) {
      const side = this.runs.length >= LEGEND_ROWS_FROM;
      return {
        height: 300,
        margin: { l: 56, r: side ? 8 : 16, t: 8, b: 8 },
        font: { family: FONT, size: 12, color: "#1b1f24" },
        paper_bgcolor: "#fff",
        plot_bgcolor: "#fff",
        hovermode: "closest",
        hoverlabel: { font: { family: FONT, size: 12 } },
        // Zoom stays put across redraws (smoothing, detail), not across x-axis modes.
        uirevision: `${this.mode}/${this.logY}`,
        xaxis: {
          title: { text: xTitle, standoff: 6 },
          type: this.mode === "wall" ? "date" : "linear",
          gridcolor: "#eef1f5",
          zeroline: false,
          automargin: true,
        },
        yaxis: {
          title: { text: chart.key, standoff: 6 },
          type: this.logY ? "log" : "linear",
          gridcolor: "#eef1f5",
          zeroline: false,
          automargin: true,
          exponentformat: "power",
        },
        showlegend: true,
        legend: side
          ? { orientation: "v", x: 1.02, xanchor: "left", y: 1, font: { size: 11 } }
          : { orientation: "h", x: 0, xanchor: "left", y: -0.22, yanchor: "top", font: { size: 11.5 } },
      };
    }

    relayout(chart, event) {
      if (chart.suppress || this.mode !== "step") return;
      if (event["xaxis.autorange"]) {
        clearTimeout(chart.timer);
        chart.zoom = null;
        chart.token = null;
        if (chart.detail) {
          chart.detail = null;
          this.draw(chart);
        }
        return;
      }
      const a = event["xaxis.range[0]"] ?? (event["xaxis.range"] || [])[0];
      const b = event["xaxis.range[1]"] ?? (event["xaxis.range"] || [])[1];
      if (a === undefined || b === undefined) return;
      // Only a downsampled overview hides points worth fetching.
      if (!chart.data.series.some((s) => s.downsampled)) return;
      const range = [Math.max(0, Math.floor(a)), Math.ceil(b)];
      clearTimeout(chart.timer);
      chart.timer = setTimeout(() => this.zoomTo(chart, range), 150);
    }

    async zoomTo(chart, range) {
      const token = {};
      chart.token = token;
      chart.card.dataset.detail = "loading";
      try {
        const detail = await this.fetchSeries(chart.key, range);
        if (chart.token !== token || this.mode !== "step") return;
        chart.zoom = range;
        chart.detail = detail;
        chart.card.dataset.detail = `${range[0]}-${range[1]}`;
        this.draw(chart);
      } catch (error) {
        if (chart.token === token) {
          chart.card.dataset.detail = "error";
          chart.foot.textContent = `Could not load detail for steps ${range[0]}–${range[1]}: ${error.message}`;
        }
      }
    }
  }

  function init(scope) {
    const root = scope || document;
    const found = root.matches && root.matches("[data-metric-charts]") ? [root] : [];
    found.push(...root.querySelectorAll("[data-metric-charts]"));
    for (const node of found) {
      if (node.metricCharts) continue;
      node.metricCharts = new MetricCharts(node);
    }
  }

  window.MetricCharts = { palette: PALETTE, colorFor, formatValue, smooth, init, FONT, plotlyReady };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init());
  else init();
  // Containers swapped in by htmx initialise themselves too.
  document.addEventListener("htmx:load", (event) => init(event.detail.elt));
})();
