#!/usr/bin/env bash
# TCP connections/s through netplumb's DNAT to the LAST of K mappings, for
# K = 1 and K = 10000, in one run, each in its own throwaway namespace; the
# ratio shows whether per-connection cost grows with the number of mappings.
# Mirrors ../shared/bench/dnat-connrate.sh. Usage: bench/connrate.sh [conns]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$here/target/release/netplumb
[ -x "$bin" ] || cargo build --release --manifest-path "$here/Cargo.toml" >&2
conns=${1:-3000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/connrate.rhai" <<'RHAI'
let k = if is_def_var("k") { k } else { 1 };
let srv = netns("srv");
let cli = netns("cli");
let br = bridge("br0");
br.addr("172.18.0.1/16").up();
let vs = veth("vs", srv, "eth0");
br.attach(vs);
vs.up();
vs.peer.addr("172.18.0.2/16").up();
srv.route("default", "172.18.0.1");
let vc = veth("vc", cli, "eth0");
vc.addr("192.168.77.1/24").up();
vc.peer.addr("192.168.77.2/24").up();
cli.route("default", "192.168.77.1");
for j in 0..k { dnat(20000 + j, "172.18.0.2:80"); }
RHAI

run() {
  local k=$1
  unshare --net --mount --propagation private bash -c '
    set -e
    mount -t tmpfs none /run; mkdir -p /run/netns /run/netplumb; ip link set lo up
    "$1" -q up "$2" --set k="$3"
    ip netns exec srv python3 -c "
import socket
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((\"172.18.0.2\",80)); s.listen(512)
while True:
    c,_=s.accept(); c.close()" &
    sleep 0.5
    ip netns exec cli python3 -c "
import socket,time
n=$4; last=20000+$3-1; t=time.perf_counter()
for i in range(n):
    c=socket.create_connection((\"192.168.77.1\",last)); c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b\"\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\"); c.close()
print(\"%.0f\" % (n/(time.perf_counter()-t)))"
    kill %1' _ "$bin" "$tmp/connrate.rhai" "$k" "$conns"
}

one=$(run 1)
many=$(run 10000)
echo "connections/s to the last mapping: K=1 $one, K=10000 $many"
awk -v a="$many" -v b="$one" 'BEGIN { printf "ratio K=10000 / K=1: %.2f (goal ≥ 0.9)\n", a / b }'
