//! allow / deny / isolate: filter rules in the topology's own table.

use ipnet::IpNet;
use netplumb_nft::FilterProto;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, refused};
use super::nat::{check_keys, ports};
use super::registry::Reg;
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

const ALLOW: &str = r#"Accept forwarded traffic matching `rule`, a map with any of `from`, `to`
(each a namespace — every address its links have —, a link — traffic
arriving on / leaving through it, in the rule's namespace —, or a subnet or
address string), `proto` (`"tcp"`, `"udp"` or `"icmp"`) and `port` (a
number or a range, with tcp or udp). A key left out matches everything.
`allow(…)` puts the rule in the host; `ns.allow(…)` in `ns`.

Errors: an unknown key; a port without tcp/udp; a namespace with no address
when the table is built; a link in another namespace than the rule.

```rhai
allow(#{ from: "10.1.0.0/24", to: db, proto: "tcp", port: 5432 });
```"#;

const DENY: &str = r#"Drop forwarded traffic matching `rule` (the same map as `allow`).

```rhai
deny(#{ from: a, to: b, proto: "tcp", port: 81 });   // only port 81 is blocked
```"#;

const ISOLATE: &str = r#"Nothing from outside the bridge reaches the namespaces on it except their
published ports (Docker's drop of unpublished ports); traffic within the
bridge and out of it passes. The rule lives in the bridge's namespace.
`d::network(name, cidr, #{ isolate: true })` does this for a network.

Errors: the link is not a bridge.

```rhai
let br = bridge("web");
isolate(br);
```"#;

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Filter rules");
    for (name, allow, doc) in [("allow", true, ALLOW), ("deny", false, DENY)] {
        let kind = move |s| {
            if allow {
                FilterKind::Allow(s)
            } else {
                FilterKind::Deny(s)
            }
        };
        let rn = runner.clone();
        reg.func(name, &["rule: map"], "()", doc).set(
            move |ctx: NativeCallContext, m: Map| -> R<()> {
                let s = spec(&ctx, &m)?;
                add(&ctx, &rn, NsRef::Host, kind(s))
            },
        );
        let rn = runner.clone();
        reg.method(name, "ns: Netns", &["rule: map"], "()", doc)
            .set(
                move |ctx: NativeCallContext, this: &mut NsHandle, m: Map| -> R<()> {
                    let s = spec(&ctx, &m)?;
                    add(&ctx, &rn, this.at(&rn), kind(s))
                },
            );
    }
    let rn = runner.clone();
    reg.func("isolate", &["bridge: Link"], "()", ISOLATE).set(
        move |ctx: NativeCallContext, br: LinkHandle| -> R<()> {
            add(&ctx, &rn, NsRef::Host, FilterKind::Isolate(br.id))
        },
    );
}
