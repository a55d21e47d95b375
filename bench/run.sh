#!/usr/bin/env bash
# netplumb against its floor (bench/floor) and the stock tools, in one run, as
# ratios: every row of the "Measure, don't assert" table of issue 14. Each
# measurement group runs in its own throwaway network + mount namespace
# (bench/steps.sh); groups that take under LONG seconds are repeated (REPS
# times, FAST_REPS under half a second) and their medians compared; groups
# of one row pair are interleaved so that drift hits both sides alike.
#
#   bench/run.sh          the table (about 6 minutes on 2 shared cores)
#   bench/run.sh quick    plan/check and S(100,1000) against floor and stock tools (under a minute)
#   bench/run.sh all      the table, plus batch.sh (ip -batch + nft -f) and seed-shell.sh
#   bench/run.sh probe    only say which rows this netplumb and its scripts can run
#
# Environment: REPS (3), FAST_REPS (7), LONG (12 s), REPL_TIMEOUT (240 s),
# NETPLUMB_BIN (default: cargo build --release here), NETPLUMB_SHARED_BENCH,
# NETPLUMB_BULK (default scripts/bulk.rhai: the workload script to try).
# A row whose netplumb feature is missing prints n/a and why; the probes
# (`netplumb plan` of the bulk scripts) find the feature when it lands.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${NETPLUMB_SHARED_BENCH:-}
for d in "$here/../shared/bench" "$here/../../shared/bench"; do   # beside the checkout or its worktree parent
  [ -n "$shared" ] || [ ! -x "$d/batch.sh" ] || shared=$(cd "$d" && pwd)
done
shared=${shared:-$here/../shared/bench}
mode=${1:-table}
case $mode in table|quick|all|probe) ;; *) echo "usage: bench/run.sh [quick|all|probe]" >&2; exit 2 ;; esac
export LC_ALL=C
REPS=${REPS:-3}; FAST_REPS=${FAST_REPS:-7}; LONG=${LONG:-12}; REPL_TIMEOUT=${REPL_TIMEOUT:-240}

if [ -n "${NETPLUMB_BIN:-}" ]; then
  bin=$NETPLUMB_BIN
else
  cargo build --release -q --manifest-path "$here/Cargo.toml" >&2
  bin=$here/target/release/netplumb
fi
cargo build --release -q --manifest-path "$here/bench/floor/Cargo.toml" >&2
floor=$here/bench/floor/target/release/floor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$SECONDS

if [ "$mode" = quick ]; then N1=100 K1=1000; else N1=1000 K1=10000; fi
N3=3000 K3=30000 B3=4 K100=${K100:-100000}

# ---- what this netplumb and its scripts can do (probed, never assumed) ----
declare -A WHY DESC
bulk=${NETPLUMB_BULK:-$here/scripts/bulk.rhai}
rel() { case $1 in "$here"/*) echo "${1#"$here"/}" ;; *) echo "$1" ;; esac; }
plan_of() { "$bin" plan "$@" 2>&1 | grep -v userdata; }
first_error() { grep -m1 '×' | sed 's/^[[:space:]]*×[[:space:]]*//'; }

# --set bridges=B: scripts/bulk.rhai, else the proposed copy in bench/.
bulk_b="" bulk_b_note=""
for s in "$bulk" "$here/bench/bulk.rhai"; do
  if out=$(plan_of "$s" --set n=4 --set k=1 --set bridges=2) && grep -q 'foobr1' <<<"$out"; then bulk_b=$s; break; fi
done
case $bulk_b in
  "$bulk") ;;
  "") bulk_b_note="no bulk script spreads namespaces over --set bridges" ;;
  *) bulk_b_note="bench/bulk.rhai: $(rel "$bulk") has no --set bridges yet" ;;
esac

# --set lean=true: the plan must succeed and differ from the plain one.
lean_probe() {
  local plain lean
  plain=$(plan_of "$1" --set n=2 --set k=1) || { echo "$(rel "$1"): plan fails: $(first_error <<<"$plain")"; return; }
  if ! lean=$(plan_of "$1" --set n=2 --set k=1 --set lean=true); then
    echo "$(rel "$1") with lean=true: netplumb refuses it: $(first_error <<<"$lean")"; return
  fi
  [ "$plain" != "$lean" ] || echo "$(rel "$1") ignores --set lean"
}
bulk_lean="" lean_note=""
for s in "$bulk" "$here/bench/bulk.rhai"; do
  why=$(lean_probe "$s")
  if [ -z "$why" ]; then bulk_lean=$s; break; fi
  lean_note="${lean_note:+$lean_note; }$why"
done
[ -z "$bulk_lean" ] || [ "$bulk_lean" = "$bulk" ] || lean_note="with bench/bulk.rhai ($lean_note)"
[ -z "$bulk_lean" ] || [ "$bulk_lean" != "$bulk" ] || lean_note=""

# One changed mapping: the same script with mapping j=0 moved from port 20000 to 19999.
mkdir -p "$tmp/changed"
sed 's/dnat(20000 + j,/dnat(if j == 0 { 19999 } else { 20000 + j },/' "$bulk" > "$tmp/changed/bulk.rhai"
changed_note=""
out=$(plan_of "$tmp/changed/bulk.rhai" --set n=2 --set k=2) && grep -q 19999 <<<"$out" || changed_note="cannot derive a one-mapping change: $(rel "$bulk") has no 'dnat(20000 + j,'"

if [ "$mode" = probe ]; then
  echo "bulk script: $bulk"
  echo "--set bridges: ${bulk_b:-n/a} ${bulk_b_note:+($bulk_b_note)}"
  echo "--set lean:    ${bulk_lean:-n/a} ${lean_note:+($lean_note)}"
  echo "one changed mapping: ${changed_note:-yes}"
  exit 0
fi

# ---- inputs ----
for n in 100 400 1000; do
  for i in $(seq 1 $n); do echo "netns(\"x$i\");"; done > "$tmp/repl$n.in"
done
# The 100k map of bench/dnat100k.rhai in nft syntax, table shaped like netplumb's
# (which gives a map of 1,000 elements or more its size: the kernel then sizes
# its hash once instead of growing it while the elements go in).
awk -v k="$K100" -v addrs=2 'BEGIN {
  per = int((k + addrs - 1) / addrs)
  print "table inet bench100k {\n\tmap m {\n\t\ttype ipv4_addr . inet_service : ipv4_addr . inet_service"
  if (k >= 1000) printf "\t\tsize %d\n", k
  printf "\t\telements = { "
  for (j = 0; j < k; j++) {
    i = j % 1000 + 1
    printf "%s10.255.0.%d . %d : 172.18.%d.%d . 80", (j ? ",\n\t\t\t" : ""), int(j / per) + 1, 10000 + j % per, int(i / 250), i % 250 + 2
  }
  print " }\n\t}"
  rule = "meta nfproto ipv4 meta l4proto tcp dnat ip to ip daddr . tcp dport map @m"
  print "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\t" rule "\n\t}"
  print "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\t" rule "\n\t}"
  print "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t}\n}"
}' > "$tmp/map100k.nft"

# ---- measurement groups: g_NAME prints the steps of one sandbox run ----
ORDER=()
step() {
  printf '%s\t%s\t%s\n' "$1" "$2" "$3"
  [ -z "${4:-}" ] || { [ -n "${DESC[$2]:-}" ] || ORDER+=("$2"); DESC[$2]=$4; }
}
np_up() { echo "$bin -q up $1 --name bulk --set n=$2 --set k=$3 ${4:-}"; }
unmount_all() { echo 'for f in /run/netns/*; do [ -e "$f" ] || continue; umount -l "$f"; rm -f "$f"; done'; }

g_plan() {
  step t plan_seed "$bin plan $here/scripts/seed.rhai" "netplumb plan scripts/seed.rhai"
  step t check_seed "$bin check $here/scripts/seed.rhai" "netplumb check scripts/seed.rhai"
}
g_repl() { # N
  step t "repl$1" "timeout $REPL_TIMEOUT $bin repl < $tmp/repl$1.in" "REPL: $1 piped netns() statements"
  step u cleanup "$(unmount_all)"
}
g_ipadd() { # N
  step t "ipadd$1" "for i in \$(seq 1 $1); do ip netns add x\$i; done" "$1 ip netns add processes"
  step u cleanup "$(unmount_all)"
}
g_np() { # N K
  step r "np_up_$1" "$(np_up "$bulk" "$1" "$2")" "netplumb up S($1,$2), first"
  step r "np_again_$1" "$(np_up "$bulk" "$1" "$2")" "netplumb up S($1,$2), no change"
  if [ -z "$changed_note" ]; then
    step r "np_changed_$1" "$(np_up "$tmp/changed/bulk.rhai" "$1" "$2")" "netplumb up S($1,$2), one mapping changed"
    # The same two once the kernel's own work after a first up (IPv6 DAD,
    # MLD and router solicitations on every new link; it holds rtnl_mutex,
    # which every link dump waits for) is over: what an edit made a little
    # later costs.
    step u idle "sleep 15"
    step r "np_quiet_again_$1" "$(np_up "$tmp/changed/bulk.rhai" "$1" "$2")" "netplumb up S($1,$2), no change, 15 s later"
    step r "np_quiet_changed_$1" "$(np_up "$bulk" "$1" "$2")" "netplumb up S($1,$2), one mapping changed back"
  fi
  step r "np_down_$1" "$bin -q down --name bulk" "netplumb down S($1,$2)"
}
g_fl() { # N [floor options]
  local n=$1; shift
  local tag=${LEANTAG:-}
  step t "fl${tag}_up_$n" "$floor up $n $*" "floor up S($n,0)${*:+ $*}"
  step t "fl${tag}_down_$n" "$floor down $n ${FLDOWN:-}" "floor down S($n,0)${FLDOWN:+ $FLDOWN}${tag:+ (after the $tag up)}"
}
g_fllean() { LEANTAG=lean g_fl "$1" --no-mcast-snooping --no-ipv6; }
g_flready() { LEANTAG=ready g_fl "$1" --ready; }
g_nplean() { # N K
  step r "nplean_up_$1" "$(np_up "$bulk_lean" "$1" "$2" "--set lean=true")" "netplumb up S($1,$2) lean=true"
  step r "nplean_down_$1" "$bin -q down --name bulk" "netplumb down S($1,$2) lean=true"
}
g_del() { # N
  step u setup "$floor up $1"
  step t "del_$1" "for i in \$(seq 1 $1); do ip netns del bns\$i; done" "ip netns del ×$1 (loop, no wait)"
  step u wait "$floor wait $1"
}
g_np3() {
  step r "np_up_$N3" "$(np_up "$bulk_b" $N3 $K3 "--set bridges=$B3")" "netplumb up S($N3,$K3) on $B3 bridges"
  step r "np_down_$N3" "$bin -q down --name bulk" "netplumb down S($N3,$K3) on $B3 bridges"
}
g_fl3() { FLDOWN="--bridges $B3" g_fl $N3 --bridges $B3; }
g_np100k() {
  step r np_100k "$bin -q up $here/bench/dnat100k.rhai --name d100k --set k=$K100" "netplumb up bench/dnat100k.rhai ($K100 mappings)"
}
g_nft100k() { step t nft_100k "nft -f $tmp/map100k.nft" "nft -f of the same $K100-element map"; }
g_batch() { # N K
  step t "batch_$1" "$shared/batch.sh $1 $2" "batch.sh S($1,$2) (ip -batch + nft -f)"
  step u wait "$floor down $1"
}
g_seedshell() { step t seedshell_100 "$shared/seed-shell.sh 100 1000" "seed-shell.sh S(100,1000) (a process per step)"; }

# The machine's live namespaces (all of them: other users' too). The kernel
# frees dead namespaces in batches, seconds after their last reference goes;
# wait for that so it does not land in the next measurement.
netns_count() { awk '$1 == "net_namespace" { print $2 }' /proc/slabinfo 2>/dev/null || true; }
baseline=$(netns_count)
settle() {
  [ -n "$baseline" ] || { sleep 1; return; }
  local i
  for i in $(seq 1 150); do
    [ "$(netns_count)" -le $(( baseline + 40 )) ] && return
    sleep 0.2
  done
  baseline=$(netns_count)   # someone else's namespaces, most likely: stop waiting for them
  echo "  (the machine's namespace count stayed up for 30 s; new baseline $baseline)" >&2
}

declare -A RUNS WANT
run_group() { # GROUP [ARGS]: one sandboxed run, results appended to $tmp/res
  local g=$1; shift
  "g_$g" "$@" > "$tmp/steps"   # a redirected function runs in this shell: DESC is kept
  unshare --net --mount --propagation private "$here/bench/steps.sh" "$tmp/steps" > "$tmp/out" || echo "sandbox FAIL unshare failed" > "$tmp/out"
  cat "$tmp/out" >> "$tmp/res"
  settle
}
# Groups round-robin: one run each, then as many more as their first run's
# slowest step allows (FAST_REPS under 0.5 s, REPS under LONG s, else none).
run_groups() { # "GROUP ARGS"…
  local spec max more
  for spec in "$@"; do
    echo "  $spec" >&2
    run_group $spec
    RUNS[$spec]=1
    max=$(awk '$2 ~ /^[0-9]+$/ && $2 > m { m = $2 } / (FAIL|TIMEOUT)/ { f = 1 } END { print f ? -1 : m + 0 }' "$tmp/out")
    if [ "$max" -lt 0 ]; then WANT[$spec]=1
    elif [ "$max" -lt 500000 ]; then WANT[$spec]=$FAST_REPS
    elif [ "$max" -lt $(( LONG * 1000000 )) ]; then WANT[$spec]=$REPS
    else WANT[$spec]=1
    fi
  done
  more=1
  while [ $more = 1 ]; do
    more=0
    for spec in "$@"; do
      if [ "${RUNS[$spec]}" -lt "${WANT[$spec]}" ]; then
        run_group $spec
        RUNS[$spec]=$(( RUNS[$spec] + 1 )); more=1
      fi
    done
  done
}

echo "bench/run.sh $mode: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, kernel $(uname -r), load $load_start" >&2
: > "$tmp/res"
run_groups plan
if [ "$mode" = quick ]; then
  run_groups "np $N1 $K1" "fl $N1" "del $N1" "batch $N1 $K1"
else
  run_groups "repl 100" "ipadd 400" "repl 400"
  run_groups "repl 1000"
  if [ -n "$bulk_lean" ]; then
    run_groups "np $N1 $K1" "fl $N1" "del $N1" "fllean $N1" "nplean $N1 $K1" "flready $N1"
  else
    run_groups "np $N1 $K1" "fl $N1" "del $N1" "fllean $N1" "flready $N1"
  fi
  if [ -n "$bulk_b" ]; then run_groups np3 fl3; else run_groups fl3; fi
  run_groups np100k nft100k
  if [ "$mode" = all ]; then run_groups "batch $N1 $K1" "np 100 1000" seedshell; fi
fi

# ---- results ----
declare -A MED N RSS
while read -r label med n rss why; do
  [ "$med" = - ] || MED[$label]=$med
  N[$label]=$n; RSS[$label]=$rss
  case $why in
    -) ;;
    TIMEOUT) WHY[$label]="timed out after $REPL_TIMEOUT s, REPL_TIMEOUT" ;;
    *) WHY[$label]=$why ;;
  esac
done < <(awk '
  $2 ~ /^[0-9]+$/ { v[$1] = v[$1] " " $2; c[$1]++; if ($3 != "-" && $3 > r[$1]) r[$1] = $3; next }
  { if (!($1 in w)) { w[$1] = $0; sub(/^[^ ]+ /, "", w[$1]) } }
  END {
    for (l in c) {
      n = split(substr(v[l], 2), a, " ")
      for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
      m = n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
      printf "%s %.6f %d %s %s\n", l, m / 1e6, n, (l in r) ? sprintf("%.1f", r[l] / 1024) : "-", (l in w) ? w[l] : "-"
    }
    for (l in w) if (!(l in c)) printf "%s - 0 - %s\n", l, w[l]
  }' "$tmp/res")

# Rows whose netplumb part was not run.
[ -n "$bulk_lean" ] || { WHY[nplean_up_$N1]=$lean_note; WHY[nplean_down_$N1]=$lean_note; }
[ -n "$bulk_b" ] || { WHY[np_up_$N3]=$bulk_b_note; WHY[np_down_$N3]=$bulk_b_note; }
[ -z "$changed_note" ] || WHY[np_changed_$N1]=$changed_note

echo
echo "measurements (median seconds of the runs; peak RSS the largest of them):"
printf '  %-56s %10s %5s %9s\n' "" "seconds" "runs" "rss MiB"
for label in "${ORDER[@]}"; do
  if [ -n "${MED[$label]:-}" ]; then
    printf '  %-56s %10.4f %5s %9s\n' "${DESC[$label]}" "${MED[$label]}" "${N[$label]}" "${RSS[$label]}"
  elif [ -n "${WHY[$label]:-}" ]; then
    printf '  %-56s %s\n' "${DESC[$label]}" "${WHY[$label]}"
  fi
done

# value A/B, or n/a and why
ratio() {
  local a=${MED[$1]:-} b=${MED[$2]:-}
  if [ -n "$a" ] && [ -n "$b" ]; then awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }'
  else echo "n/a (${WHY[$1]:-${WHY[$2]:-not measured}})"
  fi
}
row() { # description value goal(≤)
  local ok=""
  case $2 in n/a*) ;; *) ok=$(awk -v v="$2" -v g="$3" 'BEGIN { print (v <= g) ? "met" : "not met" }') ;; esac
  case $2 in
    n/a*) printf '  %-62s %s\n' "$1" "$2" ;;
    *) printf '  %-62s %10s %8s  %s\n' "$1" "$2" "≤ $3" "$ok" ;;
  esac
}
msec() { if [ -n "${MED[$1]:-}" ]; then awk -v s="${MED[$1]}" 'BEGIN { printf "%.1f", s * 1000 }'; else echo "n/a (${WHY[$1]:-not measured})"; fi; }
mib() { if [ -n "${MED[$1]:-}" ] && [ "${RSS[$1]}" != - ]; then echo "${RSS[$1]}"; else echo "n/a (${WHY[$1]:-not measured})"; fi; }

echo
echo "issue 14, measure don't assert (lower is better):"
printf '  %-62s %10s %8s\n' "" "value" "goal"
if [ "$mode" != quick ]; then
  row "REPL: 400 netns() piped / 400 ip netns add processes" "$(ratio repl400 ipadd400)" 1.0
  row "REPL: 1,000 statements / 100 statements" "$(ratio repl1000 repl100)" 11
fi
row "no-change up S($N1,$K1) / first up" "$(ratio np_again_$N1 np_up_$N1)" 0.1
row "up after one changed mapping / first up" "$(ratio np_changed_$N1 np_up_$N1)" 0.1
row "plan scripts/seed.rhai, ms" "$(msec plan_seed)" 20
row "check scripts/seed.rhai, ms" "$(msec check_seed)" 20
row "down S($N1,·) / floor down" "$(ratio np_down_$N1 fl_down_$N1)" 1.1
row "down S($N1,·) / ip netns del loop" "$(ratio np_down_$N1 del_$N1)" 0.4
row "up S($N1,$K1) / floor up S($N1,0)" "$(ratio np_up_$N1 fl_up_$N1)" 1.1
if [ "$mode" != quick ]; then
  row "up S($N3,$K3) on $B3 bridges / floor" "$(ratio np_up_$N3 fl_up_$N3)" 1.3
  row "$K100 DNAT whole up / nft -f of the same map" "$(ratio np_100k nft_100k)" 0.7
  row "peak RSS up S($N3,$K3), MiB" "$(mib np_up_$N3)" 64
  row "peak RSS down S($N3,$K3), MiB" "$(mib np_down_$N3)" 64
  echo
  echo "kernel knobs (issue 14 item 6; no goal):"
  printf '  %-62s %10s\n' "floor lean (no mcast snooping, no IPv6) / floor: up" "$(ratio fllean_up_$N1 fl_up_$N1)"
  printf '  %-62s %10s\n' "floor lean / floor: down" "$(ratio fllean_down_$N1 fl_down_$N1)"
  printf '  %-62s %s\n' "up S($N1,$K1) lean=true / floor lean up" "$(ratio nplean_up_$N1 fllean_up_$N1)"
  printf '  %-62s %s\n' "down S($N1,·) lean=true / floor lean down" "$(ratio nplean_down_$N1 fllean_down_$N1)"
  [ -z "$bulk_b_note" ] || echo "  (S($N3,$K3): $bulk_b_note)"
  echo
  echo "what the floor leaves out: waiting until every link is operationally up, as up does (no goal):"
  printf '  %-62s %10s\n' "floor up --ready / floor up" "$(ratio flready_up_$N1 fl_up_$N1)"
  printf '  %-62s %10s\n' "up S($N1,$K1) / floor up --ready" "$(ratio np_up_$N1 flready_up_$N1)"
fi
if [ -z "$changed_note" ]; then
  echo
  echo "day two once the kernel's post-up IPv6 work is over (15 s later; no goal):"
  printf '  %-62s %10s\n' "no-change up S($N1,$K1) / first up" "$(ratio np_quiet_again_$N1 np_up_$N1)"
  printf '  %-62s %10s\n' "up after one changed mapping / first up" "$(ratio np_quiet_changed_$N1 np_up_$N1)"
fi
if [ "$mode" != table ]; then
  echo
  echo "stock tools:"
  printf '  %-62s %s\n' "up S($N1,$K1) / batch.sh" "$(ratio np_up_$N1 batch_$N1)"
  if [ "$mode" = all ]; then printf '  %-62s %s\n' "up S(100,1000) / seed-shell.sh S(100,1000)" "$(ratio np_up_100 seedshell_100)"; fi
fi
echo
echo "load average: $load_start at start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(( SECONDS - t_start )) s"
