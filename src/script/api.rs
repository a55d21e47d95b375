//! The script handles (`Netns`, `Link`) and the adapters the registered
//! functions share (ns_fns.rs, link_fns.rs, nat.rs): thin calls from Rhai
//! to the model's declaring methods (which keep the rules) with the script
//! position of the call; `exec` and `ping` converge the kernel first.

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{IfName, InvalidValue, NsRef, RouteDest, parse_ip};
use crate::run::Runner;
use crate::topo::{DeclError, LinkId};

pub(super) type R<T> = Result<T, Box<EvalAltResult>>;

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

pub(super) fn add_veth(
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

pub(super) fn add_bridge(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    name: &str,
) -> R<LinkHandle> {
    let name = ifname(ctx, name)?;
    let id = declare(ctx, rn, |t, pos| t.add_bridge(ns, name, pos))?;
    Ok(LinkHandle { id })
}

/// Default limit for `exec`: generous, but a hung command cannot hang a run.
pub(super) const EXEC_TIMEOUT_S: f64 = 60.0;

/// Converge and wait until what this run brought up is ready. A failure
/// is kept in the runner so the edge reports it at the op's own line; a
/// link that will not get ready is said, and the question asked anyway.
pub(super) fn converge(ctx: &NativeCallContext, r: &mut Runner) -> R<()> {
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

pub(super) fn exec_result(
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

pub(super) fn ping(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, addr: &str) -> R<bool> {
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

pub(super) fn sysctl(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    key: &str,
    value: &str,
) -> R<()> {
    declare(ctx, rn, |t, pos| t.add_sysctl(ns, key, value, pos))
}

pub(super) fn route(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    dest: &str,
    via: &str,
) -> R<()> {
    let via = parse_ip(via).map_err(|e| bad(ctx, e))?;
    let dest = RouteDest::parse(dest, &via).map_err(|e| bad(ctx, e))?;
    declare(ctx, rn, |t, pos| t.add_route(ns, dest, via, pos))
}

/// A link handle's declaration, or the stale-handle error.
pub(super) fn with_link<T>(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    l: &LinkHandle,
    f: impl FnOnce(&crate::topo::Topology, &crate::topo::LinkDecl) -> T,
) -> R<T> {
    let r = lock(rn);
    let d = r.topo.link(l.id).map_err(|e| refused(ctx, e))?;
    Ok(f(&r.topo, d))
}

/// `ns.exec(cmd, #{ timeout })`: the options checked, then [`exec_result`].
pub(super) fn exec_with(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: &NsRef,
    cmd: &str,
    opts: &Map,
) -> R<Map> {
    if let Some(k) = opts.keys().find(|k| k.as_str() != "timeout") {
        return Err(fail(
            ctx,
            format!("unknown exec option '{k}': expected timeout"),
        ));
    }
    let t = match opts.get("timeout") {
        None => EXEC_TIMEOUT_S,
        Some(v) => v
            .as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .map_err(|_| fail(ctx, "exec option timeout is a number of seconds"))?,
    };
    exec_result(ctx, rn, ns, cmd, t)
}
