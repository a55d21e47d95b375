//! Namespaces, links, addresses, routes, sysctls, exec and ping: thin
//! adapters from Rhai calls to the model's declaring methods (which keep the
//! rules) with the script position of the call; `exec` and `ping` converge
//! the kernel first.

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{Cidr, IfName, InvalidValue, NsName, NsRef, RouteDest, parse_ip};
use crate::run::Runner;
use crate::topo::{DeclError, LinkId};

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

/// A refused declaration, kept as data: the edge renders it with both
/// positions where it names two.
pub(crate) fn refused(ctx: &NativeCallContext, e: DeclError) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(e),
        ctx.call_position(),
    ))
}

pub(super) fn bad(ctx: &NativeCallContext, e: InvalidValue) -> Box<EvalAltResult> {
    fail(ctx, e)
}

pub(super) fn ifname(ctx: &NativeCallContext, s: &str) -> R<IfName> {
    IfName::new(s).map_err(|e| bad(ctx, e))
}

/// Run a declaring method on the model with the call's position.
pub(super) fn declare<T>(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    f: impl FnOnce(&mut crate::topo::Topology, crate::topo::Pos) -> Result<T, DeclError>,
) -> R<T> {
    let pos = pos_of(ctx);
    let mut r = lock(rn);
    f(&mut r.topo, pos).map_err(|e| refused(ctx, e))
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
    let id = declare(ctx, rn, |t, pos| t.add_veth(ns, a, pns, b, pos))?;
    Ok(LinkHandle { id })
}

fn add_bridge(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, name: &str) -> R<LinkHandle> {
    let name = ifname(ctx, name)?;
    let id = declare(ctx, rn, |t, pos| t.add_bridge(ns, name, pos))?;
    Ok(LinkHandle { id })
}

/// Default limit for `exec`: generous, but a hung command cannot hang a run.
const EXEC_TIMEOUT_S: f64 = 60.0;

/// Converge and wait until what this run brought up is ready. A failure
/// is kept in the runner so the edge reports it at the op's own line; a
/// link that will not get ready is said, and the question asked anyway.
fn converge(ctx: &NativeCallContext, r: &mut Runner) -> R<()> {
    match r.flush() {
        Ok(_) => {}
        Err(e) => {
            let msg = e.to_string();
            r.failed = Some(e);
            return Err(fail(ctx, msg));
        }
    }
    if let Err(nr) = r.settle()
        && !r.quiet
    {
        eprintln!(
            "netplumb: after {:.1?} these links are still not ready: {}",
            nr.waited,
            nr.pending.join(", ")
        );
    }
    Ok(())
}

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
    converge(ctx, &mut r)?;
    let out = match r
        .kernel()
        .exec(ns, cmd, std::time::Duration::from_secs_f64(timeout_s))
    {
        Ok(out) => out,
        Err(e) if e.not_run => {
            r.note_not_run(format!("exec `{cmd}` in netns {ns}"));
            crate::kernel::ExecOutput::default()
        }
        Err(e) => return Err(fail(ctx, format!("exec in netns {ns}: {e}"))),
    };
    let mut m = Map::new();
    m.insert("status".into(), Dynamic::from(out.status));
    m.insert("stdout".into(), Dynamic::from(out.stdout));
    m.insert("stderr".into(), Dynamic::from(out.stderr));
    Ok(m)
}

fn ping(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, addr: &str) -> R<bool> {
    let ip = parse_ip(addr).map_err(|e| bad(ctx, e))?;
    let mut r = lock(rn);
    converge(ctx, &mut r)?;
    match r.kernel().ping(ns, ip) {
        Ok(b) => Ok(b),
        Err(e) if e.not_run => {
            r.note_not_run(format!("ping {ip} from netns {ns}"));
            Ok(true)
        }
        Err(e) => Err(fail(ctx, format!("ping from netns {ns}: {e}"))),
    }
}

fn sysctl(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, key: &str, value: &str) -> R<()> {
    declare(ctx, rn, |t, pos| t.add_sysctl(ns, key, value, pos))
}

fn route(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, dest: &str, via: &str) -> R<()> {
    let via = parse_ip(via).map_err(|e| bad(ctx, e))?;
    let dest = RouteDest::parse(dest, &via).map_err(|e| bad(ctx, e))?;
    declare(ctx, rn, |t, pos| t.add_route(ns, dest, via, pos))
}

/// A link handle's declaration, or the stale-handle error.
fn with_link<T>(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    l: &LinkHandle,
    f: impl FnOnce(&crate::topo::Topology, &crate::topo::LinkDecl) -> T,
) -> R<T> {
    let r = lock(rn);
    let d = r.topo.link(l.id).map_err(|e| refused(ctx, e))?;
    Ok(f(&r.topo, d))
}

pub fn register(engine: &mut Engine, runner: &SharedRunner) {
    engine.register_type_with_name::<NsHandle>("Netns");
    engine.register_type_with_name::<LinkHandle>("Link");

    let rn = runner.clone();
    engine.register_fn(
        "netns",
        move |ctx: NativeCallContext, name: &str| -> R<NsHandle> {
            let n = NsName::new(name).map_err(|e| bad(&ctx, e))?;
            let ns = declare(&ctx, &rn, |t, pos| t.add_netns(n, pos))?;
            Ok(NsHandle { ns })
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
            let ns = this.ns.clone();
            let id = declare(&ctx, &rn, |t, pos| t.adopt_link(ns, name, pos))?;
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
    engine.register_get(
        "name",
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<String> {
            with_link(&ctx, &rn, l, |_, d| d.name.to_string())
        },
    );
    let rn = runner.clone();
    engine.register_get(
        "ns",
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<NsHandle> {
            with_link(&ctx, &rn, l, |_, d| NsHandle { ns: d.ns.clone() })
        },
    );
    let rn = runner.clone();
    engine.register_fn("to_string", move |l: &mut LinkHandle| {
        let r = lock(&rn);
        match r.topo.link(l.id) {
            Ok(d) => format!("link {}:{}", d.ns, d.name),
            Err(_) => "link (stale)".to_string(),
        }
    });
    let rn = runner.clone();
    engine.register_get(
        "peer",
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<LinkHandle> {
            let r = lock(&rn);
            let id = r.topo.peer(l.id).map_err(|e| refused(&ctx, e))?;
            Ok(LinkHandle { id })
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "addr",
        move |ctx: NativeCallContext, l: &mut LinkHandle, cidr: &str| -> R<LinkHandle> {
            let cidr = Cidr::parse(cidr).map_err(|e| bad(&ctx, e))?;
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.add_addr(id, cidr, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "up",
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<LinkHandle> {
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.set_up(id, true, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "down",
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<LinkHandle> {
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.set_up(id, false, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "mtu",
        move |ctx: NativeCallContext, l: &mut LinkHandle, mtu: i64| -> R<LinkHandle> {
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.set_mtu(id, mtu, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "stp",
        move |ctx: NativeCallContext, l: &mut LinkHandle, on: bool| -> R<LinkHandle> {
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.set_stp(id, on, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "attach",
        move |ctx: NativeCallContext, br: &mut LinkHandle, port: LinkHandle| -> R<LinkHandle> {
            let (b, p) = (br.id, port.id);
            declare(&ctx, &rn, |t, pos| t.attach(b, p, pos))?;
            Ok(br.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "move_to",
        move |ctx: NativeCallContext, l: &mut LinkHandle, ns: NsHandle| -> R<LinkHandle> {
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.move_to(id, ns.ns, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "rename",
        move |ctx: NativeCallContext, l: &mut LinkHandle, name: &str| -> R<LinkHandle> {
            let name = ifname(&ctx, name)?;
            let id = l.id;
            declare(&ctx, &rn, |t, pos| t.rename(id, name, pos))?;
            Ok(l.clone())
        },
    );
}
