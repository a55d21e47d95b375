//! Address arithmetic on CIDRs for scripts and the bundled stdlib
//! (`cidr_host`, `cidr_subnet`, `cidr_cover`, …): pure functions on
//! strings, registered once with their reference text. None of them changes
//! the topology.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use rhai::{Array, Dynamic, EvalAltResult, NativeCallContext};

use super::fail;
use super::registry::Reg;
use crate::model::{Cidr, parse_ip};

type R<T> = Result<T, Box<EvalAltResult>>;

/// A counter shared by every copy of the value holding it: `docker::network`
/// keeps its next free host number in one, so copies of the network map
/// still allocate distinct addresses.
struct Net {
    base: u128,
    len: u32,
    bits: u32,
    v6: bool,
}

impl Net {
    fn parse(ctx: &NativeCallContext, s: &str) -> R<Self> {
        let c = Cidr::parse(s).map_err(|e| fail(ctx, e))?;
        let n = c.trunc();
        let (base, bits, v6) = match n.network() {
            IpAddr::V4(a) => (u128::from(u32::from(a)), 32, false),
            IpAddr::V6(a) => (u128::from(a), 128, true),
        };
        Ok(Self {
            base,
            len: u32::from(n.prefix_len()),
            bits,
            v6,
        })
    }
    /// log2 of the number of addresses.
    fn host_bits(&self) -> u32 {
        self.bits - self.len
    }
    fn ip(&self, v: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(v))
        } else {
            // The value stays below 2^32 for v4 prefixes: truncation is exact.
            IpAddr::V4(Ipv4Addr::from(v as u32))
        }
    }
    fn size_text(&self) -> String {
        match 1u128.checked_shl(self.host_bits()) {
            Some(n) if self.host_bits() < 128 => format!("{n} addresses"),
            _ => "2^128 addresses".into(),
        }
    }
    fn text(&self) -> String {
        format!("{}/{}", self.ip(self.base), self.len)
    }
    /// Address number `n` of the prefix (negative: from the end, -1 = last).
    fn host(&self, ctx: &NativeCallContext, n: i64) -> R<u128> {
        let hb = self.host_bits();
        let size = if hb >= 128 { u128::MAX } else { 1u128 << hb };
        let off = if n >= 0 {
            u128::from(n.unsigned_abs())
        } else {
            size.checked_sub(u128::from(n.unsigned_abs()))
                .ok_or_else(|| self.out_of_range(ctx, n))?
        };
        if hb < 128 && off >= size {
            return Err(self.out_of_range(ctx, n));
        }
        Ok(self.base + off)
    }
    fn out_of_range(&self, ctx: &NativeCallContext, n: i64) -> Box<EvalAltResult> {
        fail(
            ctx,
            format!(
                "host number {n} is outside {} ({}): use 0 to size-1, or negative numbers from the end",
                self.text(),
                self.size_text()
            ),
        )
    }
    /// The `i`-th subnet of length `new_len` inside this prefix.
    fn subnet(&self, ctx: &NativeCallContext, new_len: i64, i: i64) -> R<Net> {
        let nl = u32::try_from(new_len)
            .ok()
            .filter(|l| *l >= self.len && *l <= self.bits)
            .ok_or_else(|| {
                fail(
                    ctx,
                    format!(
                        "subnet length /{new_len} does not fit in {}: use /{} to /{}",
                        self.text(),
                        self.len,
                        self.bits
                    ),
                )
            })?;
        let count_bits = nl - self.len;
        let ok = u128::try_from(i)
            .ok()
            .filter(|i| count_bits >= 128 || *i < (1u128 << count_bits));
        let i = ok.ok_or_else(|| {
            fail(
                ctx,
                format!(
                    "{} has {} subnets of length /{nl}: number {i} is not one of them",
                    self.text(),
                    if count_bits >= 64 {
                        format!("2^{count_bits}")
                    } else {
                        (1u128 << count_bits).to_string()
                    }
                ),
            )
        })?;
        let shift = self.bits - nl;
        let off = if shift >= 128 { 0 } else { i << shift };
        Ok(Net {
            base: self.base + off,
            len: nl,
            bits: self.bits,
            v6: self.v6,
        })
    }
}

/// The fewest aligned prefixes that cover subnets `from..=to` (all of
/// length `new_len`) of `net`, in address order.
fn cover(ctx: &NativeCallContext, net: &Net, new_len: i64, from: i64, to: i64) -> R<Array> {
    if to < from {
        return Ok(Array::new());
    }
    // Validates the length and both ends.
    let first = net.subnet(ctx, new_len, from)?;
    net.subnet(ctx, new_len, to)?;
    let nl = first.len;
    // Work in subnet numbers: blocks of 2^k subnets aligned on 2^k.
    let mut out = Array::new();
    let (mut lo, hi) = (from as u128, to as u128);
    let shift = net.bits - nl;
    while lo <= hi {
        let mut k = 0u32;
        while k < nl - net.len && k + 1 < 128 {
            let size = 1u128 << (k + 1);
            let fits = lo % size == 0 && lo.checked_add(size - 1).is_some_and(|end| end <= hi);
            if !fits {
                break;
            }
            k += 1;
        }
        let base = net.base + if shift >= 128 { 0 } else { lo << shift };
        out.push(Dynamic::from(format!("{}/{}", net.ip(base), nl - k)));
        match lo.checked_add(1u128 << k) {
            Some(next) => lo = next,
            None => break,
        }
    }
    Ok(out)
}

fn cidr_ip_only(ctx: &NativeCallContext, s: &str) -> R<String> {
    if let Ok(ip) = parse_ip(s) {
        return Ok(ip.to_string());
    }
    Cidr::parse(s)
        .map(|c| c.addr().to_string())
        .map_err(|e| fail(ctx, e))
}

fn contains(ctx: &NativeCallContext, cidr: &str, ip: &str) -> R<bool> {
    let c = Cidr::parse(cidr).map_err(|e| fail(ctx, e))?;
    let ip = match parse_ip(ip) {
        Ok(ip) => ip,
        Err(_) => Cidr::parse(ip).map_err(|e| fail(ctx, e))?.addr(),
    };
    let n: IpNet = c.trunc();
    Ok(n.contains(&ip))
}

pub fn register(reg: &mut Reg) {
    reg.section("Address arithmetic");
    reg.func(
        "cidr_host",
        &["cidr: string", "n: int"],
        "string",
        r#"Address number `n` of the network, with the network's prefix length: what
`.addr()` takes. `n` counts from the network address (0); negative numbers
count from the end (-1 is the last address).

Errors: `cidr` not a prefix; `n` outside the network.

```rhai
cidr_host("172.30.0.0/16", 1)      // "172.30.0.1/16"
cidr_host("10.0.0.0/24", -2)       // "10.0.0.254/24"
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str, n: i64| -> R<String> {
        let net = Net::parse(&ctx, cidr)?;
        let v = net.host(&ctx, n)?;
        Ok(format!("{}/{}", net.ip(v), net.len))
    });
    reg.func(
        "cidr_ip",
        &["cidr: string", "n: int"],
        "string",
        r#"Address number `n`, without the prefix length: what `route` and `dnat`
take.

```rhai
cidr_ip("172.30.0.0/16", 1)        // "172.30.0.1"
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str, n: i64| -> R<String> {
        let net = Net::parse(&ctx, cidr)?;
        let v = net.host(&ctx, n)?;
        Ok(net.ip(v).to_string())
    });
    reg.func(
        "cidr_ip",
        &["cidr: string"],
        "string",
        r#"The address part of `"addr/len"` (an address alone is returned as is).

```rhai
cidr_ip("172.30.0.7/16")           // "172.30.0.7"
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str| cidr_ip_only(&ctx, cidr));
    reg.func(
        "cidr_network",
        &["cidr: string"],
        "string",
        r#"The network itself, host bits cleared.

```rhai
cidr_network("172.30.9.7/16")      // "172.30.0.0/16"
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str| -> R<String> { Ok(Net::parse(&ctx, cidr)?.text()) });
    reg.func(
        "cidr_prefix_len",
        &["cidr: string"],
        "int",
        r#"The prefix length.

```rhai
cidr_prefix_len("172.30.0.0/16")   // 16
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str| -> R<i64> {
        Ok(i64::from(Net::parse(&ctx, cidr)?.len))
    });
    reg.func(
        "cidr_size",
        &["cidr: string"],
        "int",
        r#"How many addresses the network has (capped at the largest integer for
huge IPv6 prefixes).

```rhai
cidr_size("10.0.0.0/30")           // 4
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str| -> R<i64> {
        let hb = Net::parse(&ctx, cidr)?.host_bits();
        // Past 2^62 addresses the exact number is of no use to a script.
        Ok(if hb >= 63 { i64::MAX } else { 1i64 << hb })
    });
    reg.func(
        "cidr_subnet",
        &["cidr: string", "len: int", "i: int"],
        "string",
        r#"Subnet number `i` (from 0) of prefix length `len` inside `cidr`.

Errors: `len` shorter than the network's or longer than the address; `i`
past the last subnet.

```rhai
cidr_subnet("10.100.0.0/16", 24, 7)    // "10.100.7.0/24"
cidr_subnet("10.100.7.0/24", 30, 1)    // "10.100.7.4/30"
```"#,
    )
    .set(
        |ctx: NativeCallContext, cidr: &str, new_len: i64, i: i64| -> R<String> {
            Ok(Net::parse(&ctx, cidr)?.subnet(&ctx, new_len, i)?.text())
        },
    );
    reg.func(
        "cidr_cover",
        &["cidr: string", "len: int", "from: int", "to: int"],
        "array",
        r#"The fewest prefixes that cover subnets `from` to `to` (inclusive) of
length `len` inside `cidr`: one route each instead of one per subnet.
Empty when `to < from`.

```rhai
cidr_cover("10.100.0.0/16", 24, 1, 6)
// ["10.100.1.0/24", "10.100.2.0/23", "10.100.4.0/23", "10.100.6.0/24"]
```"#,
    )
    .set(
        |ctx: NativeCallContext, cidr: &str, new_len: i64, from: i64, to: i64| -> R<Array> {
            let net = Net::parse(&ctx, cidr)?;
            cover(&ctx, &net, new_len, from, to)
        },
    );
    reg.func(
        "cidr_contains",
        &["cidr: string", "addr: string"],
        "bool",
        r#"Whether the network contains the address (`addr` may carry a prefix
length, which is ignored).

```rhai
cidr_contains("10.0.0.0/8", "10.2.3.4")   // true
```"#,
    )
    .set(|ctx: NativeCallContext, cidr: &str, ip: &str| contains(&ctx, cidr, ip));
}

#[cfg(test)]
mod tests {
    use rhai::Engine;

    fn eval(src: &str) -> Result<String, String> {
        let mut e = Engine::new();
        let mut registry = crate::script::registry::Registry::default();
        let mut reg = crate::script::registry::Reg::new(&mut e, &mut registry);
        super::register(&mut reg);
        crate::script::util::register(&mut reg, None);
        e.eval::<rhai::Dynamic>(src)
            .map(|d| d.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn hosts_and_parts() {
        assert_eq!(
            eval(r#"cidr_host("172.30.0.0/16", 1)"#).unwrap(),
            "172.30.0.1/16"
        );
        assert_eq!(
            eval(r#"cidr_host("172.30.5.9/16", 258)"#).unwrap(),
            "172.30.1.2/16"
        );
        assert_eq!(
            eval(r#"cidr_host("10.0.0.0/24", -2)"#).unwrap(),
            "10.0.0.254/24"
        );
        assert_eq!(
            eval(r#"cidr_ip("172.30.0.0/16", 2)"#).unwrap(),
            "172.30.0.2"
        );
        assert_eq!(eval(r#"cidr_ip("172.30.0.7/16")"#).unwrap(), "172.30.0.7");
        assert_eq!(eval(r#"cidr_ip("fd00::1/64", 16)"#).unwrap(), "fd00::10");
        assert_eq!(
            eval(r#"cidr_network("172.30.9.7/16")"#).unwrap(),
            "172.30.0.0/16"
        );
        assert_eq!(eval(r#"cidr_prefix_len("172.30.9.7/16")"#).unwrap(), "16");
        assert_eq!(eval(r#"cidr_size("10.0.0.0/30")"#).unwrap(), "4");
        assert_eq!(
            eval(r#"cidr_contains("10.0.0.0/8", "10.2.3.4")"#).unwrap(),
            "true"
        );
        assert_eq!(
            eval(r#"cidr_contains("10.0.0.0/8", "11.2.3.4")"#).unwrap(),
            "false"
        );
        let e = eval(r#"cidr_host("10.0.0.0/30", 4)"#).unwrap_err();
        assert!(e.contains("outside 10.0.0.0/30 (4 addresses)"), "{e}");
        let e = eval(r#"cidr_host("10.0.0/30", 1)"#).unwrap_err();
        assert!(e.contains("not an address with a prefix length"), "{e}");
    }

    #[test]
    fn subnets_and_covers() {
        assert_eq!(
            eval(r#"cidr_subnet("10.100.0.0/16", 24, 7)"#).unwrap(),
            "10.100.7.0/24"
        );
        assert_eq!(
            eval(r#"cidr_subnet("10.100.0.0/16", 30, 3)"#).unwrap(),
            "10.100.0.12/30"
        );
        assert!(eval(r#"cidr_subnet("10.100.0.0/16", 24, 256)"#).is_err());
        assert!(eval(r#"cidr_subnet("10.100.0.0/16", 8, 0)"#).is_err());
        assert_eq!(
            eval(r#"cidr_cover("10.100.0.0/16", 24, 1, 6)"#).unwrap(),
            r#"["10.100.1.0/24", "10.100.2.0/23", "10.100.4.0/23", "10.100.6.0/24"]"#
        );
        assert_eq!(
            eval(r#"cidr_cover("10.100.0.0/16", 24, 0, 255)"#).unwrap(),
            r#"["10.100.0.0/16"]"#
        );
        assert_eq!(
            eval(r#"cidr_cover("10.100.0.0/16", 24, 5, 4)"#).unwrap(),
            "[]"
        );
        assert_eq!(
            eval(r#"cidr_cover("fd00::/48", 64, 2, 3)"#).unwrap(),
            r#"["fd00:0:0:2::/63"]"#
        );
    }

    #[test]
    fn counter_is_shared_by_copies() {
        let src = r#"
            let m = #{ c: counter(2) };
            let copy = m;
            let a = copy.c.next();
            let b = m.c.next();
            `${a} ${b} ${m.c.value}`
        "#;
        assert_eq!(eval(src).unwrap(), "2 3 4");
    }

    #[test]
    fn read_file_names_the_path() {
        let e = eval(r#"read_file("no-such-table.csv")"#).unwrap_err();
        assert!(e.contains("cannot read no-such-table.csv"), "{e}");
    }
}
