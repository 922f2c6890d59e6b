// Bundles entry.js into one minified script that sets `window.Plotly`, as plotly.js's
// own dist bundles do (their esbuild settings: iife, global Plotly, es2016, regl aliased
// to @plotly/regl, `global` as window). Usage: node build.mjs <output file>.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import * as esbuild from "esbuild";

const require = createRequire(import.meta.url);
const out = process.argv[2];
if (!out) throw new Error("usage: node build.mjs <output file>");
const version = JSON.parse(readFileSync(require.resolve("plotly.js/package.json"))).version;

await esbuild.build({
  entryPoints: ["entry.js"],
  outfile: out,
  bundle: true,
  minify: true,
  format: "iife",
  globalName: "Plotly",
  target: "es2016",
  platform: "browser",
  alias: { regl: "@plotly/regl" },
  define: { global: "window", "define.amd": "false" },
  // plotly's registry requires maplibre's stylesheet for map traces, which this bundle
  // leaves out: nothing to inline.
  loader: { ".css": "empty" },
  legalComments: "eof",
  banner: {
    js:
      `/*! plotly.js v${version} (partial: scatter, bar, parcoords) | (c) Plotly, Inc. | MIT license | ` +
      "built by scripts/build_plotly.sh from scripts/plotly/ */",
  },
  logLevel: "warning",
});
