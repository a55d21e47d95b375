//! `ns.macvlan(name, parent, #{ mode })` and `ns.vxlan(name, #{ id, remote
//! | group, local, dev, port, learning })`: options read and checked here,
//! the rules (names, namespaces, VNI range) kept by the model.

use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

mod docs;

use super::api::{LinkHandle, NsHandle, bad, declare, ifname};
use super::registry::Reg;
use super::{SharedRunner, fail};
use crate::model::{NsRef, parse_ip};
use crate::op::{MacvlanMode, Shape, TunSpec, VXLAN_PORT, VxlanSpec};
use crate::topo::LinkId;
use docs::{MACVLAN, SHAPE, TUN, VXLAN};

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

/// `10mbit`, `1500kbit`, `1gbit`, `800bit` (bits), or `125kbps` (bytes),
/// as `tc` takes a rate; bytes per second.
fn rate(ctx: &NativeCallContext, v: &Dynamic) -> R<u64> {
    let s = text(ctx, "shape rate", v)?;
    let t = s.trim().to_ascii_lowercase();
    let digits = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let bits_per: f64 = match unit {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        _ => 0.0,
    };
    let n: f64 = n.parse().unwrap_or(0.0);
    let bytes = (n * bits_per / 8.0).round();
    if bits_per == 0.0 || !(1.0..1e15).contains(&bytes) {
        return Err(fail(
            ctx,
            format!("shape rate {s:?} is not a rate (like \"10mbit\", \"1500kbit\", \"1gbit\")"),
        ));
    }
    Ok(bytes as u64)
}

/// `20ms`, `500us`, `1s`, or a number of milliseconds; microseconds.
fn time_us(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<u32> {
    let bad = || {
        fail(
            ctx,
            format!("shape {what} is a time (like \"20ms\", \"500us\")"),
        )
    };
    let us = if let Ok(ms) = v.as_int() {
        ms as f64 * 1000.0
    } else if let Ok(ms) = v.as_float() {
        ms * 1000.0
    } else {
        let s = text(ctx, what, v)?;
        let t = s.trim();
        let (n, mult) = if let Some(n) = t.strip_suffix("us") {
            (n, 1.0)
        } else if let Some(n) = t.strip_suffix("ms") {
            (n, 1e3)
        } else if let Some(n) = t.strip_suffix('s') {
            (n, 1e6)
        } else {
            return Err(bad());
        };
        n.trim().parse::<f64>().map_err(|_| bad())? * mult
    };
    if !(0.0..=4e9).contains(&us) {
        return Err(bad());
    }
    Ok(us as u32)
}

/// A percentage 0 to 100 (a number, or "20%"), in thousandths.
fn percent(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<u32> {
    let p = if let Ok(i) = v.as_int() {
        i as f64
    } else if let Ok(f) = v.as_float() {
        f
    } else {
        let s = text(ctx, what, v)?;
        s.trim()
            .trim_end_matches('%')
            .parse::<f64>()
            .map_err(|_| fail(ctx, format!("shape {what} {s:?} is not a percentage")))?
    };
    if !(0.0..=100.0).contains(&p) {
        return Err(fail(
            ctx,
            format!("shape {what} {p} % is out of range (0 to 100 %)"),
        ));
    }
    Ok((p * 1000.0).round() as u32)
}

fn shape(ctx: &NativeCallContext, rn: &SharedRunner, l: &LinkHandle, o: Map) -> R<LinkHandle> {
    check_keys(
        ctx,
        "shape",
        &o,
        &[
            "rate",
            "burst",
            "limit",
            "delay",
            "jitter",
            "loss",
            "duplicate",
            "corrupt",
            "reorder",
        ],
    )?;
    let bytes = |k: &str| -> R<Option<u32>> {
        match o.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    fail(
                        ctx,
                        format!(
                            "shape {k} is a positive number (bytes, or packets for netem's limit)"
                        ),
                    )
                }),
        }
    };
    let s = Shape {
        rate: o.get("rate").map(|v| rate(ctx, v)).transpose()?,
        burst: bytes("burst")?,
        limit: bytes("limit")?,
        delay: o
            .get("delay")
            .map(|v| time_us(ctx, "delay", v))
            .transpose()?,
        jitter: o
            .get("jitter")
            .map(|v| time_us(ctx, "jitter", v))
            .transpose()?,
        loss: o.get("loss").map(|v| percent(ctx, "loss", v)).transpose()?,
        duplicate: o
            .get("duplicate")
            .map(|v| percent(ctx, "duplicate", v))
            .transpose()?,
        corrupt: o
            .get("corrupt")
            .map(|v| percent(ctx, "corrupt", v))
            .transpose()?,
        reorder: o
            .get("reorder")
            .map(|v| percent(ctx, "reorder", v))
            .transpose()?,
    };
    let id = l.at(rn);
    declare(ctx, rn, |t, pos| t.set_shape(id, s, pos))?;
    Ok(l.clone())
}

fn tun(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    name: &str,
    tap: bool,
    o: Map,
) -> R<LinkHandle> {
    let what = if tap { "tap" } else { "tun" };
    check_keys(ctx, what, &o, &["owner", "group", "multi_queue"])?;
    let id_of = |k: &str| -> R<Option<u32>> {
        match o.get(k) {
            None => Ok(None),
            Some(v) => v
                .as_int()
                .ok()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| fail(ctx, format!("{what} {k} is a numeric id (like 1000)"))),
        }
    };
    let spec = TunSpec {
        tap,
        owner: id_of("owner")?,
        group: id_of("group")?,
        multi_queue: match o.get("multi_queue") {
            None => false,
            Some(v) => v
                .as_bool()
                .map_err(|_| fail(ctx, format!("{what} multi_queue is true or false")))?,
        },
    };
    let name = ifname(ctx, name)?;
    let id = declare(ctx, rn, |t, pos| t.add_tun(ns, name, spec, pos))?;
    Ok(LinkHandle { id })
}

/// `ns.macvlan`, `ns.vxlan`, `ns.tap`, `ns.tun` (under Links, after the
/// bridges).
pub fn register_links(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.method(
        "macvlan",
        "ns: Netns",
        &["name: string", "parent: Link | string"],
        "Link",
        MACVLAN,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, parent: Dynamic| {
            macvlan(&ctx, &rn, this.at(&rn), name, parent, Map::new())
        },
    );
    let rn = runner.clone();
    reg.method(
        "macvlan",
        "ns: Netns",
        &["name: string", "parent: Link | string", "opts: map"],
        "Link",
        MACVLAN,
    )
    .set(
        move |ctx: NativeCallContext,
              this: &mut NsHandle,
              name: &str,
              parent: Dynamic,
              opts: Map| { macvlan(&ctx, &rn, this.at(&rn), name, parent, opts) },
    );
    let rn = runner.clone();
    reg.method(
        "vxlan",
        "ns: Netns",
        &["name: string", "opts: map"],
        "Link",
        VXLAN,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, opts: Map| {
            vxlan(&ctx, &rn, this.at(&rn), name, opts)
        },
    );
    for (f, tap) in [("tap", true), ("tun", false)] {
        let rn = runner.clone();
        reg.method(f, "ns: Netns", &["name: string"], "Link", TUN)
            .set(
                move |ctx: NativeCallContext, this: &mut NsHandle, name: &str| {
                    tun(&ctx, &rn, this.at(&rn), name, tap, Map::new())
                },
            );
        let rn = runner.clone();
        reg.method(f, "ns: Netns", &["name: string", "opts: map"], "Link", TUN)
            .set(
                move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, opts: Map| {
                    tun(&ctx, &rn, this.at(&rn), name, tap, opts)
                },
            );
    }
}

/// `link.shape(opts)` (under Links, after stp).
pub fn register_shape(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.method("shape", "link: Link", &["opts: map"], "Link", SHAPE)
        .set(
            move |ctx: NativeCallContext, l: &mut LinkHandle, opts: Map| shape(&ctx, &rn, l, opts),
        );
}
