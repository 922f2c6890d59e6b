#!/usr/bin/env bash
# Builds static/vendor/plotly/plotly-partial.min.js, the plotly.js the studio's pages
# load: plotly.js's core (scatter) plus the trace types listed in scripts/plotly/entry.js,
# bundled and minified with esbuild. Versions are pinned in scripts/plotly/package.json
# and package-lock.json (plotly.js is the version the `plotly` Python package bundles).
#
#   scripts/build_plotly.sh          # rebuild the committed bundle (needs node + npm)
#   scripts/build_plotly.sh --check  # build to a temporary file; fail if it differs
#
# The packages are installed into a temporary folder (npm ci), not into the tree.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/static/vendor/plotly/plotly-partial.min.js"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$root"/scripts/plotly/{package.json,package-lock.json,entry.js,build.mjs} "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)

if [[ "${1:-}" == "--check" ]]; then
  (cd "$work" && node build.mjs "$work/plotly-partial.min.js")
  if cmp -s "$work/plotly-partial.min.js" "$out"; then
    echo "$out is up to date"
  else
    echo "$out differs from a fresh build: run scripts/build_plotly.sh" >&2
    exit 1
  fi
else
  mkdir -p "$(dirname "$out")"
  (cd "$work" && node build.mjs "$out")
  echo "wrote $out ($(wc -c <"$out") bytes)"
fi
