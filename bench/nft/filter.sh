#!/usr/bin/env bash
# 10,000 filter rules of one shape plus 10,000 DNAT mappings: replace_table,
# read_table (typed read-back, checked equal) and `nft -f` of the rendered
# script, inside a private network namespace.
# Usage: bench/nft/filter.sh [rules=10000] [repetitions=7]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p netplumb-nft --example filter_bench
bin="$PWD/target/release/examples/filter_bench"
sandbox="$PWD/../shared/bench/sandbox.sh"
if [ -x "$sandbox" ]; then
  exec "$sandbox" "$bin" "${1:-10000}" "${2:-7}"
fi
exec unshare --net "$bin" "${1:-10000}" "${2:-7}"
