// The compare page: run colours, latest values as bars, a scatter of any two params or
// metrics, parallel coordinates from params to a metric, and the diff table's "Hide equal
// rows". The data is embedded in the page (#compare-data: latest values and params, never
// histories); the line charts are static/js/charts.js, whose palette colours every run here.
(function () {
  "use strict";

  const source = document.getElementById("compare-data");
  if (!source) return;
  const data = JSON.parse(source.textContent);
  const charts = window.MetricCharts;
  const colorFor = charts ? charts.colorFor : () => "#2563eb";
  const format = charts ? charts.formatValue : String;
  const FONT = charts ? charts.FONT : "system-ui, sans-serif";
  const runs = data.runs;
  const colors = runs.map((_, index) => colorFor(index));
  const MAX_AXES = 12;
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  for (const swatch of document.querySelectorAll("[data-run-index]")) {
    swatch.style.background = colorFor(parseInt(swatch.dataset.runIndex, 10));
  }

  function layout(extra) {
    return {
      height: 340,
      margin: { l: 60, r: 20, t: 10, b: 10 },
      font: { family: FONT, size: 12, color: "#1b1f24" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      hoverlabel: { font: { family: FONT, size: 12 } },
      ...extra,
    };
  }

  function axis(title, extra) {
    return { title: { text: title, standoff: 8 }, automargin: true, gridcolor: "#eef1f5", zeroline: false, ...extra };
  }

  function message(plot, text) {
    if (typeof Plotly !== "undefined") Plotly.purge(plot);
    const box = document.createElement("div");
    box.className = "empty";
    box.textContent = text;
    plot.replaceChildren(box);
    plot.dataset.drawn = "";
  }

  function draw(plot, traces, plotLayout) {
    if (plot.dataset.drawn !== "1") plot.replaceChildren();
    plot.dataset.drawn = "1";
    return Plotly.react(plot, traces, plotLayout, CONFIG);
  }

  function names(indexes) {
    const shown = indexes.slice(0, 8).map((i) => runs[i].label).join(", ");
    return indexes.length > 8 ? `${shown} and ${indexes.length - 8} more` : shown;
  }

  // A param or metric as plot values: {title, kind: "number" | "category", values}.
  function column(id) {
    const [kind, ...rest] = id.split(":");
    const key = rest.join(":");
    if (kind === "metric") return { title: key, kind: "number", values: data.metrics[key] };
    const param = data.params[key];
    return { title: key, kind: param.kind, values: param.values };
  }

  function varies(values) {
    return new Set(values.map((v) => (v === null ? "\u0000" : String(v)))).size > 1;
  }

  // --- Latest values ------------------------------------------------------------------

  const barSelect = document.getElementById("bar-metric");
  const barPlot = document.getElementById("bar-plot");
  const barNote = document.getElementById("bar-note");

  function drawBars() {
    const key = barSelect.value;
    const values = data.metrics[key] || [];
    const have = runs.map((_, i) => i).filter((i) => values[i] !== null);
    const lacking = runs.map((_, i) => i).filter((i) => values[i] === null);
    barNote.textContent = lacking.length ? `No finite latest value of ${key} for ${names(lacking)}.` : "";
    if (!have.length) {
      message(barPlot, `None of these runs has a finite latest value of “${key}”.`);
      return;
    }
    const labelled = have.length <= 20;
    const named = have.length <= 30; // more names than fit: hover tells them
    draw(barPlot, [{
      type: "bar",
      x: have.map((i) => runs[i].label),
      y: have.map((i) => values[i]),
      marker: { color: have.map((i) => colors[i]) },
      text: labelled ? have.map((i) => format(values[i])) : undefined,
      textposition: labelled ? "outside" : undefined,
      cliponaxis: false,
      customdata: have.map((i) => format(values[i])),
      hovertemplate: "<b>%{x}</b><br>%{yaxis.title.text}: %{customdata}<extra></extra>",
    }], layout({
      xaxis: axis(named ? "Run" : `Run (${have.length}; hover for names)`, {
        type: "category",
        tickangle: have.length > 6 ? -30 : 0,
        showticklabels: named,
      }),
      yaxis: axis(key, { rangemode: "tozero" }),
      showlegend: false,
    }));
  }

  // --- Scatter ------------------------------------------------------------------------

  const scatterX = document.getElementById("scatter-x");
  const scatterY = document.getElementById("scatter-y");
  const scatterPlot = document.getElementById("scatter-plot");
  const scatterNote = document.getElementById("scatter-note");

  function fillScatterOptions() {
    const paramKeys = Object.keys(data.params);
    const metricKeys = Object.keys(data.metrics);
    for (const select of [scatterX, scatterY]) {
      for (const [label, kind, keys] of [["Params", "param", paramKeys], ["Metrics", "metric", metricKeys]]) {
        if (!keys.length) continue;
        const group = document.createElement("optgroup");
        group.label = label;
        for (const key of keys) {
          const option = document.createElement("option");
          option.value = `${kind}:${key}`;
          option.textContent = key;
          group.append(option);
        }
        select.append(group);
      }
    }
    // Start with a numeric param that varies against the first metric, when there are such.
    const numeric = paramKeys.filter((k) => data.params[k].kind === "number" && varies(data.params[k].values));
    const anyVarying = paramKeys.filter((k) => varies(data.params[k].values));
    const xKey = numeric[0] || anyVarying[0] || paramKeys[0];
    if (xKey !== undefined) scatterX.value = `param:${xKey}`;
    else if (metricKeys.length > 1) scatterX.value = `metric:${metricKeys[1]}`;
    if (metricKeys.length) scatterY.value = `metric:${metricKeys[0]}`;
    else if (paramKeys.length > 1) scatterY.value = `param:${paramKeys[1]}`;
  }

  function drawScatter() {
    const x = column(scatterX.value);
    const y = column(scatterY.value);
    const have = runs.map((_, i) => i).filter((i) => x.values[i] !== null && y.values[i] !== null);
    const lacking = runs.map((_, i) => i).filter((i) => !have.includes(i));
    scatterNote.textContent = lacking.length ? `Not shown, lacking a value of ${x.title} or ${y.title}: ${names(lacking)}.` : "";
    if (!have.length) {
      message(scatterPlot, `No run has values for both “${x.title}” and “${y.title}”.`);
      return;
    }
    const labelled = have.length <= 10;
    draw(scatterPlot, [{
      type: "scatter",
      mode: labelled ? "markers+text" : "markers",
      x: have.map((i) => x.values[i]),
      y: have.map((i) => y.values[i]),
      text: have.map((i) => runs[i].label),
      textposition: "top center",
      textfont: { size: 11, color: "#5b6472" },
      cliponaxis: false,
      marker: { color: have.map((i) => colors[i]), size: 12, line: { color: "#fff", width: 1.5 } },
      hovertemplate: "<b>%{text}</b><br>%{xaxis.title.text}: %{x}<br>%{yaxis.title.text}: %{y}<extra></extra>",
    }], layout({
      xaxis: axis(x.title, { type: x.kind === "number" ? "linear" : "category" }),
      yaxis: axis(y.title, { type: y.kind === "number" ? "linear" : "category" }),
      showlegend: false,
      hovermode: "closest",
    }));
  }

  // --- Parallel coordinates -----------------------------------------------------------

  const parSelect = document.getElementById("parcoords-metric");
  const parPlot = document.getElementById("parcoords-plot");
  const parNote = document.getElementById("parcoords-note");

  function dimension(key, param, rows) {
    if (param.kind === "number") return { label: key, values: rows.map((i) => param.values[i]) };
    const text = rows.map((i) => (param.values[i] === null ? "(none)" : param.values[i]));
    const categories = [...new Set(text)].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const position = new Map(categories.map((c, i) => [c, i]));
    return {
      label: key,
      values: text.map((t) => position.get(t)),
      tickvals: categories.map((_, i) => i),
      ticktext: categories.map((c) => (c.length > 18 ? `${c.slice(0, 17)}…` : c)),
      range: [-0.25, Math.max(categories.length - 0.75, 0.25)],
    };
  }

  function drawParcoords() {
    const key = parSelect.value;
    const metric = data.metrics[key] || [];
    const rows = runs.map((_, i) => i).filter((i) => metric[i] !== null);
    const notes = [];
    const lacking = runs.map((_, i) => i).filter((i) => metric[i] === null);
    if (lacking.length) notes.push(`Not shown, no finite ${key}: ${names(lacking)}.`);
    if (rows.length < 2) {
      parNote.textContent = notes.join(" ");
      message(parPlot, `Parallel coordinates need at least two runs with a value of “${key}”.`);
      return;
    }
    const keys = Object.keys(data.params);
    const varying = keys.filter((k) => varies(rows.map((i) => data.params[k].values[i])));
    let chosen = varying.length ? varying : keys;
    const constant = keys.filter((k) => !varying.includes(k));
    if (varying.length && constant.length) notes.push(`${constant.length} param${constant.length > 1 ? "s" : ""} with the same value in every run not shown.`);
    if (chosen.length > MAX_AXES) {
      notes.push(`Showing ${MAX_AXES} of ${chosen.length} params.`);
      chosen = chosen.slice(0, MAX_AXES);
    }
    parNote.textContent = notes.join(" ");
    const dimensions = chosen.map((k) => dimension(k, data.params[k], rows));
    dimensions.push({ label: key, values: rows.map((i) => metric[i]) });
    draw(parPlot, [{
      type: "parcoords",
      line: {
        color: rows.map((i) => metric[i]),
        colorscale: "Viridis",
        showscale: true,
        colorbar: { title: { text: key, side: "right" }, thickness: 12, len: 0.9 },
      },
      labelangle: chosen.length > 6 ? -12 : 0,
      labelfont: { size: 12, color: "#1b1f24" },
      tickfont: { size: 11 },
      dimensions,
    }], layout({ height: 420, margin: { l: 70, r: 70, t: 56, b: 24 } }));
  }

  // --- Diff table ---------------------------------------------------------------------

  const table = document.getElementById("diff-table");
  const hideEqual = document.getElementById("hide-equal");
  if (table && hideEqual) {
    // A section whose rows are all equal disappears with them.
    let header = null;
    let allSame = true;
    const close = () => header && header.classList.toggle("all-same", allSame);
    for (const row of table.tBodies[0].rows) {
      if (row.classList.contains("cmp-section")) {
        close();
        header = row;
        allSame = true;
      } else if (row.classList.contains("differs")) {
        allSame = false;
      }
    }
    close();
    hideEqual.addEventListener("change", () => table.classList.toggle("hide-equal", hideEqual.checked));
    table.classList.toggle("hide-equal", hideEqual.checked);
  }

  // The small plots wait for the line charts in view, then draw as they scroll into view:
  // the charts are what the page is opened for.
  function lazily(plot, drawPlot) {
    if (!("IntersectionObserver" in window)) return drawPlot();
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) {
        observer.disconnect();
        drawPlot();
      }
    }, { rootMargin: "200px 0px" });
    observer.observe(plot);
  }

  function afterCharts(start) {
    const root = document.querySelector("[data-metric-charts]");
    if (!root || root.dataset.ready === "1") start();
    else root.addEventListener("metric-charts:ready", start, { once: true });
  }

  if (scatterX && scatterY) fillScatterOptions();
  const plotlyReady = charts ? charts.plotlyReady : Promise.resolve();
  plotlyReady.then(() => afterCharts(() => {
    if (barSelect) {
      barSelect.addEventListener("change", drawBars);
      lazily(barPlot, drawBars);
    }
    if (scatterX && scatterY) {
      scatterX.addEventListener("change", drawScatter);
      scatterY.addEventListener("change", drawScatter);
      lazily(scatterPlot, drawScatter);
    }
    if (parSelect) {
      parSelect.addEventListener("change", drawParcoords);
      lazily(parPlot, drawParcoords);
    }
  }), () => {
    for (const plot of [barPlot, scatterPlot, parPlot]) {
      if (plot) message(plot, "Plots could not load: plotly.js is missing.");
    }
  });
})();
