#!/bin/bash
# REPL cost against `ip netns add`, run inside a sandbox:
#   ../shared/bench/sandbox.sh bench/replbench.sh $PWD/target/release/netplumb N
# Times N piped `netns("xI");` statements, then a loop of N `ip netns add`.
set -u
bin=$1; n=$2
in=$(mktemp); trap 'rm -f "$in"' EXIT
for i in $(seq 1 "$n"); do echo "netns(\"x$i\");"; done > "$in"
export NETPLUMB_STATE_DIR=$(mktemp -d)
clean() { for f in /run/netns/*; do [ -e "$f" ] || continue; umount -l "$f"; rm -f "$f"; done; }
s=$(date +%s.%N); "$bin" -q repl < "$in" > /dev/null 2>&1; rc=$?
e=$(date +%s.%N); echo "repl$n rc=$rc $(echo "$e - $s" | bc)"
clean
s=$(date +%s.%N); for i in $(seq 1 "$n"); do ip netns add "y$i"; done; e=$(date +%s.%N)
echo "ipadd$n $(echo "$e - $s" | bc)"
clean
rm -rf "$NETPLUMB_STATE_DIR"
