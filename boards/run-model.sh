#!/usr/bin/env bash
# From a trained model to a running firmware under QEMU, in one command:
#
#   bash boards/run-model.sh MODEL [CSV] [--core m0|m4|m33]
#
# MODEL: a model file written by `fit_csv` (e.g. target/nile/fit_csv.tsm after
# `cargo run --release --features examples --example fit_csv -- examples/data/nile.csv --out target/nile`; or
# its fit_csv.weights, scaled by the fit_csv.json beside it). CSV: the readings the firmware replays
# from flash in place of a sensor (the series the model was fitted on, or its continuation;
# a time column, then one column per state component). --core: the emulated Cortex-M (QEMU
# microbit, mps2-an386 or mps2-an505; default m4, the M4F).
#
# It builds the QEMU streaming firmware with the model chosen at build time
# (TINYSDE_MODEL, TINYSDE_READINGS: boards/app/build.rs generates the model type from the
# file's own description), runs it under QEMU, prints its records decoded in decimal (each
# reading with the band it was predicted in, the forecast of the next three), computes
# the same records on the host (boards/stream-host, same code) and checks that they are
# identical bit for bit. Exit status: 0, or the firmware's (2: the model file does not
# load, 3: a forecast failed), or 1 if the records differ from the host's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
boards_target="${BOARDS_TARGET_DIR:-$here/target}"
usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 64
}
model="" csv="" core=m4
while [ $# -gt 0 ]; do
    case "$1" in
    --core) core=${2:-}; shift 2 || usage ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) if [ -z "$model" ]; then model=$1; elif [ -z "$csv" ]; then csv=$1; else usage; fi; shift ;;
    esac
done
[ -n "$model" ] || usage
[ -f "$model" ] || { echo "run-model.sh: no model file $model" >&2; exit 66; }
[ -z "$csv" ] || [ -f "$csv" ] || { echo "run-model.sh: no CSV file $csv" >&2; exit 66; }
case "$core" in
m0) triple=thumbv6m-none-eabi label="Cortex-M0 (QEMU microbit)" ;;
m4) triple=thumbv7em-none-eabihf label="Cortex-M4F (QEMU mps2-an386)" ;;
m33) triple=thumbv8m.main-none-eabihf label="Cortex-M33 (QEMU mps2-an505)" ;;
*) usage ;;
esac
command -v qemu-system-arm >/dev/null || { echo "run-model.sh: needs qemu-system-arm (apt-get install qemu-system-arm)" >&2; exit 69; }

export TINYSDE_MODEL TINYSDE_READINGS
TINYSDE_MODEL="$(realpath "$model")"
TINYSDE_READINGS="$([ -z "$csv" ] || realpath "$csv")"
export CARGO_TARGET_DIR="$boards_target"
out="$boards_target/run-model"
mkdir -p "$out"

echo "=== building the streaming firmware for the $label with $TINYSDE_MODEL" >&2
(cd "$here/qemu" && cargo build --profile stream --quiet --target "$triple" --features stream)
echo "=== running it under QEMU" >&2
status=0
(cd "$here/qemu" && cargo run --profile stream --quiet --target "$triple" --features stream) \
    >"$out/firmware.txt" || status=$?
echo "=== computing the same records on the host" >&2
(cd "$here" && cargo build --release --quiet -p tinysde-stream-host)
host="$boards_target/release/tinysde-stream-host"
"$host" --decode "$out/firmware.txt"
[ "$status" = 0 ] || { echo "run-model.sh: the firmware stopped with exit status $status" >&2; exit "$status"; }
"$host" >"$out/host.txt" || true
grep -E '^(STREAM_CONFIG|OBSERVE|PREDICT) ' "$out/firmware.txt" >"$out/firmware-records.txt" || true
if ! diff -q "$out/host.txt" "$out/firmware-records.txt" >/dev/null; then
    diff -u "$out/host.txt" "$out/firmware-records.txt" | head -n 20 >&2
    echo "run-model.sh: the firmware's records differ from the host's (above: - host, + firmware)" >&2
    exit 1
fi
n=$(grep -c '^OBSERVE ' "$out/firmware-records.txt" || true)
echo "=== $label: $n readings and $(grep -c '^PREDICT ' "$out/firmware-records.txt" || true) forecasts, identical bit for bit with the host (records in $out)"
