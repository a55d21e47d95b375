//! The reference text of the NAT functions (registered in nat.rs).

/// masquerade(cidr) / ns.masquerade(cidr) → ()
pub const MASQUERADE: &str = r#"Masquerade traffic from `cidr` to anywhere outside it (`iptables -t nat -A
POSTROUTING -s cidr ! -d cidr -j MASQUERADE`). Also `ns.masquerade(cidr)`.

Errors: `cidr` is not a prefix.

```rhai
masquerade("172.18.0.0/16");
```"#;

/// masquerade(cidr, opts) / ns.masquerade(cidr, opts) → ()
pub const MASQUERADE_OPTS: &str = r#"With options: `#{ oif: "eth0" }` masquerades only traffic leaving through
interface `oif`.

Errors: an unknown option; `oif` not an interface name.

```rhai
gw.masquerade("10.9.0.0/16", #{ oif: "wan0" });
```"#;

/// snat(cidr, to) / ns.snat(cidr, to) → ()
pub const SNAT: &str = r#"Source-NAT traffic from `cidr` (leaving it) to address `to` (`-j SNAT
--to-source to`). Also `ns.snat(...)`.

Errors: `cidr` not a prefix, `to` not an address, the two of different
families.

```rhai
snat("172.18.0.0/16", "192.168.1.10");
```"#;

/// snat(cidr, to, opts) / ns.snat(cidr, to, opts) → ()
pub const SNAT_OPTS: &str = r#"With options: `#{ oif: "eth0" }`.

```rhai
snat("172.18.0.0/16", "10.201.0.5", #{ oif: "out0" });
```"#;

/// dnat(port, to) / ns.dnat(port, to) → ()
pub const DNAT: &str = r#"Forward TCP connections to `port` on any of the host's addresses to `to`:
`"ip:port"`, `"ip"` (same port) or `"[v6]:port"` (`-p tcp --dport port -j
DNAT --to-destination to`). Connections from the host itself to its own
addresses are mapped too. Many mappings of the same shape become elements
of one nftables map, so ten thousand cost what one does. Also
`ns.dnat(...)`.

Errors: a port outside 1–65535; `to` not a destination; the same port
already mapped elsewhere (both lines are shown).

```rhai
dnat(10050, "172.17.0.3:10050");
dnat(8080, "[fd00::2]:80");
```"#;

/// dnat(mapping) / ns.dnat(mapping) → ()
pub const DNAT_MAP: &str = r#"The general form, a map: `port` (a number, or a range `30000..30100` /
`30000..=30100` — a range to `"ip"` keeps the ports, to `"ip:port"` sends
them all to one port), `to`, and optionally `daddr` (only connections to
that host address), `proto` (`"tcp"`, the default, or `"udp"`), `iif` (only
connections arriving on that interface).

Two more options say how the published port behaves, as Docker's do:
`hairpin` (default `true`) lets the backend and its siblings on the same
bridge reach the port through the host's address (their traffic to it is
masqueraded, and the backend's bridge port gets hairpin mode so it can reach
itself); `localhost: true` makes the port answer on the host's 127.0.0.1
too, by masquerading that traffic out of the backend's link and setting
`net.ipv4.conf.LINK.route_localnet=1` there (an owned sysctl, put back by
`down`). IPv4 only: the kernel never routes `::1` off the host. The
backend's subnet must be declared (an address on a link of that namespace)
before a `localhost` mapping.

When `up` replaces or removes a mapping, the conntrack entries of the old
mapping are deleted in the same run, so a flow that never ends on its own
(a UDP stream) moves to the new backend at once instead of after its
timeout.

Errors: a missing `port` or `to`; an unknown key; an empty range; `daddr`
and `to` of different families; a protocol other than tcp/udp; `localhost`
with an IPv6 backend or with no link on the backend's subnet.

```rhai
dnat(#{ daddr: "10.18.103.2", port: 10050, to: "172.17.0.3:10050", proto: "udp" });
dnat(#{ port: 30000..30100, to: "172.17.0.9" });
dnat(#{ port: 8080, to: "172.30.0.2:80", localhost: true });
```"#;
