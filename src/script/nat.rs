//! masquerade / snat / dnat, on the host or inside a namespace.

use std::net::IpAddr;

use ipnet::IpNet;
use netplumb_nft::{DnatMapping, L4Proto, NatRule};
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::api::{NsHandle, refused};
use super::registry::Reg;

mod docs;
use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{Cidr, IfName, NsRef, parse_ip};
use crate::run::Runner;
use docs::{DNAT, DNAT_MAP, MASQUERADE, MASQUERADE_OPTS, SNAT, SNAT_OPTS};

type R<T> = Result<T, Box<EvalAltResult>>;

fn prefix(ctx: &NativeCallContext, s: &str) -> R<IpNet> {
    let c = Cidr::parse(s).map_err(|e| fail(ctx, e))?;
    Ok(c.trunc())
}

fn opt_ifname(ctx: &NativeCallContext, opts: &Map, key: &str) -> R<Option<String>> {
    ifname_of(ctx, key, opts.get(key))
}

/// Option `key`'s value `v`, an interface name when given.
fn ifname_of(ctx: &NativeCallContext, key: &str, v: Option<&Dynamic>) -> R<Option<String>> {
    match v {
        None => Ok(None),
        Some(v) => {
            let s = v.clone().into_string().map_err(|_| {
                fail(
                    ctx,
                    format!("option {key} must be an interface name string"),
                )
            })?;
            IfName::new(&s).map_err(|e| fail(ctx, e))?;
            Ok(Some(s))
        }
    }
}

pub(super) fn check_keys(ctx: &NativeCallContext, opts: &Map, allowed: &[&str]) -> R<()> {
    for k in opts.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(fail(
                ctx,
                format!(
                    "unknown option '{k}': expected one of {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// [`parse_ip`] without its error: `parse_to` may try a text in two forms,
/// and the error's message would be built for nothing.
fn ip_of(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// "172.17.0.3:10050", "172.17.0.3", "[fd00::2]:80", "fd00::2".
fn parse_to(ctx: &NativeCallContext, s: &str) -> R<(IpAddr, Option<u16>)> {
    let bad = || {
        fail(
            ctx,
            format!("'{s}' is not a destination: use \"ip\", \"ip:port\" or \"[v6]:port\""),
        )
    };
    // A text with one colon can only be "v4:port": it is split first, not
    // parsed whole as an address before (100,000 mappings parsed each twice).
    let split = s.rsplit_once(':').filter(|(host, _)| !host.contains(':'));
    if split.is_none()
        && let Some(ip) = ip_of(s)
    {
        return Ok((ip, None));
    }
    let (host, port) = split.or_else(|| s.rsplit_once(':')).ok_or_else(bad)?;
    let ip = ip_of(host).ok_or_else(bad)?;
    if ip.is_ipv6() && !host.starts_with('[') {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(fail(ctx, format!("'{s}': port 0 is not a port")));
    }
    Ok((ip, Some(port)))
}

fn port_of(ctx: &NativeCallContext, v: i64) -> R<u16> {
    u16::try_from(v)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| fail(ctx, format!("port {v} is out of range: use 1 to 65535")))
}

pub(super) fn ports(ctx: &NativeCallContext, v: &Dynamic) -> R<(u16, u16)> {
    if let Some(p) = v.clone().try_cast::<i64>() {
        let p = port_of(ctx, p)?;
        return Ok((p, p));
    }
    if let Some(r) = v.clone().try_cast::<std::ops::Range<i64>>() {
        if r.end <= r.start {
            return Err(fail(
                ctx,
                format!("port range {}..{} is empty", r.start, r.end),
            ));
        }
        return Ok((port_of(ctx, r.start)?, port_of(ctx, r.end - 1)?));
    }
    if let Some(r) = v.clone().try_cast::<std::ops::RangeInclusive<i64>>() {
        if r.end() < r.start() {
            return Err(fail(
                ctx,
                format!("port range {}..={} is empty", r.start(), r.end()),
            ));
        }
        return Ok((port_of(ctx, *r.start())?, port_of(ctx, *r.end())?));
    }
    Err(fail(
        ctx,
        format!(
            "port must be a number or a range like 30000..30100, not {}",
            v.type_name()
        ),
    ))
}

/// Declare a NAT rule: the model checks it against the rules before it
/// and switches forwarding on where the rule is.
fn push(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    rule: impl FnOnce(usize) -> NatRule,
) -> R<()> {
    let mut r = lock(rn);
    push_locked(ctx, &mut r, ns, rule)
}

/// [`push`] under the caller's lock.
fn push_locked(
    ctx: &NativeCallContext,
    r: &mut Runner,
    ns: NsRef,
    rule: impl FnOnce(usize) -> NatRule,
) -> R<()> {
    let pos = pos_of(ctx);
    // on_no_site refuses only in a script with sites: its words are not
    // built for the other 100,000 calls
    if r.sites.any() {
        let f = ctx.fn_name();
        super::api::on_no_site(ctx, r, &format!("{f}()"), &super::api::call_on_site(f))?;
    }
    r.topo.add_nat(ns, rule, pos).map_err(|e| refused(ctx, e))
}

fn masquerade(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    cidr: &str,
    opts: &Map,
) -> R<()> {
    check_keys(ctx, opts, &["oif"])?;
    let src = prefix(ctx, cidr)?;
    let oif = opt_ifname(ctx, opts, "oif")?;
    push(ctx, rn, ns, |tag| NatRule::Masquerade { src, oif, tag })
}

fn snat(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    cidr: &str,
    to: &str,
    opts: &Map,
) -> R<()> {
    check_keys(ctx, opts, &["oif"])?;
    let src = prefix(ctx, cidr)?;
    let to = parse_ip(to).map_err(|e| fail(ctx, e))?;
    if to.is_ipv6() != src.addr().is_ipv6() {
        return Err(fail(
            ctx,
            format!(
                "snat of {src} to {to}: the source prefix and the address are of different IP families"
            ),
        ));
    }
    let oif = opt_ifname(ctx, opts, "oif")?;
    push(ctx, rn, ns, |tag| NatRule::Snat { src, to, oif, tag })
}

/// The options of a `dnat(#{ … })` mapping, read in one pass over the map
/// (it is called 100,000 times in a big script).
#[derive(Default)]
struct DnatOpts<'a> {
    port: Option<&'a Dynamic>,
    to: Option<&'a Dynamic>,
    daddr: Option<&'a Dynamic>,
    proto: Option<&'a Dynamic>,
    iif: Option<&'a Dynamic>,
    localhost: Option<&'a Dynamic>,
    hairpin: Option<&'a Dynamic>,
    force: Option<&'a Dynamic>,
}

const DNAT_KEYS: &[&str] = &[
    "port",
    "to",
    "daddr",
    "proto",
    "iif",
    "localhost",
    "hairpin",
    "force",
];

impl<'a> DnatOpts<'a> {
    fn read(ctx: &NativeCallContext, m: &'a Map) -> R<Self> {
        let mut o = DnatOpts::default();
        for (k, v) in m {
            let slot = match k.as_str() {
                "port" => &mut o.port,
                "to" => &mut o.to,
                "daddr" => &mut o.daddr,
                "proto" => &mut o.proto,
                "iif" => &mut o.iif,
                "localhost" => &mut o.localhost,
                "hairpin" => &mut o.hairpin,
                "force" => &mut o.force,
                // the first unknown key, in the words check_keys has
                _ => return check_keys(ctx, m, DNAT_KEYS).map(|()| o),
            };
            *slot = Some(v);
        }
        Ok(o)
    }

    fn get(&self, k: &str) -> Option<&'a Dynamic> {
        match k {
            "localhost" => self.localhost,
            "hairpin" => self.hairpin,
            "force" => self.force,
            _ => None,
        }
    }
}

fn dnat_map(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, m: &Map) -> R<()> {
    let o = DnatOpts::read(ctx, m)?;
    let flag = |k: &str, default: bool| -> R<bool> {
        match o.get(k) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .map_err(|_| fail(ctx, format!("option {k} must be true or false"))),
        }
    };
    let localhost = flag("localhost", false)?;
    let hairpin = flag("hairpin", true)?;
    let force = flag("force", false)?;
    let port = o.port.ok_or_else(|| {
        fail(
            ctx,
            "dnat needs a port: #{ port: 8080, to: \"172.17.0.3:80\" }",
        )
    })?;
    let ports = ports(ctx, port)?;
    let to =
        o.to.and_then(|v| v.clone().into_immutable_string().ok())
            .ok_or_else(|| fail(ctx, "dnat needs to: \"ip\" or \"ip:port\""))?;
    let (to_addr, to_port) = parse_to(ctx, &to)?;
    let daddr = match o.daddr {
        None => None,
        Some(v) => {
            let s = v
                .clone()
                .into_immutable_string()
                .map_err(|_| fail(ctx, "daddr must be an address string"))?;
            Some(parse_ip(&s).map_err(|e| fail(ctx, e))?)
        }
    };
    if let Some(d) = daddr
        && d.is_ipv6() != to_addr.is_ipv6()
    {
        return Err(fail(
            ctx,
            format!("dnat from {d} to {to_addr}: the addresses are of different IP families"),
        ));
    }
    let proto = match o.proto.map(|v| v.clone().into_string()) {
        None => L4Proto::Tcp,
        Some(Ok(p)) if p == "tcp" => L4Proto::Tcp,
        Some(Ok(p)) if p == "udp" => L4Proto::Udp,
        Some(Ok(p)) => {
            return Err(fail(
                ctx,
                format!("proto '{p}' is not supported: use \"tcp\" or \"udp\""),
            ));
        }
        Some(Err(_)) => return Err(fail(ctx, "proto must be \"tcp\" or \"udp\"")),
    };
    let iif = ifname_of(ctx, "iif", o.iif)?;
    let at = localhost.then(|| ns.clone());
    let mut r = lock(rn);
    push_locked(ctx, &mut r, ns, |tag| {
        NatRule::Dnat(DnatMapping {
            proto,
            daddr,
            iif,
            ports,
            to_addr,
            to_port,
            tag,
        })
    })?;
    if !hairpin {
        r.topo.no_hairpin_last();
    }
    if force {
        r.topo.force_last();
    }
    if let Some(at) = at {
        let pos = pos_of(ctx);
        r.topo
            .publish_localhost(&at, to_addr, pos)
            .map_err(|e| refused(ctx, e))?;
    }
    Ok(())
}

fn dnat_simple(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    port: i64,
    to: &str,
) -> R<()> {
    let mut m = Map::new();
    m.insert("port".into(), Dynamic::from(port));
    m.insert("to".into(), Dynamic::from(to.to_string()));
    dnat_map(ctx, rn, ns, &m)
}

/// The host form and the `ns.` form of one NAT function, with one doc.
macro_rules! both {
    ($reg:ident, $runner:ident, $name:literal, [$($p:literal),*], $doc:expr,
     |$ctx:ident, $rn:ident, $ns:ident $(, $a:ident : $t:ty)*| $body:expr) => {{
        let $rn = $runner.clone();
        $reg.func($name, &[$($p),*], "()", $doc)
            .set(move |$ctx: NativeCallContext $(, $a: $t)*| -> R<()> {
                super::api::no_site(&$rn);
                let $ns = NsRef::Host;
                $body
            });
        let $rn = $runner.clone();
        $reg.method($name, "ns: Netns", &[$($p),*], "()", $doc)
            .set(move |$ctx: NativeCallContext, this: &mut NsHandle $(, $a: $t)*| -> R<()> {
                let $ns = this.at(&$rn);
                $body
            });
    }};
}

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("NAT");
    both!(
        reg,
        runner,
        "masquerade",
        ["cidr: string"],
        MASQUERADE,
        |ctx, rn, ns, cidr: &str| masquerade(&ctx, &rn, ns, cidr, &Map::new())
    );
    both!(
        reg,
        runner,
        "masquerade",
        ["cidr: string", "opts: map"],
        MASQUERADE_OPTS,
        |ctx, rn, ns, cidr: &str, opts: Map| masquerade(&ctx, &rn, ns, cidr, &opts)
    );
    both!(
        reg,
        runner,
        "snat",
        ["cidr: string", "to: string"],
        SNAT,
        |ctx, rn, ns, cidr: &str, to: &str| snat(&ctx, &rn, ns, cidr, to, &Map::new())
    );
    both!(
        reg,
        runner,
        "snat",
        ["cidr: string", "to: string", "opts: map"],
        SNAT_OPTS,
        |ctx, rn, ns, cidr: &str, to: &str, opts: Map| snat(&ctx, &rn, ns, cidr, to, &opts)
    );
    both!(
        reg,
        runner,
        "dnat",
        ["port: int", "to: string"],
        DNAT,
        |ctx, rn, ns, port: i64, to: &str| dnat_simple(&ctx, &rn, ns, port, to)
    );
    both!(
        reg,
        runner,
        "dnat",
        ["mapping: map"],
        DNAT_MAP,
        |ctx, rn, ns, m: Map| dnat_map(&ctx, &rn, ns, &m)
    );
}
