//! Namespaces, links, addresses, routes, sysctls, exec and ping. Every
//! function here only changes the desired topology (with the script
//! position of the call); `exec` and `ping` converge the kernel first.

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{Cidr, IfName, InvalidValue, NsName, NsRef, RouteDest, parse_ip};
use crate::run::Runner;
use crate::topo::{AddrDecl, LinkDecl, LinkId, LinkKind, RouteDecl, SysctlDecl};

type R<T> = Result<T, Box<EvalAltResult>>;

/// A namespace as scripts see it: `netns("foons")`, `host()`.
#[derive(Debug, Clone, PartialEq)]
pub struct NsHandle {
    pub ns: NsRef,
}

/// A link as scripts see it: a veth end, a bridge, or an adopted device.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkHandle {
    pub id: LinkId,
}

fn bad(ctx: &NativeCallContext, e: InvalidValue) -> Box<EvalAltResult> {
    fail(ctx, e)
}

fn ifname(ctx: &NativeCallContext, s: &str) -> R<IfName> {
    IfName::new(s).map_err(|e| bad(ctx, e))
}

/// Declare a new link, refusing a name already declared in that namespace.
fn declare(
    ctx: &NativeCallContext,
    r: &mut Runner,
    kind: LinkKind,
    ns: &NsRef,
    name: &IfName,
) -> R<LinkId> {
    if let Some(other) = r.topo.link_at(ns, name) {
        let prev = &r.topo.links[other];
        // Declaring the same bridge (add_bridge refused any other kind) or
        // adopting the same device twice is harmless: same handle.
        if matches!(kind, LinkKind::Existing | LinkKind::Bridge) {
            return Ok(other);
        }
        return Err(fail(
            ctx,
            format!(
                "netns {ns} already has a link named {name} (declared at {})",
                prev.pos
            ),
        ));
    }
    check_limit(ctx, r)?;
    r.topo.links.push(LinkDecl {
        kind,
        ns: ns.clone(),
        name: name.clone(),
        up: None,
        mtu: None,
        master: None,
        stp: None,
        pos: pos_of(ctx),
        set_pos: Default::default(),
    });
    Ok(r.topo.links.len() - 1)
}

pub(crate) fn check_limit(ctx: &NativeCallContext, r: &Runner) -> R<()> {
    let limit = ctx.engine().max_operations();
    if limit > 0 && r.topo.size() as u64 >= limit {
        return Err(fail(
            ctx,
            format!(
                "the script declared more than {limit} objects: stopped (raise --max-ops if this is intended)"
            ),
        ));
    }
    Ok(())
}

fn add_veth(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    a: &str,
    pns: NsRef,
    b: &str,
) -> R<LinkHandle> {
    let a = ifname(ctx, a)?;
    let b = ifname(ctx, b)?;
    if ns == pns && a == b {
        return Err(fail(
            ctx,
            format!("a veth pair needs two different names in netns {ns}: both ends are {a}"),
        ));
    }
    let mut r = lock(rn);
    for (n, l) in [(&ns, &a), (&pns, &b)] {
        if let Some(other) = r.topo.link_at(n, l) {
            return Err(fail(
                ctx,
                format!(
                    "netns {n} already has a link named {l} (declared at {})",
                    r.topo.links[other].pos
                ),
            ));
        }
    }
    let id = declare(ctx, &mut r, LinkKind::Veth { peer: usize::MAX }, &ns, &a)?;
    let pid = declare(ctx, &mut r, LinkKind::Veth { peer: id }, &pns, &b)?;
    r.topo.links[id].kind = LinkKind::Veth { peer: pid };
    Ok(LinkHandle { id })
}

fn add_bridge(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, name: &str) -> R<LinkHandle> {
    let name = ifname(ctx, name)?;
    let mut r = lock(rn);
    if let Some(other) = r.topo.link_at(&ns, &name)
        && r.topo.links[other].kind != LinkKind::Bridge
    {
        return Err(fail(
            ctx,
            format!(
                "netns {ns} already has a link named {name} (declared at {}), not a bridge",
                r.topo.links[other].pos
            ),
        ));
    }
    let id = declare(ctx, &mut r, LinkKind::Bridge, &ns, &name)?;
    Ok(LinkHandle { id })
}

fn ns_of(rn: &SharedRunner, l: &LinkHandle) -> NsRef {
    lock(rn).topo.links[l.id].ns.clone()
}

/// Default limit for `exec`: generous, but a hung command cannot hang a run.
const EXEC_TIMEOUT_S: f64 = 60.0;

fn exec_result(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: &NsRef,
    cmd: &str,
    timeout_s: f64,
) -> R<Map> {
    if !(timeout_s > 0.0 && timeout_s <= 86_400.0) {
        return Err(fail(
            ctx,
            format!("exec timeout {timeout_s} s is out of range: use 0 < timeout ≤ 86400"),
        ));
    }
    let mut r = lock(rn);
    flush(ctx, &mut r)?;
    r.settle();
    let out = r
        .kernel()
        .exec(ns, cmd, std::time::Duration::from_secs_f64(timeout_s))
        .map_err(|e| fail(ctx, format!("exec in netns {ns}: {e}")))?;
    let mut m = Map::new();
    m.insert("status".into(), Dynamic::from(out.status));
    m.insert("stdout".into(), Dynamic::from(out.stdout));
    m.insert("stderr".into(), Dynamic::from(out.stderr));
    Ok(m)
}

/// Converge before asking the kernel. A failure is kept in the runner so the
/// edge reports it at the op's own script line, not at this call.
fn flush(ctx: &NativeCallContext, r: &mut Runner) -> R<()> {
    match r.flush() {
        Ok(_) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            r.failed = Some(e);
            Err(fail(ctx, msg))
        }
    }
}

fn ping(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, addr: &str) -> R<bool> {
    let ip = parse_ip(addr).map_err(|e| bad(ctx, e))?;
    let mut r = lock(rn);
    flush(ctx, &mut r)?;
    r.settle();
    r.kernel()
        .ping(ns, ip)
        .map_err(|e| fail(ctx, format!("ping from netns {ns}: {e}")))
}

fn sysctl(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, key: &str, value: &str) -> R<()> {
    let ok = !key.is_empty()
        && !key.contains("..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !ok {
        return Err(fail(
            ctx,
            format!("'{key}' is not a sysctl name (like net.ipv4.ip_forward)"),
        ));
    }
    let key = key.replace('/', ".");
    let mut r = lock(rn);
    check_limit(ctx, &r)?;
    r.topo.sysctls.push(SysctlDecl {
        ns,
        key,
        value: value.trim().to_string(),
        pos: pos_of(ctx),
    });
    Ok(())
}

fn route(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, dest: &str, via: &str) -> R<()> {
    let via = parse_ip(via).map_err(|e| bad(ctx, e))?;
    let dest = RouteDest::parse(dest, &via).map_err(|e| bad(ctx, e))?;
    let mut r = lock(rn);
    check_limit(ctx, &r)?;
    if r.topo
        .routes
        .iter()
        .any(|x| x.ns == ns && x.dest == dest && x.via == via)
    {
        return Ok(());
    }
    if let Some(x) = r.topo.routes.iter().find(|x| x.ns == ns && x.dest == dest) {
        return Err(fail(
            ctx,
            format!(
                "netns {ns} already has a route to {dest} (via {}, declared at {})",
                x.via, x.pos
            ),
        ));
    }
    r.topo.routes.push(RouteDecl {
        ns,
        dest,
        via,
        pos: pos_of(ctx),
    });
    Ok(())
}

fn set_link(rn: &SharedRunner, l: &LinkHandle, f: impl FnOnce(&mut LinkDecl)) -> LinkHandle {
    let mut r = lock(rn);
    f(&mut r.topo.links[l.id]);
    l.clone()
}

pub fn register(engine: &mut Engine, runner: &SharedRunner) {
    engine.register_type_with_name::<NsHandle>("Netns");
    engine.register_type_with_name::<LinkHandle>("Link");

    let rn = runner.clone();
    engine.register_fn(
        "netns",
        move |ctx: NativeCallContext, name: &str| -> R<NsHandle> {
            let n = NsName::new(name).map_err(|e| bad(&ctx, e))?;
            let mut r = lock(&rn);
            if !r.topo.has_ns(&n) {
                check_limit(&ctx, &r)?;
                r.topo.namespaces.push((n.clone(), pos_of(&ctx)));
            }
            Ok(NsHandle {
                ns: NsRef::Named(n),
            })
        },
    );
    engine.register_fn("host", || NsHandle { ns: NsRef::Host });
    engine.register_get("name", |n: &mut NsHandle| match &n.ns {
        NsRef::Host => String::new(),
        NsRef::Named(x) => x.to_string(),
    });
    engine.register_fn("to_string", |n: &mut NsHandle| format!("netns {}", n.ns));
    engine.register_fn("to_debug", |n: &mut NsHandle| format!("netns {}", n.ns));

    // veth(a, b): both ends in the host; veth(a, ns, b): peer inside ns.
    let rn = runner.clone();
    engine.register_fn("veth", move |ctx: NativeCallContext, a: &str, b: &str| {
        add_veth(&ctx, &rn, NsRef::Host, a, NsRef::Host, b)
    });
    let rn = runner.clone();
    engine.register_fn(
        "veth",
        move |ctx: NativeCallContext, a: &str, ns: NsHandle, b: &str| {
            add_veth(&ctx, &rn, NsRef::Host, a, ns.ns, b)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "veth",
        move |ctx: NativeCallContext, this: &mut NsHandle, a: &str, other: NsHandle, b: &str| {
            add_veth(&ctx, &rn, this.ns.clone(), a, other.ns, b)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "veth",
        move |ctx: NativeCallContext, this: &mut NsHandle, a: &str, b: &str| {
            add_veth(&ctx, &rn, this.ns.clone(), a, this.ns.clone(), b)
        },
    );
    let rn = runner.clone();
    engine.register_fn("bridge", move |ctx: NativeCallContext, name: &str| {
        add_bridge(&ctx, &rn, NsRef::Host, name)
    });
    let rn = runner.clone();
    engine.register_fn(
        "bridge",
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str| {
            add_bridge(&ctx, &rn, this.ns.clone(), name)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "link",
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str| -> R<LinkHandle> {
            let name = ifname(&ctx, name)?;
            let mut r = lock(&rn);
            let id = declare(&ctx, &mut r, LinkKind::Existing, &this.ns, &name)?;
            Ok(LinkHandle { id })
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "route",
        move |ctx: NativeCallContext, this: &mut NsHandle, dest: &str, via: &str| {
            route(&ctx, &rn, this.ns.clone(), dest, via)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "sysctl",
        move |ctx: NativeCallContext, this: &mut NsHandle, key: &str, value: &str| {
            sysctl(&ctx, &rn, this.ns.clone(), key, value)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "sysctl",
        move |ctx: NativeCallContext, this: &mut NsHandle, key: &str, value: i64| {
            sysctl(&ctx, &rn, this.ns.clone(), key, &value.to_string())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "exec",
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: &str| {
            exec_result(&ctx, &rn, &this.ns, cmd, EXEC_TIMEOUT_S)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "exec",
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: &str, opts: Map| -> R<Map> {
            if let Some(k) = opts.keys().find(|k| k.as_str() != "timeout") {
                return Err(fail(
                    &ctx,
                    format!("unknown exec option '{k}': expected timeout"),
                ));
            }
            let t = match opts.get("timeout") {
                None => EXEC_TIMEOUT_S,
                Some(v) => v
                    .as_float()
                    .or_else(|_| v.as_int().map(|i| i as f64))
                    .map_err(|_| fail(&ctx, "exec option timeout is a number of seconds"))?,
            };
            exec_result(&ctx, &rn, &this.ns, cmd, t)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "ping",
        move |ctx: NativeCallContext, this: &mut NsHandle, addr: &str| {
            ping(&ctx, &rn, &this.ns, addr)
        },
    );

    // Link handles.
    let rn = runner.clone();
    engine.register_get("name", move |l: &mut LinkHandle| {
        lock(&rn).topo.links[l.id].name.to_string()
    });
    let rn = runner.clone();
    engine.register_get("ns", move |l: &mut LinkHandle| NsHandle {
        ns: ns_of(&rn, l),
    });
    let rn = runner.clone();
    engine.register_fn("to_string", move |l: &mut LinkHandle| {
        let r = lock(&rn);
        let d = &r.topo.links[l.id];
        format!("link {}:{}", d.ns, d.name)
    });
    let rn = runner.clone();
    engine.register_get("peer", move |l: &mut LinkHandle| -> R<LinkHandle> {
        match lock(&rn).topo.links[l.id].kind {
            LinkKind::Veth { peer } => Ok(LinkHandle { id: peer }),
            _ => Err("only a veth end has a peer".into()),
        }
    });
    let rn = runner.clone();
    engine.register_fn(
        "addr",
        move |ctx: NativeCallContext, l: &mut LinkHandle, cidr: &str| -> R<LinkHandle> {
            let cidr = Cidr::parse(cidr).map_err(|e| bad(&ctx, e))?;
            let mut r = lock(&rn);
            check_limit(&ctx, &r)?;
            if let Some(a) = r.topo.addrs.iter().find(|a| {
                a.cidr.addr() == cidr.addr() && r.topo.links[a.link].ns == r.topo.links[l.id].ns
            }) {
                if a.link == l.id && a.cidr == cidr {
                    return Ok(l.clone());
                }
                return Err(fail(
                    &ctx,
                    format!(
                        "address {} is already on {} in netns {} (declared at {})",
                        cidr.addr(),
                        r.topo.links[a.link].name,
                        r.topo.links[a.link].ns,
                        a.pos
                    ),
                ));
            }
            r.topo.addrs.push(AddrDecl {
                link: l.id,
                cidr,
                pos: pos_of(&ctx),
            });
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn("up", move |ctx: NativeCallContext, l: &mut LinkHandle| {
        set_link(&rn, l, |d| {
            d.up = Some(true);
            d.set_pos.up = Some(pos_of(&ctx));
        })
    });
    let rn = runner.clone();
    engine.register_fn("down", move |ctx: NativeCallContext, l: &mut LinkHandle| {
        set_link(&rn, l, |d| {
            d.up = Some(false);
            d.set_pos.up = Some(pos_of(&ctx));
        })
    });
    let rn = runner.clone();
    engine.register_fn(
        "mtu",
        move |ctx: NativeCallContext, l: &mut LinkHandle, mtu: i64| -> R<LinkHandle> {
            let m = u32::try_from(mtu)
                .ok()
                .filter(|m| (68..=65535).contains(m))
                .ok_or_else(|| fail(&ctx, format!("MTU {mtu} is out of range: use 68 to 65535")))?;
            Ok(set_link(&rn, l, |d| {
                d.mtu = Some(m);
                d.set_pos.mtu = Some(pos_of(&ctx));
            }))
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "stp",
        move |ctx: NativeCallContext, l: &mut LinkHandle, on: bool| -> R<LinkHandle> {
            let mut r = lock(&rn);
            let d = &mut r.topo.links[l.id];
            if d.kind == LinkKind::Existing || d.kind == LinkKind::Bridge {
                d.stp = Some(on);
                d.set_pos.stp = Some(pos_of(&ctx));
                Ok(l.clone())
            } else {
                Err(fail(
                    &ctx,
                    format!("{} is a veth, not a bridge: stp() is for bridges", d.name),
                ))
            }
        },
    );
    let rn = runner.clone();
    engine.register_fn("attach", move |ctx: NativeCallContext, br: &mut LinkHandle, port: LinkHandle| -> R<LinkHandle> {
        let mut r = lock(&rn);
        let (bns, bname, bkind) = {
            let b = &r.topo.links[br.id];
            (b.ns.clone(), b.name.clone(), b.kind.clone())
        };
        if matches!(bkind, LinkKind::Veth { .. }) {
            return Err(fail(&ctx, format!("{bname} is a veth end, not a bridge: call attach() on the bridge")));
        }
        let p = &mut r.topo.links[port.id];
        if p.ns != bns {
            return Err(fail(
                &ctx,
                format!("cannot attach {} (netns {}) to bridge {bname} (netns {bns}): they must be in the same namespace", p.name, p.ns),
            ));
        }
        if port.id == br.id {
            return Err(fail(&ctx, format!("cannot attach bridge {bname} to itself")));
        }
        p.master = Some(br.id);
        p.set_pos.master = Some(pos_of(&ctx));
        Ok(br.clone())
    });
    let rn = runner.clone();
    engine.register_fn("move_to", move |ctx: NativeCallContext, l: &mut LinkHandle, ns: NsHandle| -> R<LinkHandle> {
        let mut r = lock(&rn);
        let name = r.topo.links[l.id].name.clone();
        if r.topo.links[l.id].ns == ns.ns {
            return Ok(l.clone());
        }
        if let Some(other) = r.topo.link_at(&ns.ns, &name) {
            return Err(fail(
                &ctx,
                format!("cannot move {name} to netns {}: it already has a link named {name} (declared at {})", ns.ns, r.topo.links[other].pos),
            ));
        }
        if r.topo.links[l.id].master.is_some() {
            return Err(fail(&ctx, format!("{name} is attached to a bridge: move it before attaching it")));
        }
        r.topo.links[l.id].ns = ns.ns;
        Ok(l.clone())
    });
    let rn = runner.clone();
    engine.register_fn("rename", move |ctx: NativeCallContext, l: &mut LinkHandle, name: &str| -> R<LinkHandle> {
        let name = ifname(&ctx, name)?;
        let mut r = lock(&rn);
        let ns = r.topo.links[l.id].ns.clone();
        if let Some(other) = r.topo.link_at(&ns, &name)
            && other != l.id
        {
            return Err(fail(
                &ctx,
                format!("cannot rename to {name}: netns {ns} already has a link named {name} (declared at {})", r.topo.links[other].pos),
            ));
        }
        r.topo.links[l.id].name = name;
        Ok(l.clone())
    });
}
