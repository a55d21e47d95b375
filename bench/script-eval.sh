#!/usr/bin/env bash
# Script evaluation speed, through `netplumb plan` (no root, no kernel):
# stdlib `pm::shift` of 10,000 mappings against a plain `for` loop of
# 10,000 `dnat()` calls making the same plan, and 100,000 `push`es onto one
# array. Wall-clock medians of RUNS (default 5) runs; prints the ratio.
# Usage: bench/script-eval.sh   (NETPLUMB=path/to/netplumb to pick a binary)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${NETPLUMB:-$here/target/release/netplumb}
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml" >&2
runs=${RUNS:-5}
export LC_ALL=C
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

cat >"$dir/shift.rhai" <<'R'
import "portmap" as pm;
pm::shift(20000, 29999, "172.18.0.2", 80);
R
cat >"$dir/loop.rhai" <<'R'
for j in 0..10000 { dnat(20000 + j, `172.18.0.2:${80 + j}`); }
R
cat >"$dir/push.rhai" <<'R'
let a = [];
for i in 0..100000 { a.push(i); }
R

# Milliseconds of one `plan`, its output thrown away.
once() {
  local t0 t1
  t0=$(date +%s%N)
  "$bin" plan --name bench "$1" >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
median() {
  local f=$1 i
  for i in $(seq "$runs"); do once "$f"; done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

cmp <("$bin" plan --name bench "$dir/shift.rhai") <("$bin" plan --name bench "$dir/loop.rhai") >/dev/null ||
  { echo "shift and loop plan differently" >&2; exit 1; }
shift_ms=$(median "$dir/shift.rhai")
loop_ms=$(median "$dir/loop.rhai")
push_ms=$(median "$dir/push.rhai")
printf '%-44s %8s ms\n' "pm::shift of 10,000 mappings" "$shift_ms" \
  "for loop of 10,000 dnat()" "$loop_ms" "100,000 push onto one array" "$push_ms"
awk -v a="$shift_ms" -v b="$loop_ms" 'BEGIN { printf "shift / loop = %.2f (medians of %d)\n", a / b, '"$runs"' }'
