#!/usr/bin/env bash
# The Cortex-M4F figures of boards/ci.sh alone, for iterating on the hot path: builds the
# QEMU firmware (full and no-panic inference) for thumbv7em-none-eabihf, runs both under
# QEMU icount (mps2-an386), and prints the inference flash, the instructions per EM step,
# per Brownian increment, per drift + diffusion and per training iteration, computed as
# ci.sh computes them. It does not compare records with the host: ci.sh does that.
#
# Then it compares what it measured with the M4F figures quoted in boards/README.md (the
# "Numbers" table's Cortex-M4F row, the firmware table's M4F inference row and the M4F
# column of the instructions-per-step table: flash, static RAM, peak stack, RAM + stack,
# instructions per EM step, per Brownian increment, per drift + diffusion, per training
# iteration) and fails on the first mismatch: sizes and instruction counts exactly (QEMU's
# -icount makes them deterministic), the training iteration at the precision quoted (millions
# to two decimals). With M4_CHECK=0 it only prints.
#
#   bash boards/measure-m4.sh
#   M4_ACTIVATIONS=fast bash boards/measure-m4.sh
#
# The firmware's seed model has the quick activations (QuickTanh/QuickSigmoid,
# boards/app/model/seed-quick.tsw). With M4_ACTIVATIONS=fast it measures the seed model the
# firmware had before, FastTanh/FastSigmoid with its weights file boards/app/model/seed.tsw,
# for comparison: it copies the repository's files to a temporary directory, changes the
# firmware's seed model types and weights file there and measures that copy (its own target
# directory, boards/target/m4-fast unless BOARDS_TARGET_DIR says otherwise); it only prints.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "${M4_ACTIVATIONS:-quick}" = fast ] && [ -z "${M4_FAST_COPY:-}" ]; then
    copy="$(mktemp -d)"
    trap 'rm -rf "$copy"' EXIT
    (cd "$here/.." && git ls-files -co --exclude-standard | grep -v -e '^target/' -e '^boards/target/' |
        tar -cf - -T -) | tar -xf - -C "$copy"
    sed -i 's/QuickSigmoid, QuickTanh}/FastSigmoid as QuickSigmoid, FastTanh as QuickTanh}/; s/seed-quick\.tsw/seed.tsw/' \
        "$copy/boards/app/src/seed.rs"
    grep -q 'FastTanh as QuickTanh' "$copy/boards/app/src/seed.rs" && grep -q '"../model/seed.tsw"' \
        "$copy/boards/app/src/seed.rs" || { echo "seed.rs not changed" >&2; exit 1; }
    M4_FAST_COPY=1 M4_CHECK=0 BOARDS_TARGET_DIR="${BOARDS_TARGET_DIR:-$here/target/m4-fast}" \
        bash "$copy/boards/measure-m4.sh"
    exit
fi
boards_target="${BOARDS_TARGET_DIR:-$here/target}"
out="$boards_target/m4"
triple=thumbv7em-none-eabihf
mkdir -p "$out"
sysroot="$(cd "$here" && rustc --print sysroot)"
llvm_size="$(ls "$sysroot"/lib/rustlib/*/bin/llvm-size | head -n 1)"

for variant in full no-panic; do
    features=()
    [ "$variant" = no-panic ] && features=(--features no-panic)
    (cd "$here/qemu" && CARGO_TARGET_DIR="$boards_target" cargo build --release --quiet \
        --target "$triple" "${features[@]}")
    cp "$boards_target/$triple/release/qemu" "$out/$variant.elf"
    timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none \
        -serial none -icount shift=0,align=off,sleep=off \
        -semihosting-config enable=on,target=native,arg=firmware -kernel "$out/$variant.elf" \
        >"$out/$variant.txt"
    grep -q '^DONE$' "$out/$variant.txt" || { cat "$out/$variant.txt"; exit 1; }
done

flash=$("$llvm_size" -A "$out/no-panic.elf" | awk '
    { s[$1] = $2 } END { print s[".vector_table"] + s[".text"] + s[".rodata"] + s[".data"] }')
ram=$("$llvm_size" -A "$out/no-panic.elf" | awk '
    $1 == ".data" || $1 == ".bss" || $1 == ".uninit" { r += $2 } END { print r + 0 }')
stack=$(awk '$1 == "STACK" && $2 > m { m = $2 } END { print m + 0 }' "$out/no-panic.txt")
per_item() { awk -v what="$2" '$1 == "COST" && $2 == what { n += $3; t += $4 } END { if (n) printf "%.0f", t / n; else printf "-" }' "$1"; }
echo "inference flash      $flash B (budget 16384)"
echo "inference RAM+stack  $ram + $stack = $((ram + stack)) B (budget 4096)"
step=$(per_item "$out/full.txt" em_step)
noise=$(per_item "$out/full.txt" noise_increment)
echo "EM step              $step"
echo "noise increment      $noise (budget 150)"
echo "EM step - increment  $((step - noise)) (drift + diffusion + update; budget 1210)"
echo "drift + diffusion    $(per_item "$out/full.txt" drift_diffusion)"
echo "training iteration   $(per_item "$out/full.txt" train_iteration)"
grep -E '^(FORECAST|TRAIN) ' "$out/full.txt" >"$out/records.txt"
echo "records (FORECAST, TRAIN) in $out/records.txt"

[ "${M4_CHECK:-1}" != 0 ] || exit 0
readme="$here/README.md"
# field <row prefix> <column>: the cell of the README table row that starts with the prefix
# (columns counted from 1 after the leading `|`), spaces removed (`13 456` -> `13456`).
field() {
    awk -F'|' -v key="$1" -v col="$(($2 + 1))" '
        index($0, key) == 1 { v = $col; gsub(/ /, "", v); print v; found = 1; exit }
        END { if (!found) exit 1 }' "$readme" ||
        { echo "boards/README.md: no row starting with '$1'" >&2; exit 1; }
}
# check <what> <quoted> <measured>: fail on a mismatch.
check() {
    if [ "$2" != "$3" ]; then
        echo "boards/README.md is stale: $1 quoted $2, measured $3 (bash boards/measure-m4.sh)" >&2
        exit 1
    fi
}
millions() { awk -v n="$1" 'BEGIN { printf "%.2fmillion", n / 1e6 }'; }
train=$(per_item "$out/full.txt" train_iteration)
drift=$(per_item "$out/full.txt" drift_diffusion)
numbers='| Cortex-M4F (`mps2-an386`) |'
check "inference flash (Numbers table)" "$(field "$numbers" 2)" "$flash"
check "inference RAM + stack (Numbers table)" "$(field "$numbers" 3)" "$ram+$stack=$((ram + stack))"
check "instructions per EM step (Numbers table)" "$(field "$numbers" 4)" "$step"
check "instructions per training iteration (Numbers table)" "$(field "$numbers" 5)" "$(millions "$train")"
firmware='| M4F inference (no-panic'
check "M4F inference flash (firmware table)" "$(field "$firmware" 2)" "$flash"
check "M4F inference static RAM (firmware table)" "$(field "$firmware" 3)" "$ram"
check "M4F inference peak stack (firmware table)" "$(field "$firmware" 4)" "$stack"
check "M4F inference RAM + stack (firmware table)" "$(field "$firmware" 5)" "$((ram + stack))"
check "EM step (instructions table)" "$(field '| one EM step inside the ensemble' 3)" "$step"
check "Brownian increment (instructions table)" "$(field '| one Brownian increment' 3)" "$noise"
check "drift + diffusion (instructions table)" "$(field '| one drift + diffusion evaluation' 3)" "$drift"
check "training iteration (instructions table)" "$(field '| one training iteration' 3)" "$(millions "$train")"
echo "boards/README.md: its M4F figures (12) are the measured ones"
