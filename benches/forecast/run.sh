#!/usr/bin/env bash
# Held-out one-step-ahead forecasts of public series: fit_csv with its defaults (only
# `--holdout N`) against persistence, AR(1) and an auto-ARIMA (statsmodels), on the same
# rows; prints one markdown table (see benches/forecast/README.md).
#
#   bash benches/forecast/run.sh                      # every series
#   bash benches/forecast/run.sh nile lynx            # some
#   FIT_CSV=/path/to/target/release/examples/fit_csv bash benches/forecast/run.sh
#
# Environment: FIT_CSV (the fit_csv command to measure; default: this worktree's, built
# with `cargo build --release --features examples --example fit_csv`), FORECAST_VENV (default
# target/forecast-venv), FORECAST_OUT (where the exported series and fit_csv's outputs go,
# default target/forecast-bench), FORECAST_ARIMA_CACHE (a directory keeping each series'
# auto-ARIMA result between runs; unset: none). Everything runs under `nice`: the machine
# may be shared.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=${FORECAST_VENV:-target/forecast-venv}
OUT=${FORECAST_OUT:-target/forecast-bench}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r benches/forecast/requirements.txt

if [ -z "${FIT_CSV:-}" ]; then
  nice cargo build --release --features examples --example fit_csv >/dev/null 2>&1
  FIT_CSV="${CARGO_TARGET_DIR:-target}/release/examples/fit_csv"
fi
echo "# fit_csv: $FIT_CSV ($("$FIT_CSV" --version 2>/dev/null || echo '?')); load average $(cut -d' ' -f1-3 /proc/loadavg)"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
nice "$VENV/bin/python" benches/forecast/bench.py "$FIT_CSV" "$OUT" "$@"
