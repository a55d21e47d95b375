#!/usr/bin/env bash
# Regenerates the tc fixtures: the netlink message iproute2's `tc` sends for
# each qdisc, captured with strace (which shows it even when the kernel
# refuses the kind, as this kernel does for netem). Run from this directory:
#   ../../../../shared/bench/sandbox.sh ./capture.sh   (or any throwaway netns)
# Each NAME.hex holds the command on its first line, then strace's hex dump.
set -euo pipefail
cap() {
  local name=$1; shift
  {
    echo "# tc qdisc replace dev lo root $*"
    { strace -f -e trace=sendmsg -e write=all -xx tc qdisc replace dev lo root "$@" 2>&1 >/dev/null || true; } |
      grep '^ | '
  } > "$name.hex"
}
cap netem-mix      netem delay 20ms 5ms loss 1% duplicate 2% corrupt 0.5% reorder 25%
cap netem-delay    netem delay 20ms
cap netem-corr     netem delay 10ms 2ms 25%
cap netem-loss     netem loss 5% 10%
cap netem-full     netem limit 5000 delay 100ms 10ms 30% loss 0.1% 5% duplicate 1% 50% reorder 10% 20% gap 5 corrupt 0.01% 2%
cap netem-rate     netem rate 1mbit delay 5ms
cap netem-rate64   netem rate 40gbit
cap tbf-10mbit     tbf rate 10mbit burst 12500 latency 50ms
cap tbf-limit      tbf rate 1mbit burst 3028 limit 10000
cap tbf-slow       tbf rate 100kbit burst 1600 latency 400ms
cap tbf-rate64     tbf rate 40gbit burst 1000000 latency 10ms
