//! The script handles (`Netns`, `Link`) and the adapters the registered
//! functions share (ns_fns.rs, link_fns.rs, nat.rs): thin calls from Rhai
//! to the model's declaring methods (which keep the rules) with the script
//! position of the call; `exec` and `ping` converge the kernel first.

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{IfName, InvalidValue, NsName, NsRef, RouteDest, parse_ip};
use crate::run::Runner;
use crate::topo::{DeclError, LinkId};

pub(super) type R<T> = Result<T, Box<EvalAltResult>>;

/// A namespace as scripts see it: `netns("foons")`, `host()`.
#[derive(Debug, Clone, PartialEq)]
pub struct NsHandle {
    pub ns: NsRef,
    /// The site it is on (`east.netns("a")`); None in a script without sites.
    pub site: Option<std::sync::Arc<str>>,
}

impl NsHandle {
    pub fn new(ns: NsRef) -> Self {
        Self { ns, site: None }
    }

    /// The namespace, with its site's part made the one declarations go to.
    pub(super) fn at(&self, rn: &SharedRunner) -> NsRef {
        let mut r = lock(rn);
        let r = &mut *r;
        r.sites.enter(&mut r.topo, self.site.as_ref());
        self.ns.clone()
    }
}

/// A link as scripts see it: a veth end, a bridge, or an adopted device.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkHandle {
    pub id: LinkId,
}

impl LinkHandle {
    /// The link, with the part of the site that holds it made the one
    /// declarations go to.
    pub(super) fn at(&self, rn: &SharedRunner) -> LinkId {
        enter_link(&mut lock(rn), self.id);
        self.id
    }
}

/// Make the part holding link `id` the runner's (a stale id: no change,
/// and the model says so).
pub(super) fn enter_link(r: &mut Runner, id: LinkId) {
    if let Some(site) = r.sites.site_of_link(&r.topo, id) {
        r.sites.enter(&mut r.topo, site.as_ref());
    }
}

/// A function on no handle (`netns()`, `bridge()`, top-level NAT):
/// what it declares goes to the part of objects on no site.
pub(super) fn no_site(rn: &SharedRunner) {
    let mut r = lock(rn);
    let r = &mut *r;
    r.sites.enter(&mut r.topo, None);
}

/// How the user writes call `f` on a site: `netns(…)` and `bridge(…)`
/// are the site's own, everything else is on its host (`host().f(…)`).
pub(super) fn call_on_site(f: &str) -> String {
    match f {
        "netns" | "bridge" => format!("{f}(…)"),
        _ => format!("host().{f}(…)"),
    }
}

/// In a script with sites, a declaration on no site is refused at its
/// line (`what`: the call, as the user would write it on a site).
pub(super) fn on_no_site(ctx: &NativeCallContext, r: &Runner, what: &str, call: &str) -> R<()> {
    if r.sites.any() && r.sites.active().is_none() {
        let first = &r.sites.list[0];
        return Err(fail(
            ctx,
            format!(
                "{what} is on no site, but this script has sites ({}, {}): declare it on one, as {}.{}",
                r.sites.names().join(", "),
                first.pos,
                first.name,
                call
            ),
        ));
    }
    Ok(())
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
    let name = ctx.fn_name();
    on_no_site(ctx, &r, &format!("{name}()"), &call_on_site(name))?;
    f(&mut r.topo, pos).map_err(|e| refused(ctx, e))
}

pub(super) fn netns(ctx: &NativeCallContext, rn: &SharedRunner, name: &str) -> R<NsHandle> {
    let n = NsName::new(name).map_err(|e| bad(ctx, e))?;
    no_site(rn);
    let what = format!("netns(\"{name}\")");
    on_no_site(ctx, &lock(rn), &what, &what)?;
    let ns = declare(ctx, rn, |t, pos| t.add_netns(n, pos))?;
    Ok(NsHandle::new(ns))
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
    if let Some(site) = other_site(&r) {
        let what = format!("exec `{cmd}` in netns {ns} (on site {site})");
        r.notes
            .push(format!("{what}: left to that site, not run here"));
        r.note_not_run(what);
        return Ok(exec_map(crate::kernel::ExecOutput::default()));
    }
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
    Ok(exec_map(out))
}

fn exec_map(out: crate::kernel::ExecOutput) -> Map {
    let mut m = Map::new();
    m.insert("status".into(), Dynamic::from(out.status));
    m.insert("stdout".into(), Dynamic::from(out.stdout));
    m.insert("stderr".into(), Dynamic::from(out.stderr));
    m
}

/// In a `--site` run, the site of a handle another machine builds: its
/// `exec()`/`ping()` run there, not here (issue 19).
fn other_site(r: &Runner) -> Option<String> {
    if r.sites.active_is_applied() {
        return None;
    }
    Some(
        r.sites
            .active()
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".into()),
    )
}

pub(super) fn ping(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, addr: &str) -> R<bool> {
    let ip = parse_ip(addr).map_err(|e| bad(ctx, e))?;
    let mut r = lock(rn);
    if let Some(site) = other_site(&r) {
        let what = format!("ping {ip} from netns {ns} (on site {site})");
        r.notes
            .push(format!("{what}: left to that site, not run here"));
        r.note_not_run(what);
        return Ok(true);
    }
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
    let mut r = lock(rn);
    enter_link(&mut r, l.id);
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
