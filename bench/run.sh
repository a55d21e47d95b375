#!/usr/bin/env bash
# netplumb against the stock tools on workload S(N, K) (see ../shared/bench/README.md),
# every measurement in its own throwaway network + mount namespace, all in one run,
# reported as ratios. Usage: bench/run.sh [quick]   (quick: S(100,1000) only)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${NETPLUMB_SHARED_BENCH:-$here/../shared/bench}
bin=$here/target/release/netplumb
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml" >&2
export LC_ALL=C

# Run a command in a fresh sandbox; print "seconds max_rss_kb" of the timed part.
# $1 = setup (untimed), $2 = timed command.
measure() {
  unshare --net --mount --propagation private bash -c '
    set -e
    mount -t tmpfs none /run; mkdir -p /run/netns /run/netplumb; ip link set lo up
    eval "$1" >/dev/null 2>&1
    /usr/bin/time -f "%e %M" -o /run/t bash -c "$2" >/dev/null 2>/run/err || { cat /run/err >&2; exit 1; }
    cat /run/t' _ "$1" "$2"
}

np_up()   { echo "$bin -q up $here/scripts/bulk.rhai --set n=$1 --set k=$2"; }
np_down() { echo "$bin -q down --name bulk"; }
ns_del()  { echo "for i in \$(seq 1 $1); do ip netns del bns\$i; done"; }

row() { printf '%-34s %9s %9s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }

sizes="100:1000 1000:10000"
[ "${1:-}" = quick ] && sizes="100:1000"

row "measurement" "seconds" "rss_MiB"
declare -A T
for nk in $sizes; do
  n=${nk%:*}; k=${nk#*:}
  read -r t m < <(measure true "$(np_up "$n" "$k")");            T[up$n]=$t;   row "netplumb up S($n,$k)" "$t" "$((m / 1024))"
  read -r t m < <(measure "$(np_up "$n" "$k")" "$(np_down)");     T[down$n]=$t; row "netplumb down S($n,$k)" "$t" "$((m / 1024))"
  read -r t _ < <(measure true "$shared/batch.sh $n $k");          T[batch$n]=$t; row "batch.sh (ip -batch + nft -f) S($n,$k)" "$t" "-"
  read -r t _ < <(measure "$shared/batch.sh $n $k" "$(ns_del "$n")"); T[del$n]=$t; row "ip netns del x$n" "$t" "-"
done
if [ "${1:-}" != quick ] && [ -z "${SKIP_SEED_SHELL:-}" ]; then
  read -r t _ < <(measure true "$shared/seed-shell.sh 100 1000"); T[seed100]=$t; row "seed-shell.sh S(100,1000)" "$t" "-"
fi

echo
echo "ratios (lower is better for netplumb):"
for nk in $sizes; do
  n=${nk%:*}
  echo "  up   S($n,·) / batch.sh:        $(ratio "${T[up$n]}" "${T[batch$n]}")"
  echo "  down S($n,·) / ip netns del:    $(ratio "${T[down$n]}" "${T[del$n]}")"
done
[ -n "${T[seed100]:-}" ] && echo "  up   S(100,1000) / seed-shell:  $(ratio "${T[up100]}" "${T[seed100]}")"
[ -n "${T[up1000]:-}" ] && echo "  up   S(1000,·) / S(100,·):      $(ratio "${T[up1000]}" "${T[up100]}")  (linear ≤ 11)"
