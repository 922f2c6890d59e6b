// The plotly.js the studio's pages load (static/vendor/plotly/plotly-partial.min.js):
// plotly's core (the scatter trace, hover, legend, modebar, axes) and the other trace
// types the pages draw. A page drawing a new trace type needs it registered here and a
// rebuild (scripts/build_plotly.sh), or plotly draws nothing for that trace.
//   scatter   — metric history charts (static/js/charts.js), compare scatter (compare.js)
//   bar       — compare page's bar chart of a metric (compare.js)
//   parcoords — compare page's parallel coordinates (compare.js)
"use strict";

var Plotly = require("plotly.js/lib/core");

Plotly.register([require("plotly.js/lib/bar"), require("plotly.js/lib/parcoords")]);

module.exports = Plotly;
