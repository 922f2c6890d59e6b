// A web service's Drift tab: the drift magnitude of each window against the threshold,
// and one small chart per feature over time, from the JSON the page embeds
// (<script id="drift-chart-data">: windows, magnitude, drifted, rows, threshold,
// features: [{name, kind, statistic, values, pvalues}]). Drifted windows are red.
// #drift-magnitude-chart gets data-ready="1" once everything is drawn.
(function () {
  "use strict";

  const source = document.getElementById("drift-chart-data");
  const main = document.getElementById("drift-magnitude-chart");
  if (!source || !main) return;
  const data = JSON.parse(source.textContent);
  const FONT = 'system-ui, -apple-system, "Segoe UI", "DejaVu Sans", Roboto, sans-serif';
  const OK = "#2563eb";
  const BAD = "#dc2626";
  const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };

  function layout(height, yTitle, extra) {
    return Object.assign({
      margin: { l: 48, r: 12, t: 8, b: 34 },
      height,
      font: { family: FONT, size: 11.5, color: "#1b1f24" },
      paper_bgcolor: "#fff",
      plot_bgcolor: "#fff",
      showlegend: false,
      hovermode: "x unified",
      xaxis: { type: "date", gridcolor: "#eef1f5", linecolor: "#e1e4e8" },
      yaxis: { title: { text: yTitle, standoff: 4 }, gridcolor: "#eef1f5", rangemode: "tozero" },
    }, extra || {});
  }

  function thresholdLine(value) {
    return {
      type: "line", xref: "paper", x0: 0, x1: 1, y0: value, y1: value,
      line: { color: BAD, width: 1, dash: "dash" },
    };
  }

  function draw() {
    const colors = data.drifted.map((d) => (d ? BAD : OK));
    Plotly.newPlot(main, [{
      type: "scatter", mode: "lines+markers", x: data.windows, y: data.magnitude,
      line: { color: OK, width: 1.8 }, marker: { color: colors, size: 7 },
      customdata: data.rows, hovertemplate: "%{y:.3f} (%{customdata} rows)<extra>magnitude</extra>",
    }], layout(260, "magnitude", { shapes: [thresholdLine(data.threshold)] }), CONFIG);

    const grid = document.getElementById("drift-feature-charts");
    if (grid) {
      data.features.forEach((feature, index) => {
        const box = document.createElement("figure");
        box.className = "chart-box";
        const caption = document.createElement("figcaption");
        caption.textContent = `${feature.name} · ${feature.kind === "categorical" ? "Jensen–Shannon" : "normed Wasserstein"}`;
        const chart = document.createElement("div");
        chart.className = "chart";
        chart.id = `drift-feature-${index}`;
        box.append(caption, chart);
        grid.append(box);
        const over = feature.values.map((v) => (v !== null && v >= data.threshold ? BAD : OK));
        Plotly.newPlot(chart, [{
          type: "scatter", mode: "lines+markers", x: data.windows, y: feature.values,
          line: { color: "#64748b", width: 1.4 }, marker: { color: over, size: 6 },
          customdata: feature.pvalues,
          hovertemplate: `%{y:.3f} (p %{customdata:.2g})<extra>${feature.statistic}</extra>`,
        }], layout(170, feature.statistic, { shapes: [thresholdLine(data.threshold)] }), CONFIG);
      });
    }
    main.dataset.ready = "1";
  }

  function start() {
    if (typeof Plotly === "undefined") {
      main.textContent = "The charts could not load (plotly.js is missing).";
      return;
    }
    draw();
  }
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
}());
