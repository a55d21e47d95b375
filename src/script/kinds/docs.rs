//! The reference text of the new link kinds and of shape() (registered in
//! kinds.rs).

/// ns.macvlan(name, parent) / ns.macvlan(name, parent, opts) → Link
pub const MACVLAN: &str = r#"A macvlan on `parent` in namespace `ns` (`ip link add name link parent
type macvlan mode bridge`): a device of its own, with its own MAC address,
sharing the parent's wire. `parent` is a link handle or the name of a
device that exists in `ns` (adopted, never changed). The new link can then
`move_to` another namespace, as CNI's macvlan plugin does; it is born
there (no create-then-move). Its MTU is the parent's.

Options: `mode`: `"bridge"` (the default: macvlans of one parent reach
each other), `"private"`, `"vepa"` or `"passthru"`. Changing the mode in
the script makes the link again on the next `up` (the kernel cannot change
it in place); `down` deletes it and leaves the parent as it was.

Errors: an unknown mode or option; the parent in another namespace, or
itself a macvlan or vxlan; the name already declared in `ns`; a kernel
without macvlan ("this kernel has no macvlan link kind (CONFIG_MACVLAN)",
before any change).

```rhai
let a = netns("a");
let m = host().macvlan("mv1", "eth0", #{ mode: "bridge" });
m.move_to(a);
m.addr("192.168.1.50/24").up();
```"#;

/// ns.vxlan(name, opts) → Link
pub const VXLAN: &str = r#"A vxlan in namespace `ns` (`ip link add name mtu M type vxlan id ID
remote ADDR dev DEV dstport PORT`): layer 2 over UDP, the building block
for labs across machines. Its MTU is the underlay's less the outer headers
(50 bytes over IPv4, 70 over IPv6; 1500 less them without `dev`), set when
it is made and shown by `plan`; `link.mtu(n)` overrides it.

Options: `id` (the VNI, 0 to 16777215, required); `remote` (a unicast
peer) or `group` (a multicast group); `local` (the source address);
`dev` (the underlay, a link handle or a device name in `ns`); `port` (UDP
port, default 4789); `learning` (default true). Changing any of them makes
the link again on the next `up`.

Errors: no id, or one out of range; both remote and group; a multicast
remote or a unicast group; mixed address families; an unknown option; the
underlay in another namespace; a kernel without vxlan (before any change).

```rhai
let b = netns("b");
let u = veth("u0", b, "u1");
u.addr("10.6.0.1/24").up();
u.peer.addr("10.6.0.2/24").up();
b.vxlan("vx0", #{ id: 42, remote: "10.6.0.1", dev: "u1" }).addr("10.7.0.2/24").up();
host().vxlan("vx0", #{ id: 42, remote: "10.6.0.2", dev: u }).addr("10.7.0.1/24").up();
```"#;

/// ns.tap(name) / ns.tap(name, opts) / ns.tun(name) / ns.tun(name, opts) → Link
pub const TUN: &str = r#"A persistent tap (layer 2, Ethernet frames) or tun (layer 3, IP packets)
device in namespace `ns` (`ip tuntap add dev name mode tap`), for a VM or a
user-space program to open (`/dev/net/tun`, IFF_NO_PI). It has no carrier
until a program holds it open; netplumb does not wait for one. Options:
`owner` and `group` (numeric ids allowed to open it besides root),
`multi_queue` (several fds, one queue each). Changing an option makes the
device again on the next `up`.

Errors: an option that is not an id or a boolean, an unknown option; the
name already declared in `ns`; a kernel without tun/tap (before any change).

```rhai
let vm = netns("vm");
vm.tap("tap0", #{ owner: 1000, multi_queue: true }).addr("10.3.0.1/24").up();
```"#;

/// link.shape(opts) → Link
pub const SHAPE: &str = r#"Shape what the link sends (its root qdisc): `rate` alone (`"10mbit"`,
`"1500kbit"`, `"1gbit"`, or bytes as `"125kbps"`, with `burst` and `limit`
in bytes) is a tbf (`tc qdisc replace dev DEV root tbf rate 10mbit burst
12500 limit 75000`; the bucket defaults to 10 ms at the rate, at least two
frames, the queue to 50 ms); `delay` and `jitter` (`"20ms"`, `"500us"`, or
a number of ms), `loss`, `duplicate`, `corrupt`, `reorder` (percent, 0 to
100) make it a netem (with any rate inside it). A `loss` alone needs no
netem: it is random drop of what the link receives, in the topology's own
nftables table of the link's namespace (`iifname DEV numgen random mod 100
< N drop`, whole percent), so it works on kernels without netem. `shape(#{})` removes the
shaping. A link the topology made has none unless the script says so; an
adopted device's qdisc is changed only when the script asks, and `down`
puts back what was there. `plan` prints the `tc` line; `check` finds a
qdisc changed behind its back.

Errors: a rate that is not one (`"fast"`), a percentage out of range
(`loss: 150`), a jitter or reordering without a delay, an unknown option;
a kernel without the qdisc, at this line before any change ("this kernel
has no netem qdisc (CONFIG_NET_SCH_NETEM)"); an adopted device whose qdisc
netplumb could not put back (not a tbf).

```rhai
v.shape(#{ rate: "10mbit" });
v.peer.shape(#{ delay: "20ms", jitter: "5ms", loss: 1 });
v.peer.shape(#{ loss: 20 });            // nftables, no netem needed
v.shape(#{});
```"#;
