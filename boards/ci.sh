#!/usr/bin/env bash
# Firmware CI: builds every board in release, runs the QEMU board (the full firmware, the
# no-panic inference firmware and the bad-input scenarios) under a time limit, compares
# the forecast and training records it prints with the host's bit for bit, and prints the
# size, stack and instruction-count report. Any mismatch, fault, panic, wrong exit status
# or time-out fails.
#
#   bash boards/ci.sh
#
# Environment: BOARDS_TARGET_DIR (default boards/target) for the board builds; the host
# test uses the caller's CARGO_TARGET_DIR (default: the root crate's target/), so it shares
# the build of the root crate's own `cargo test --features std`. QEMU_TIMEOUT (seconds per
# QEMU run, default 300).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
boards_target="${BOARDS_TARGET_DIR:-$here/target}"
out="$boards_target/ci"
qemu_timeout="${QEMU_TIMEOUT:-300}"
started=$SECONDS
checks=0

step() { printf '\n=== %s\n' "$*"; }
fail() {
    echo "boards/ci.sh: FAIL: $*" >&2
    exit 1
}
ok() {
    checks=$((checks + 1))
    echo "ok: $*"
}

mkdir -p "$out"

# --------------------------------------------------------------------------- tools
step "tools"
if ! command -v qemu-system-arm >/dev/null 2>&1; then
    echo "installing qemu-system-arm"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
if ! command -v flip-link >/dev/null 2>&1; then
    echo "installing flip-link"
    cargo install flip-link --locked
fi
# rustup installs the toolchain, the thumb targets and llvm-tools from rust-toolchain.toml.
sysroot="$(cd "$here" && rustc --print sysroot)"
llvm_size="$(ls "$sysroot"/lib/rustlib/*/bin/llvm-size 2>/dev/null | head -n 1 || true)"
if [ -z "$llvm_size" ]; then
    (cd "$here" && rustup component add llvm-tools)
    llvm_size="$(ls "$sysroot"/lib/rustlib/*/bin/llvm-size | head -n 1)"
fi
qemu-system-arm --version | head -n 1
flip-link --version 2>/dev/null || true
"$llvm_size" --version | grep -i version | head -n 1

# -------------------------------------------------------------------------- builds
# build <board dir> <target triple> <name> [cargo args...]: release build, ELF copied to
# $out/<name>.elf (two builds of one board share a path in the target dir).
build() {
    local dir=$1 triple=$2 name=$3
    shift 3
    echo "--- $name: cargo build --release $*"
    (cd "$here/$dir" && CARGO_TARGET_DIR="$boards_target" cargo build --release "$@")
    cp "$boards_target/$triple/release/$dir" "$out/$name.elf"
}

step "build (release)"
build qemu thumbv7em-none-eabihf qemu
ok "qemu (Cortex-M4F) builds"
# The inference firmware with a panic handler that cannot link: this build succeeding
# is the proof that no panic path survives in load + forecast + report.
build qemu thumbv7em-none-eabihf qemu-no-panic --features no-panic
ok "qemu --features no-panic links (no reachable panic in inference)"
build nrf52840-dk thumbv7em-none-eabihf nrf52840-dk
ok "nrf52840-dk builds"
build rpi-pico thumbv6m-none-eabi rpi-pico
ok "rpi-pico (micromath) builds"
build rpi-pico thumbv6m-none-eabi rpi-pico-libm --no-default-features
ok "rpi-pico (libm) builds"

# -------------------------------------------------------------------------- QEMU runs
# qemu <elf> [semihosting args...]: runs the firmware, prints its output, returns its status.
qemu() {
    local elf=$1
    shift
    local sh="enable=on,target=native,arg=firmware"
    for a in "$@"; do sh="$sh,arg=$a"; done
    timeout "$qemu_timeout" qemu-system-arm -machine mps2-an386 -cpu cortex-m4 \
        -nographic -monitor none -serial none \
        -icount shift=0,align=off,sleep=off \
        -semihosting-config "$sh" -kernel "$elf"
}

# run <log name> <expected status> <elf> [args...]
run() {
    local name=$1 want=$2 elf=$3
    shift 3
    local status=0
    qemu "$elf" "$@" >"$out/$name.txt" 2>"$out/$name.err" || status=$?
    if [ "$status" = 124 ]; then
        fail "$name: QEMU timed out after ${qemu_timeout}s"
    fi
    if grep -qE '^(HARDFAULT|PANIC)' "$out/$name.txt"; then
        cat "$out/$name.txt"
        fail "$name: $(grep -E '^(HARDFAULT|PANIC)' "$out/$name.txt" | head -n 1)"
    fi
    if [ "$status" != "$want" ]; then
        cat "$out/$name.txt" "$out/$name.err"
        fail "$name: exit status $status, expected $want"
    fi
}

step "QEMU: clock calibration"
run calibrate 0 "$out/qemu.elf" calibrate
read -r _ want got < <(grep '^CALIBRATE ' "$out/calibrate.txt") || fail "no CALIBRATE record"
echo "a loop of $want instructions measured $got"
if [ $((got - want)) -lt 0 ] || [ $((got - want)) -gt 200 ]; then
    fail "the QEMU clock does not count instructions ($got for $want)"
fi
ok "the timer counts instructions under -icount shift=0 (+$((got - want)) of call overhead)"

step "QEMU: full firmware (forecast, costs, on-device training)"
t=$SECONDS
run full 0 "$out/qemu.elf"
cat "$out/full.txt"
grep -q '^DONE$' "$out/full.txt" || fail "full run did not finish"
ok "full firmware runs to DONE in $((SECONDS - t))s"

step "QEMU: inference firmware (no-panic build)"
run inference 0 "$out/qemu-no-panic.elf"
cat "$out/inference.txt"
grep -q '^DONE$' "$out/inference.txt" || fail "inference run did not finish"
ok "inference firmware runs to DONE"

step "QEMU: bad input gives typed errors and non-zero exit"
# scenario, expected exit status, expected ERROR record prefix
while read -r scenario status record; do
    run "bad-$scenario" "$status" "$out/qemu.elf" "$scenario"
    grep -q "^ERROR $record" "$out/bad-$scenario.txt" ||
        fail "$scenario: expected 'ERROR $record', got: $(grep '^ERROR' "$out/bad-$scenario.txt")"
    ok "$scenario -> exit $status, $(grep '^ERROR' "$out/bad-$scenario.txt")"
done <<'EOF'
corrupt 2 load weights_checksum
truncated 2 load weights_truncated
mismatch 2 load weights_shape_mismatch
diverge 3 forecast diverged 0
EOF
for scenario in corrupt truncated; do
    run "bad-$scenario-no-panic" 2 "$out/qemu-no-panic.elf" "$scenario"
    ok "no-panic build: $scenario -> exit 2, $(grep '^ERROR' "$out/bad-$scenario-no-panic.txt")"
done

# ------------------------------------------------------------------- host parity
step "host: the same records from tests/firmware_parity.rs"
(cd "$root" && TINYSDE_PARITY_OUT="$out/host.txt" cargo test --features std --test firmware_parity -- --nocapture)
[ -s "$out/host.txt" ] || fail "the host test wrote no records"
grep -E '^(CONFIG|FORECAST|TRAIN) ' "$out/full.txt" >"$out/firmware.txt"
if ! diff -u "$out/host.txt" "$out/firmware.txt"; then
    fail "firmware and host records differ (above: - host, + firmware)"
fi
ok "forecast and training records identical bit for bit ($(wc -l <"$out/host.txt") records)"
grep -E '^(CONFIG|FORECAST) ' "$out/host.txt" >"$out/host-inference.txt"
grep -E '^(CONFIG|FORECAST|TRAIN) ' "$out/inference.txt" >"$out/firmware-inference.txt"
if ! diff -u "$out/host-inference.txt" "$out/firmware-inference.txt"; then
    fail "inference firmware and host records differ"
fi
ok "inference firmware records identical bit for bit"

# ------------------------------------------------------------------------ reports
step "report: sizes (bytes)"
# flash = vector table + boot2 + .text + .rodata + .data (its initial values live in flash);
# static RAM = .data + .bss + .uninit; peak stack from the painted stack (QEMU runs).
peak_stack() { awk '$1 == "STACK" && $2 > m { m = $2 } END { print m + 0 }' "$@"; }
size_row() {
    local name=$1 elf=$2 stack=$3
    "$llvm_size" -A "$elf" | awk -v name="$name" -v stack="$stack" '
        { s[$1] = $2 }
        END {
            text = s[".text"] + 0; ro = s[".rodata"] + 0; data = s[".data"] + 0
            vt = s[".vector_table"] + 0; b2 = s[".boot2"] + 0
            bss = s[".bss"] + 0; un = s[".uninit"] + 0
            flash = vt + b2 + text + ro + data
            ram = data + bss + un
            printf "%-22s %8d %8d %8d %8d %8d %8d %8s %9s\n", name, text, ro, flash, data, bss + un, ram, \
                (stack == "" ? "-" : stack), (stack == "" ? "-" : ram + stack)
        }'
}
printf "%-22s %8s %8s %8s %8s %8s %8s %8s %9s\n" firmware .text .rodata flash .data .bss+un \
    "RAM" "stack" "RAM+stack"
size_row "qemu inference" "$out/qemu-no-panic.elf" "$(peak_stack "$out/inference.txt")"
size_row "qemu full (training)" "$out/qemu.elf" "$(peak_stack "$out/full.txt")"
size_row "nrf52840-dk" "$out/nrf52840-dk.elf" ""
size_row "rpi-pico (micromath)" "$out/rpi-pico.elf" ""
size_row "rpi-pico (libm)" "$out/rpi-pico-libm.elf" ""
echo "(real boards print their peak stack over defmt at run time; it is the same app code)"

step "report: instructions under QEMU -icount (deterministic)"
# Lower bounds of one Euler-Maruyama step of the seed model (H = 20 hidden units per net):
#  arithmetic: one instruction per f32 operation, multiply-adds fused into one (VMLA):
#    cube u^3: 2 | drift layer 1 (1->H): H | fast_tanh: 12 H (x^2, 6 + 3 Horner
#    multiply-adds, x * p, p / q) | drift layer 2 (H->1): H | diffusion layer 1: H |
#    fast_sigmoid: 14 H (x/2, fast_tanh, 0.5 t + 0.5) | diffusion layer 2: H |
#    update u + f h + g dW: 3.   Total 5 + 30 H = 605.
#  with the activations' clamps: fast_tanh clamps its input to +-7.9 and its output to
#    +-1, four one-sided clamps; FPv4-SP has no VMINNM/VMAXNM, so each is at least
#    vcmp + vmrs + it + vmov = 4 instructions: + 16 per hidden unit, 2 H units: + 32 H.
#    Total 5 + 62 H = 1245.
H=20
arith=$((5 + 30 * H))
clamped=$((5 + 62 * H))
awk -v a="$arith" -v c="$clamped" '
    $1 == "COST" { per[$2] = $4 / $3 }
    END {
        step = per["em_step"]; noise = per["noise_increment"]; fg = per["drift_diffusion"]
        printf "lower bounds per step: arithmetic %d, arithmetic + activation clamps %d\n", a, c
        printf "EM step (noise + drift + diffusion + update): %6.0f  %.2fx / %.2fx\n", step, step / a, step / c
        printf "EM step without the Brownian increment:       %6.0f  %.2fx / %.2fx\n", step - noise, (step - noise) / a, (step - noise) / c
        printf "  Brownian increment alone:                   %6.0f\n", noise
        printf "  drift + diffusion evaluation alone:         %6.0f  %.2fx / %.2fx\n", fg, fg / (a - 3), fg / (c - 3)
        printf "on-device training, per iteration (loss + gradient + Adam): %.0f instructions\n", per["train_iteration"]
    }' "$out/full.txt"
echo
echo "boards/ci.sh: all $checks checks passed in $((SECONDS - started))s"
