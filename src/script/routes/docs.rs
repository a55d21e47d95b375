//! The reference text of ns.route(dest, opts) and ns.rule(opts)
//! (registered in routes.rs).

/// ns.route(dest, opts) → ()
pub const ROUTE: &str = r#"A route of any kind in namespace `ns` (`ip route add …`), IPv4 or IPv6:
`dest` is `"default"` or a prefix. Options: `via` (gateway), `dev` (a
device name or link handle: `#{ dev: "eth0" }` alone is a device route, as
CNI's ptp plugin makes), `metric`, `src` (preferred source), `table` (a
number, `"main"`, or a name from /etc/iproute2/rt_tables), `onlink`,
`type` (`"unicast"`, `"blackhole"`, `"unreachable"`, `"prohibit"`), `mtu`,
and `nexthops: [#{ via, dev, weight }, …]` for ECMP. The kernel keys a
route by table, destination and metric: an edit of the script that keeps
the key changes the route in place (`ip route replace`) on the next `up`;
`check` reports one that reads back otherwise. The family of `"default"`
follows `via`, the first next hop's via or `src` (IPv4 without them).

Errors: a blackhole, unreachable or prohibit route with a via, dev or next
hops; a unicast route with none of them; a next hop with neither via nor
dev, or a weight outside 1 to 256; mixed families; an unknown option, type
or table name; another route with the same key declared; a route with that
key already in the kernel and not made by this topology (before any
change).

```rhai
r.route("192.0.2.0/24", #{ dev: "eth0" });
r.route("198.51.100.0/24", #{ type: "blackhole" });
r.route("203.0.113.0/24", #{ nexthops: [#{ via: "10.1.0.1" }, #{ via: "10.2.0.1", weight: 2 }] });
r.route("default", #{ via: "10.2.0.1", table: 100 });
```"#;

/// ns.rule(opts) → ()
pub const RULE: &str = r#"A policy routing rule in namespace `ns` (`ip rule add …`). Options: `from`,
`to` (prefixes or addresses), `iif`, `oif` (device names), `fwmark`,
`priority` (1 to 32765, required: rules are tried in its order), and
`table` (number or name) or `type` (`"blackhole"`, `"unreachable"`,
`"prohibit"`); `v6: true` for an IPv6 rule without `from` or `to`. A rule
the script no longer declares, or declares otherwise, is deleted on the
next `up`.

Errors: no priority, or one the kernel's own rules hold (0, 32766, 32767);
both a table and a type, or neither; `from` and `to` of two families; an
unknown option.

```rhai
r.rule(#{ from: "10.2.0.0/24", table: 100, priority: 1000 });
r.rule(#{ fwmark: 7, type: "prohibit", priority: 800 });
```"#;
