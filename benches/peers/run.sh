#!/usr/bin/env bash
# Side-by-side benchmarks of tinysde against peer libraries, in one run, each side pinned
# to the same single core with `taskset`. Makes a Python venv (target/peers-venv, or
# $PEERS_VENV), installs the pinned peers from requirements.txt into it, runs each Rust
# benchmark (criterion, median) and its peer script, and prints both figures and their
# ratio.
#
#   bash benches/peers/run.sh            # every pair below
#   bash benches/peers/run.sh seed_task  # one pair
#
# Environment: PEERS_CORE (default 0), PEERS_VENV, PEERS_REPEATS (peer timings, default 10).
#
# seed_task: diffrax with the Brownian increments drawn up front (one per step, as tinysde
# draws them); seed_task_vbt: diffrax with its VirtualBrownianTree (what its SDE examples
# use; each step queries the tree).
#
# To add a pair, add a line to PAIRS: a name, the Rust side (a criterion benchmark id,
# "group/function" as in `cargo bench`, or "bench:<target> <args>" for a harness-free
# bench target printing `seconds=`), and the peer command (a script under the venv's
# Python and its arguments, run from the repository root, printing `seconds=<median>`).
set -euo pipefail
cd "$(dirname "$0")/../.."

CORE=${PEERS_CORE:-0}
VENV=${PEERS_VENV:-target/peers-venv}
REPEATS=${PEERS_REPEATS:-10}

PAIRS=(
  "seed_task|gradient/seed_task_M100_EM600/reverse/all_kept|benches/peers/seed_task_diffrax.py increments"
  "seed_task_vbt|gradient/seed_task_M100_EM600/reverse/all_kept|benches/peers/seed_task_diffrax.py tree"
  "spiral_em|bench:spiral_protocol reverse em|benches/peers/spiral_diffrax.py"
)

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q -r benches/peers/requirements.txt

# Build outside the timed, pinned runs.
cargo bench --bench gradient --bench spiral_protocol --no-run >/dev/null 2>&1

printf '%-14s %12s %12s %13s\n' "benchmark" "tinysde (s)" "peer (s)" "peer/tinysde"
for pair in "${PAIRS[@]}"; do
  IFS='|' read -r name id peer <<<"$pair"
  if [ $# -gt 0 ] && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  if [[ $id == bench:* ]]; then
    read -r -a target <<<"${id#bench:}"
    rust_line=$(taskset -c "$CORE" cargo bench --bench "${target[0]}" -- "${target[@]:1}" 2>/dev/null | grep 'seconds=')
    echo "# $rust_line"
    rust=$(sed -n 's/.*seconds=\([0-9.e+-]*\).*/\1/p' <<<"$rust_line")
  else
    group=${id%/*/*}
    function=${id#"$group"/}
    # Criterion stores results under the id with every "/" replaced by "_".
    taskset -c "$CORE" cargo bench --bench gradient -- "^${id}\$" \
      --warm-up-time 1 --measurement-time 5 >/dev/null 2>&1
    estimates="target/criterion/${group//\//_}/${function//\//_}/new/estimates.json"
    rust=$("$VENV/bin/python" -c "import json,sys; print(json.load(open(sys.argv[1]))['median']['point_estimate'] / 1e9)" "$estimates")
  fi
  read -r -a peer_cmd <<<"$peer"
  line=$(PEERS_REPEATS=$REPEATS taskset -c "$CORE" "$VENV/bin/python" "${peer_cmd[@]}")
  echo "# $line"
  peer_s=$(sed -n 's/.*seconds=\([0-9.e+-]*\).*/\1/p' <<<"$line")
  ratio=$("$VENV/bin/python" -c "import sys; print(f'{float(sys.argv[2]) / float(sys.argv[1]):.1f}x')" "$rust" "$peer_s")
  printf '%-14s %12.4f %12.4f %13s\n' "$name" "$rust" "$peer_s" "$ratio"
done
