#!/bin/bash
# S(N,K) day one and day two against the floor, run inside a sandbox:
#   ../shared/bench/sandbox.sh bench/upbench.sh $PWD/target/release/netplumb 1000 10000
# Times: first up, no-change up (then -v of a third), one mapping changed,
# down; then floor up and floor down of N.
set -u
bin=$1; n=$2; k=$3; shift 3
here=$(cd "$(dirname "$0")/.." && pwd)
floor=$here/bench/floor/target/release/floor
export NETPLUMB_STATE_DIR=$(mktemp -d)
changed=$(mktemp --suffix=.rhai)
t() { local s e rc; s=$(date +%s.%N); "$@" > /dev/null 2>&1; rc=$?; e=$(date +%s.%N); echo "$(echo "$e - $s" | bc) rc=$rc"; }
echo "first  $(t "$bin" -q up "$here/scripts/bulk.rhai" --name bulk --set n="$n" --set k="$k" "$@")"
echo "again  $(t "$bin" -q up "$here/scripts/bulk.rhai" --name bulk --set n="$n" --set k="$k" "$@")"
"$bin" -v up "$here/scripts/bulk.rhai" --name bulk --set n="$n" --set k="$k" "$@" 2>&1 | grep "netplumb:"
sed 's/dnat(20000 + j,/dnat(if j == 0 { 19999 } else { 20000 + j },/' "$here/scripts/bulk.rhai" > "$changed"
echo "change $(t "$bin" -q up "$changed" --name bulk --set n="$n" --set k="$k" "$@")"
echo "down   $(t "$bin" -q down --name bulk)"
echo "flup   $(t "$floor" up "$n")"
echo "fldown $(t "$floor" down "$n")"
rm -rf "$NETPLUMB_STATE_DIR" "$changed"
