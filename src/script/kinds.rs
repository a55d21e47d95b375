//! `ns.macvlan(name, parent, #{ mode })` and `ns.vxlan(name, #{ id, remote
//! | group, local, dev, port, learning })`: options read and checked here,
//! the rules (names, namespaces, VNI range) kept by the model.

use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, bad, declare, ifname};
use super::{SharedRunner, fail};
use crate::model::{NsRef, parse_ip};
use crate::op::{MacvlanMode, VXLAN_PORT, VxlanSpec};
use crate::topo::LinkId;

type R<T> = Result<T, Box<EvalAltResult>>;

fn check_keys(ctx: &NativeCallContext, what: &str, opts: &Map, known: &[&str]) -> R<()> {
    match opts.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(fail(
            ctx,
            format!("unknown {what} option '{k}': expected {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn text(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<String> {
    v.clone()
        .into_string()
        .map_err(|_| fail(ctx, format!("{what} is a string")))
}

/// A link given as a handle, or by name (a device that exists in `ns`).
fn link_arg(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, v: Dynamic) -> R<LinkId> {
    if let Some(h) = v.clone().try_cast::<LinkHandle>() {
        return Ok(h.id);
    }
    let name = text(ctx, "a link", &v)?;
    let name = ifname(ctx, &name)?;
    let ns = ns.clone();
    declare(ctx, rn, |t, pos| t.adopt_link(ns, name, pos))
}

fn macvlan(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    name: &str,
    parent: Dynamic,
    opts: Map,
) -> R<LinkHandle> {
    check_keys(ctx, "macvlan", &opts, &["mode"])?;
    let mode = match opts.get("mode") {
        None => MacvlanMode::Bridge,
        Some(v) => {
            let m = text(ctx, "macvlan mode", v)?;
            MacvlanMode::parse(&m).ok_or_else(|| {
                fail(
                    ctx,
                    format!("unknown macvlan mode {m:?} (bridge, private, vepa or passthru)"),
                )
            })?
        }
    };
    let name = ifname(ctx, name)?;
    let parent = link_arg(ctx, rn, &ns, parent)?;
    let id = declare(ctx, rn, |t, pos| t.add_macvlan(ns, name, parent, mode, pos))?;
    Ok(LinkHandle { id })
}

fn vxlan(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    name: &str,
    opts: Map,
) -> R<LinkHandle> {
    check_keys(
        ctx,
        "vxlan",
        &opts,
        &["id", "remote", "group", "local", "dev", "port", "learning"],
    )?;
    let id = match opts.get("id") {
        Some(v) => v
            .as_int()
            .map_err(|_| fail(ctx, "vxlan id is a number (0 to 16777215)"))?,
        None => return Err(fail(ctx, "a vxlan needs an id (its VNI, 0 to 16777215)")),
    };
    let id = u32::try_from(id).map_err(|_| {
        fail(
            ctx,
            format!("vxlan id {id} is out of range (0 to 16777215)"),
        )
    })?;
    let addr = |k: &str| -> R<Option<std::net::IpAddr>> {
        match opts.get(k) {
            None => Ok(None),
            Some(v) => {
                let s = text(ctx, &format!("vxlan {k}"), v)?;
                parse_ip(&s).map(Some).map_err(|e| bad(ctx, e))
            }
        }
    };
    let port = match opts.get("port") {
        None => VXLAN_PORT,
        Some(v) => {
            let p = v
                .as_int()
                .map_err(|_| fail(ctx, "vxlan port is a number (1 to 65535)"))?;
            u16::try_from(p)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| fail(ctx, format!("vxlan port {p} is out of range (1 to 65535)")))?
        }
    };
    let learning = match opts.get("learning") {
        None => true,
        Some(v) => v
            .as_bool()
            .map_err(|_| fail(ctx, "vxlan learning is true or false"))?,
    };
    let spec = VxlanSpec {
        id,
        remote: addr("remote")?,
        group: addr("group")?,
        local: addr("local")?,
        dev: None,
        port,
        learning,
    };
    let name = ifname(ctx, name)?;
    let dev = match opts.get("dev") {
        None => None,
        Some(v) => Some(link_arg(ctx, rn, &ns, v.clone())?),
    };
    let id = declare(ctx, rn, |t, pos| t.add_vxlan(ns, name, spec, dev, pos))?;
    Ok(LinkHandle { id })
}

pub fn register(engine: &mut Engine, runner: &SharedRunner) {
    let rn = runner.clone();
    engine.register_fn(
        "macvlan",
        move |ctx: NativeCallContext,
              this: &mut NsHandle,
              name: &str,
              parent: Dynamic,
              opts: Map| { macvlan(&ctx, &rn, this.ns.clone(), name, parent, opts) },
    );
    let rn = runner.clone();
    engine.register_fn(
        "macvlan",
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, parent: Dynamic| {
            macvlan(&ctx, &rn, this.ns.clone(), name, parent, Map::new())
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "vxlan",
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, opts: Map| {
            vxlan(&ctx, &rn, this.ns.clone(), name, opts)
        },
    );
}
