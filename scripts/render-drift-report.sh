#!/usr/bin/env bash
# Renders a drift report (`keel drift check --report drift.html`) in headless Chromium to a PNG, to see
# it as on-call will, or to check it renders on a machine without a display.
#   scripts/render-drift-report.sh drift.html [drift.png]
# CHROMIUM names the browser binary (default: chromium, chromium-browser or google-chrome on PATH).
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 REPORT.html [OUT.png]" >&2
  exit 2
fi
report=$(realpath "$1")
out=$(realpath -m "${2:-${1%.html}.png}")
[ -f "$report" ] || { echo "$0: no report at $report (write one with: npx keel drift check --report $1)" >&2; exit 1; }
browser=${CHROMIUM:-}
if [ -z "$browser" ]; then
  for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null; then browser=$candidate; break; fi
  done
fi
[ -n "$browser" ] || { echo "$0: no Chromium found: install chromium or set CHROMIUM" >&2; exit 1; }
# A throwaway profile; no network (the report is self-contained), no GPU, no sandbox (containers, CI).
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2000 \
  --screenshot="$out" "file://$report" >/dev/null 2>&1
[ -s "$out" ] || { echo "$0: $browser wrote no screenshot" >&2; exit 1; }
echo "$out"
