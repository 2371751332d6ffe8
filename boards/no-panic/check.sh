#!/usr/bin/env bash
# The per-entry-point no-panic proofs: builds each binary of boards/no-panic for
# thumbv7em-none-eabihf in release (fat LTO, as the firmware). A binary links only if no
# panic path (bounds check, unwrap, slice split, division by zero, explicit panic)
# survives in the tinysde entry points it calls. (Integer overflow is not a panic in
# release; counters and indices use checked or saturating arithmetic, and the host test
# profile runs the contract suite with overflow checks on.) For each one that fails, the functions still calling a panic routine are
# listed (from a second link that defines the missing symbol), then the script fails.
#
#   bash boards/no-panic/check.sh
#
# Environment: BOARDS_TARGET_DIR (default boards/target).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${BOARDS_TARGET_DIR:-$here/../target}"
triple=thumbv7em-none-eabihf
sysroot="$(cd "$here" && rustc --print sysroot)"
objdump="$(ls "$sysroot"/lib/rustlib/*/bin/llvm-objdump 2>/dev/null | head -n 1 || true)"
failed=()
mkdir -p "$target_dir" # a fresh clone has no boards/target yet

cd "$here"
# The canary must not link: otherwise a passing proof would mean nothing.
if CARGO_TARGET_DIR="$target_dir" cargo build --release --example canary 2>"$target_dir/no-panic-canary.log"; then
    echo "FAIL: the canary (an unprovable index) linked: the no-panic check is broken" >&2
    exit 1
fi
grep -q tinysde_panic_is_reachable "$target_dir/no-panic-canary.log" || {
    cat "$target_dir/no-panic-canary.log" >&2
    echo "FAIL: the canary failed to build for another reason" >&2
    exit 1
}
echo "ok: the canary's panic path is refused at link time"
for src in src/bin/*.rs; do
    bin="$(basename "$src" .rs)"
    if CARGO_TARGET_DIR="$target_dir" cargo build --release --bin "$bin" 2>"$target_dir/no-panic-$bin.log"; then
        echo "ok: no panic path in '$bin'"
        continue
    fi
    if ! grep -q tinysde_panic_is_reachable "$target_dir/no-panic-$bin.log"; then
        cat "$target_dir/no-panic-$bin.log" >&2
        echo "FAIL: '$bin' does not build" >&2
        exit 1
    fi
    failed+=("$bin")
    echo "FAIL: '$bin' keeps a panic path; functions that still call a panic routine:" >&2
    CARGO_TARGET_DIR="$target_dir" cargo rustc --release --bin "$bin" -- \
        -C link-arg=--defsym=tinysde_panic_is_reachable=0 >/dev/null 2>&1 || true
    if [ -n "$objdump" ]; then
        "$objdump" -d --demangle "$target_dir/$triple/release/$bin" |
            awk '/^[0-9a-f]+ <.*>:$/ { fn = $2 }
                 /\tbl\t.*<core::panicking::|\tbl\t.*<core::slice::.*fail|\tbl\t.*<core::option::unwrap_failed|\tbl\t.*<core::result::unwrap_failed/ {
                     sub(/^.*</, "", $0); print "    " fn " -> <" $0 }' | sort -u >&2
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "no-panic proofs failed for: ${failed[*]}" >&2
    exit 1
fi
echo "all no-panic proofs link"
