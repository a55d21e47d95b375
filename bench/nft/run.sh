#!/usr/bin/env bash
# 10,000 DNAT mappings: netplumb-nft replace_table vs `nft -f`, inside a
# private network namespace (nothing touches the machine's own ruleset).
# Usage: bench/nft/run.sh [mappings=10000] [repetitions=7]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p netplumb-nft --example dnat_bench
bin="$PWD/target/release/examples/dnat_bench"
sandbox="$PWD/../shared/bench/sandbox.sh"
if [ -x "$sandbox" ]; then
  exec "$sandbox" "$bin" "${1:-10000}" "${2:-7}"
fi
exec unshare --net "$bin" "${1:-10000}" "${2:-7}"
