#!/usr/bin/env bash
# Side-by-side benchmarks of tinysde against peer libraries, in one run, each side pinned
# to the same single core with `taskset`. Makes a Python venv (target/peers-venv, or
# $PEERS_VENV), installs the pinned peers from requirements.txt into it, runs each Rust
# benchmark (criterion, median) and its peer script, and prints both figures and their
# ratio.
#
#   bash benches/peers/run.sh                                     # every pair below
#   bash benches/peers/run.sh ensemble_em_M100 ensemble_em_M1     # some pairs
#   PEERS_NATIVE=1 bash benches/peers/run.sh ensemble_em_M100     # Rust side for this CPU
#
# Environment: PEERS_CORE (default 0), PEERS_VENV, PEERS_REPEATS (peer timings, default 10),
# PEERS_CLOCK=cpu (compare the sides' `cpu_seconds=`, their time on the CPU, instead of the
# wall-clock `seconds=`: on a machine shared with other work the wall clock counts the time
# they held the core; sides that print no `cpu_seconds=` fall back to the wall clock, with a
# note), PEERS_NATIVE=1 (build the Rust side with RUSTFLAGS="-C target-cpu=native", in its own
# target directory, target/native unless CARGO_TARGET_DIR says otherwise, so the default
# build is left alone; the peers' JIT always compiles for the host CPU).
# TINYSDE_BENCH_ACTIVATIONS=quick runs the ensemble pairs (bench:ensemble) with the seed model's
# QuickTanh/QuickSigmoid instead of FastTanh/FastSigmoid (the Rust lines then say
# `activations=quick`); the criterion pairs (seed_task, seed_task_vbt) and spiral_em keep theirs
# (seed_task_quick has the quick ones always).
#
# seed_task: diffrax with the Brownian increments drawn up front (one per step, as tinysde
# draws them); seed_task_vbt: diffrax with its VirtualBrownianTree (what its SDE examples
# use; each step queries the tree); seed_task_quick: the seed task as its example runs it,
# the Rust side with QuickTanh/QuickSigmoid (group gradient/seed_task_quick_M100_EM600), the
# diffrax side unchanged (exact tanh and sigmoid, as in seed_task). ensemble_em_M*: the seed
# model's ensemble (mean and variance at 7 times), Euler-Maruyama, 600 steps, M trajectories
# (jax.vmap on the diffrax side), one trajectory at a time (Solver::ensemble) or, with
# "_lanes8"/"_lanes16", 8 or 16 per pass (Solver::ensemble_lanes; 16 fills one AVX-512
# register per operation); these rows also show the time per trajectory-step of each side.
# The second table compares tinysde with itself: SOSRI against Euler-Maruyama (no peer has
# SOSRI), and 8 lanes against one.
#
# To add a pair, add a line to PAIRS: a name, the Rust side (a criterion benchmark id,
# "group/function" as in `cargo bench`, or "bench:<target> <args>" for a harness-free
# bench target printing `seconds=`), the peer command (a script under the venv's Python
# and its arguments, run from the repository root, printing `seconds=<median>`), and
# optionally the trajectory-steps of one solve (for the ns per trajectory-step columns).
set -euo pipefail
cd "$(dirname "$0")/../.."

CORE=${PEERS_CORE:-0}
VENV=${PEERS_VENV:-target/peers-venv}
REPEATS=${PEERS_REPEATS:-10}
if [ "${PEERS_NATIVE:-0}" = 1 ]; then
  export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-cpu=native"
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/native}
fi
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CLOCK=${PEERS_CLOCK:-wall}

# The figure to compare from a line of `key=value` fields: `seconds=`, or `cpu_seconds=`
# under PEERS_CLOCK=cpu when the line has it.
figure() {
  local line=$1 value=""
  if [ "$CLOCK" = cpu ]; then
    value=$(sed -n 's/.* cpu_seconds=\([0-9.e+-]*\).*/\1/p' <<<"$line")
    [ -n "$value" ] || echo "# no cpu_seconds= here, wall clock used: $line" >&2
  fi
  [ -n "$value" ] || value=$(sed -n 's/.* seconds=\([0-9.e+-]*\).*/\1/p' <<<"$line")
  echo "$value"
}

PAIRS=(
  "seed_task|gradient/seed_task_M100_EM600/reverse_threads/all/T=1|benches/peers/seed_task_diffrax.py increments"
  "seed_task_vbt|gradient/seed_task_M100_EM600/reverse_threads/all/T=1|benches/peers/seed_task_diffrax.py tree"
  "seed_task_quick|gradient/seed_task_quick_M100_EM600/reverse_threads/all/T=1|benches/peers/seed_task_diffrax.py increments"
  "spiral_em|bench:spiral_protocol reverse em|benches/peers/spiral_diffrax.py"
  "ensemble_em_M100|bench:ensemble em 100 600|benches/peers/ensemble_diffrax.py 100 600|60000"
  "ensemble_em_M1|bench:ensemble em 1 600|benches/peers/ensemble_diffrax.py 1 600|600"
  "ensemble_em_M100_lanes8|bench:ensemble em 100 600 8|benches/peers/ensemble_diffrax.py 100 600|60000"
  "ensemble_em_M100_lanes16|bench:ensemble em 100 600 16|benches/peers/ensemble_diffrax.py 100 600|60000"
)
# tinysde against itself: a name, the Rust side, the Rust side it is divided by (both as
# in PAIRS).
SELF_RATIOS=(
  "ensemble_sosri_em_M100|bench:ensemble sosri 100 600|bench:ensemble em 100 600"
  "ensemble_sosri_em_M100_lanes8|bench:ensemble sosri 100 600 8|bench:ensemble em 100 600 8"
  "ensemble_sosri_em_M100_lanes16|bench:ensemble sosri 100 600 16|bench:ensemble em 100 600 16"
  "ensemble_lanes8_M100|bench:ensemble em 100 600 8|bench:ensemble em 100 600"
)

selected() {
  [ "$NAMES" = "" ] || [[ " $NAMES " == *" $1 "* ]]
}
NAMES="$*"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r benches/peers/requirements.txt

# Build outside the timed, pinned runs.
cargo bench --features benches --bench gradient --bench spiral_protocol --bench ensemble --no-run >/dev/null 2>&1

declare -A RUST_SECONDS
# Seconds of one Rust-side run (see PAIRS), measured once per script run.
rust_seconds() {
  local id=$1
  if [ -n "${RUST_SECONDS[$id]:-}" ]; then
    echo "${RUST_SECONDS[$id]}"
    return
  fi
  local seconds
  if [[ $id == bench:* ]]; then
    local target rust_line
    read -r -a target <<<"${id#bench:}"
    rust_line=$(taskset -c "$CORE" cargo bench --features benches --bench "${target[0]}" -- "${target[@]:1}" 2>/dev/null | grep 'seconds=')
    echo "# $rust_line" >&2
    seconds=$(figure "$rust_line")
  else
    # A criterion id is "<bench>/<group>/<function>", and the function may hold "/" too.
    local group function
    group=$(cut -d/ -f1-2 <<<"$id")
    function=${id#"$group"/}
    # Criterion stores results under the id with every "/" replaced by "_".
    taskset -c "$CORE" cargo bench --features benches --bench gradient -- "^${id}\$" \
      --warm-up-time 1 --measurement-time 5 >/dev/null 2>&1
    local estimates="$TARGET_DIR/criterion/${group//\//_}/${function//\//_}/new/estimates.json"
    seconds=$("$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'] / 1e9)" "$estimates")
  fi
  RUST_SECONDS[$id]=$seconds
  echo "$seconds"
}

# The machine's load: the figures mean little when other work shares the core.
echo "# CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1); core $CORE; RUSTFLAGS=\"${RUSTFLAGS:-}\"; clock $CLOCK; load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-24s %12s %12s %13s %14s %14s\n' "benchmark" "tinysde (s)" "peer (s)" "peer/tinysde" \
  "tinysde ns/ts" "peer ns/ts"
for pair in "${PAIRS[@]}"; do
  IFS='|' read -r name id peer work <<<"$pair"
  selected "$name" || continue
  rust=$(rust_seconds "$id")
  RUST_SECONDS[$id]=$rust # the subshell's cache does not reach this shell
  read -r -a peer_cmd <<<"$peer"
  line=$(PEERS_REPEATS=$REPEATS taskset -c "$CORE" "$VENV/bin/python" "${peer_cmd[@]}")
  echo "# $line"
  if [[ $id == bench:* ]]; then
    peer_s=$(figure "$line")
  else
    # A criterion median is wall-clock time: compare it with the peer's wall clock.
    peer_s=$(CLOCK=wall figure "$line")
  fi
  "$VENV/bin/python" - "$name" "$rust" "$peer_s" "${work:-}" <<'PY'
import sys
name, rust, peer, work = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
per = lambda s: f"{s * 1e9 / int(work):.1f}" if work else "-"
print(f"{name:<24} {rust:12.6f} {peer:12.6f} {peer / rust:12.2f}x {per(rust):>14} {per(peer):>14}")
PY
done

header=0
for row in "${SELF_RATIOS[@]}"; do
  IFS='|' read -r name id base <<<"$row"
  selected "$name" || continue
  if [ $header = 0 ]; then
    printf '\n%-30s %12s %12s %10s\n' "tinysde alone" "this (s)" "base (s)" "this/base"
    header=1
  fi
  this=$(rust_seconds "$id")
  RUST_SECONDS[$id]=$this
  base_s=$(rust_seconds "$base")
  RUST_SECONDS[$base]=$base_s
  "$VENV/bin/python" -c "import sys; a, b = float(sys.argv[2]), float(sys.argv[3]); print(f'{sys.argv[1]:<30} {a:12.6f} {b:12.6f} {a / b:9.2f}x')" \
    "$name" "$this" "$base_s"
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
