#!/usr/bin/env bash
# One measurement group of bench/run.sh, run inside a fresh network + mount
# namespace (run.sh starts it under `unshare --net --mount`): a tmpfs on /run,
# lo up, then the steps of FILE, one a line, KIND<TAB>LABEL<TAB>COMMAND:
#   u  untimed setup or cleanup
#   t  timed (wall clock around `eval`, no extra process)
#   r  timed, and its peak RSS (through /usr/bin/time: a process more)
# Prints "LABEL MICROSECONDS RSS_KB" for each timed step (RSS_KB "-" for t).
# A step that fails (or times out: exit 124) prints "LABEL FAIL reason" and
# every later timed step "LABEL FAIL after LABEL0: reason", without running.
set -u
mount -t tmpfs none /run && mkdir -p /run/netns /run/netplumb && ip link set lo up || exit 1
failed=""
while IFS=$'\t' read -r kind label cmd <&3; do
  if [ -n "$failed" ]; then
    [ "$kind" = u ] || echo "$label FAIL $failed"
    continue
  fi
  s=$EPOCHREALTIME
  case $kind in
    u|t) eval "$cmd" </dev/null >/dev/null 2>/run/.err; rc=$? ;;
    r) /usr/bin/time -f %M -o /run/.rss bash -c "$cmd" </dev/null >/dev/null 2>/run/.err; rc=$? ;;
    *) echo "$label FAIL bad step kind $kind"; exit 0 ;;
  esac
  e=$EPOCHREALTIME
  if [ "$rc" = 124 ]; then
    echo "$label TIMEOUT"; failed="after $label timed out"
  elif [ "$rc" != 0 ]; then
    why=$(grep -v '^[[:space:]]*$' /run/.err | head -n 3 | tr -s ' \n' ' ')
    why="exit $rc: ${why:-no message}"
    [ "$kind" = u ] || echo "$label FAIL $why"
    failed="after $label: $why"
  else
    case $kind in
      t) echo "$label $(( ${e/./} - ${s/./} )) -" ;;
      r) echo "$label $(( ${e/./} - ${s/./} )) $(tail -n 1 /run/.rss)" ;;
    esac
  fi
done 3< "$1"
