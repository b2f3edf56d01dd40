#!/usr/bin/env bash
# Renders a run's report.html in headless Chromium: checks that the parsed page has its
# headings and that every image is an inline PNG data URI, and takes a screenshot to look at.
#
# usage: scripts/check-report.sh RUN_DIR [SCREENSHOT.png]
#
# RUN_DIR holds a report.html written by the CLI crate's `report::write_report`. The screenshot
# defaults to RUN_DIR/report-screenshot.png. Needs a Chromium binary (`apt-get install
# chromium` on Debian); without one it says so and exits 0, so nothing depends on it. Exits 1
# when the page is missing or fails a check.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    sed -n '5p' "$0" | sed 's/^# //'
    exit 2
fi
run_dir=$(cd "$1" && pwd)
page="$run_dir/report.html"
shot="${2:-$run_dir/report-screenshot.png}"
[[ -f "$page" ]] || { echo "no report.html in $run_dir" >&2; exit 1; }

browser=""
for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null; then browser=$name; break; fi
done
if [[ -z "$browser" ]]; then
    echo "skipped: no chromium on PATH (apt-get install chromium)"
    exit 0
fi

# --no-sandbox: the browser runs as root in containers; the page is a local file of our own.
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --allow-file-access-from-files)
dom=$("$browser" "${flags[@]}" --dump-dom "file://$page" 2>/dev/null)

fail() { echo "check-report: $*" >&2; exit 1; }
grep -q '<h2>Metrics</h2>' <<<"$dom" || fail "the parsed page has no Metrics heading"
grep -q '<h2>Config</h2>' <<<"$dom" || fail "the parsed page has no Config heading"
images=$(grep -o '<img [^>]*>' <<<"$dom" || true)
n_images=$(grep -c '<img' <<<"$images" || true)
n_inline=$(grep -c 'src="data:image/png;base64,' <<<"$images" || true)
[[ "$n_images" -ge 1 ]] || fail "no images in the parsed page"
[[ "$n_images" -eq "$n_inline" ]] || fail "$n_images images but $n_inline inline PNGs"

"$browser" "${flags[@]}" --window-size=1200,2400 --screenshot="$shot" "file://$page" \
    >/dev/null 2>&1
[[ -s "$shot" ]] || fail "no screenshot written"
echo "ok: $n_images inline images; screenshot $shot"
