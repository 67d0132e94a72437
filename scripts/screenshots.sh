#!/usr/bin/env bash
# Photograph the window for the README: docs/screenshots/{main-window,llm-pane,history}.png.
# Uses the active model of the data directory ($CASEWISE_HOME or the platform's) and the LLM
# backend of the settings; the sample cases go into a scratch case history, not yours.
# Runs under Xvfb when it is installed (real fonts and window decorations), else offscreen.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${1:-docs/screenshots}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if command -v xvfb-run >/dev/null 2>&1; then
  exec xvfb-run -a -s "-screen 0 1600x1000x24" "$PY" main.py --screenshot "$OUT"
fi
QT_QPA_PLATFORM=offscreen exec "$PY" main.py --screenshot "$OUT"
