//! allow / deny / isolate: filter rules in the topology's own table.

use ipnet::IpNet;
use netplumb_nft::FilterProto;
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, refused};
use super::nat::{check_keys, ports};
use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{Cidr, NsRef, parse_ip};
use crate::topo::{FilterEnd, FilterKind, FilterSpec};

type R<T> = Result<T, Box<EvalAltResult>>;

/// A namespace, a link, or "10.0.0.0/24" / "10.0.0.5".
fn endpoint(ctx: &NativeCallContext, key: &str, v: &Dynamic) -> R<FilterEnd> {
    if let Some(n) = v.clone().try_cast::<NsHandle>() {
        return match n.ns {
            NsRef::Named(name) => Ok(FilterEnd::Ns(name)),
            NsRef::Host => Err(fail(
                ctx,
                format!(
                    "{key}: host() has no addresses of its own to match; name a link or a subnet"
                ),
            )),
        };
    }
    if let Some(l) = v.clone().try_cast::<LinkHandle>() {
        return Ok(FilterEnd::Link(l.id));
    }
    if let Ok(s) = v.clone().into_string() {
        if let Ok(ip) = parse_ip(&s) {
            let len = if ip.is_ipv4() { 32 } else { 128 };
            let n = IpNet::new(ip, len).map_err(|e| fail(ctx, e))?;
            return Ok(FilterEnd::Net(n));
        }
        let c = Cidr::parse(&s).map_err(|e| fail(ctx, format!("{key}: {e}")))?;
        return Ok(FilterEnd::Net(c.trunc()));
    }
    Err(fail(
        ctx,
        format!(
            "{key} must be a namespace, a link or a subnet string like \"10.0.0.0/24\", not {}",
            v.type_name()
        ),
    ))
}

fn spec(ctx: &NativeCallContext, m: &Map) -> R<FilterSpec> {
    check_keys(ctx, m, &["from", "to", "proto", "port"])?;
    let end = |k: &str| m.get(k).map(|v| endpoint(ctx, k, v)).transpose();
    let proto = match m.get("proto").map(|v| v.clone().into_string()) {
        None => None,
        Some(Ok(p)) if p == "tcp" => Some(FilterProto::Tcp),
        Some(Ok(p)) if p == "udp" => Some(FilterProto::Udp),
        Some(Ok(p)) if p == "icmp" => Some(FilterProto::Icmp),
        Some(_) => return Err(fail(ctx, "proto must be \"tcp\", \"udp\" or \"icmp\"")),
    };
    let ports = m.get("port").map(|p| ports(ctx, p)).transpose()?;
    if ports.is_some() && !matches!(proto, Some(FilterProto::Tcp | FilterProto::Udp)) {
        return Err(fail(ctx, "a port needs proto: \"tcp\" or \"udp\""));
    }
    Ok(FilterSpec {
        from: end("from")?,
        to: end("to")?,
        proto,
        ports,
    })
}

fn add(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, kind: FilterKind) -> R<()> {
    let pos = pos_of(ctx);
    let mut r = lock(rn);
    r.topo
        .add_filter(ns, kind, pos)
        .map_err(|e| refused(ctx, e))
}

pub fn register(engine: &mut Engine, runner: &SharedRunner) {
    for (name, allow) in [("allow", true), ("deny", false)] {
        let kind = move |s| {
            if allow {
                FilterKind::Allow(s)
            } else {
                FilterKind::Deny(s)
            }
        };
        let rn = runner.clone();
        engine.register_fn(name, move |ctx: NativeCallContext, m: Map| -> R<()> {
            let s = spec(&ctx, &m)?;
            add(&ctx, &rn, NsRef::Host, kind(s))
        });
        let rn = runner.clone();
        engine.register_fn(
            name,
            move |ctx: NativeCallContext, this: &mut NsHandle, m: Map| -> R<()> {
                let s = spec(&ctx, &m)?;
                add(&ctx, &rn, this.ns.clone(), kind(s))
            },
        );
    }
    let rn = runner.clone();
    engine.register_fn(
        "isolate",
        move |ctx: NativeCallContext, br: LinkHandle| -> R<()> {
            add(&ctx, &rn, NsRef::Host, FilterKind::Isolate(br.id))
        },
    );
}
