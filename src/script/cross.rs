//! What crosses sites (issue 19): `a.veth("eth0", b, "eth0")` with `a` and
//! `b` on different sites becomes a point-to-point VXLAN pair (one end on
//! each site's part), and `stretch(br1, br2, …)` joins same-named bridges
//! of several sites into one layer-2 segment. VNI and port come from
//! `#{ vni, port }` or are allocated (site::vni_for); the MTU follows the
//! underlays' (site::tunnel_mtu). The model's declaring methods keep the
//! rules (topo/cross.rs); this only gathers the arguments.

use std::net::IpAddr;
use std::sync::Arc;

use rhai::{Array, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, R, enter_link, ifname, refused};
use super::registry::Reg;
use super::{SharedRunner, fail, lock, pos_of};
use crate::model::NsRef;
use crate::op::{VXLAN_PORT, VxlanSpec};
use crate::run::Runner;
use crate::site::{SiteDecl, Tunnel, vni_for};

/// `#{ vni, port }` of a crossing.
fn opts(ctx: &NativeCallContext, o: &Map) -> R<(Option<u32>, u16)> {
    if let Some(k) = o.keys().find(|k| !["vni", "port"].contains(&k.as_str())) {
        return Err(fail(
            ctx,
            format!("unknown option '{k}': expected vni, port"),
        ));
    }
    let vni = match o.get("vni") {
        None => None,
        Some(v) => match v.as_int() {
            Ok(n) if (1..=0xFF_FFFF).contains(&n) => Some(n as u32),
            _ => return Err(fail(ctx, "vni is a VXLAN id: 1 to 16777215")),
        },
    };
    let port = match o.get("port") {
        None => VXLAN_PORT,
        Some(v) => match v.as_int() {
            Ok(n) if (1..=65535).contains(&n) => n as u16,
            _ => return Err(fail(ctx, "port is a UDP port: 1 to 65535")),
        },
    };
    Ok((vni, port))
}

fn site_of(ctx: &NativeCallContext, r: &Runner, s: &Arc<str>) -> R<SiteDecl> {
    r.sites
        .get(s)
        .cloned()
        .ok_or_else(|| fail(ctx, format!("site {s} is not declared")))
}

/// 50 bytes of outer headers over IPv4, 70 over IPv6.
fn overhead(a: IpAddr) -> u32 {
    if a.is_ipv6() { 70 } else { 50 }
}

fn end_id(site: &str, ns: &NsRef, name: &str) -> String {
    format!("{site} {ns} {name}")
}

/// A VNI+port the script already uses for another crossing is refused.
fn unused(ctx: &NativeCallContext, r: &Runner, vni: u32, port: u16) -> R<()> {
    if let Some(t) = r
        .sites
        .tunnels
        .iter()
        .find(|t| t.vni == vni && t.port == port)
    {
        return Err(fail(
            ctx,
            format!(
                "VNI {vni} (port {port}) is already used by {} ({}): give this one another #{{ vni }}",
                t.what, t.pos
            ),
        ));
    }
    Ok(())
}

/// Refuse `what` when link `id` is not on the site declarations go to now.
pub(super) fn same_site(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    id: crate::topo::LinkId,
    what: &str,
) -> R<()> {
    let r = lock(rn);
    match r.sites.site_of_link(&r.topo, id) {
        Some(s) if s.as_ref() != r.sites.active() => Err(fail(
            ctx,
            format!(
                "cannot {what}: it is on {}, this is on {}",
                s.as_deref()
                    .map(|x| format!("site {x}"))
                    .unwrap_or("no site".into()),
                r.sites
                    .active()
                    .map(|x| format!("site {x}"))
                    .unwrap_or("no site".into())
            ),
        )),
        _ => Ok(()),
    }
}

/// `a.veth(name, b, peer[, opts])` with `a` and `b` on two sites.
pub(super) fn veth(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    a: &NsHandle,
    name: &str,
    b: &NsHandle,
    peer: &str,
    o: &Map,
) -> R<LinkHandle> {
    let (Some(sa), Some(sb)) = (&a.site, &b.site) else {
        return Err(fail(
            ctx,
            "a veth between a namespace on a site and one on no site: declare both on sites",
        ));
    };
    let name = ifname(ctx, name)?;
    let peer = ifname(ctx, peer)?;
    let (vni, port) = opts(ctx, o)?;
    let pos = pos_of(ctx);
    let mut r = lock(rn);
    let r = &mut *r;
    let (da, db) = (site_of(ctx, r, sa)?, site_of(ctx, r, sb)?);
    if da.underlay.is_ipv4() != db.underlay.is_ipv4() {
        return Err(fail(
            ctx,
            format!(
                "sites {} and {} have underlays of different families ({}, {})",
                da.name, db.name, da.underlay, db.underlay
            ),
        ));
    }
    let vni = vni.unwrap_or_else(|| {
        vni_for(
            &r.name,
            &[
                end_id(sa, &a.ns, name.as_str()),
                end_id(sb, &b.ns, peer.as_str()),
            ],
        )
    });
    unused(ctx, r, vni, port)?;
    let over = overhead(da.underlay);
    let under = da.mtu.min(db.mtu);
    let mtu = under.saturating_sub(over);
    let spec = |local: IpAddr, remote: IpAddr| VxlanSpec {
        id: vni,
        remote: Some(remote),
        group: None,
        local: Some(local),
        dev: None,
        port,
        learning: true,
    };
    r.sites.enter(&mut r.topo, Some(sa));
    let ia = r
        .topo
        .add_tunnel_end(
            a.ns.clone(),
            name.clone(),
            spec(da.underlay, db.underlay),
            mtu,
            pos.clone(),
        )
        .map_err(|e| refused(ctx, e))?;
    r.sites.enter(&mut r.topo, Some(sb));
    let ib = r
        .topo
        .add_tunnel_end(
            b.ns.clone(),
            peer.clone(),
            spec(db.underlay, da.underlay),
            mtu,
            pos.clone(),
        )
        .map_err(|e| refused(ctx, e))?;
    r.sites.add_xpeer(ia, ib);
    r.sites.tunnels.push(Tunnel {
        sites: vec![sa.clone(), sb.clone()],
        ends: vec![
            (sa.clone(), a.ns.clone(), name.to_string()),
            (sb.clone(), b.ns.clone(), peer.to_string()),
        ],
        what: format!("{}:{name} ↔ {}:{peer}", a.ns, b.ns),
        vni,
        port,
        mtu,
        underlay_mtu: under,
        overhead: over,
        stretched: false,
        pos,
    });
    Ok(LinkHandle { id: ia })
}

/// `stretch(br1, br2, …[, opts])`: one vxlan port per bridge, flooding
/// to every other site.
fn stretch(ctx: &NativeCallContext, rn: &SharedRunner, brs: &[LinkHandle], o: &Map) -> R<()> {
    let (vni, port) = opts(ctx, o)?;
    let pos = pos_of(ctx);
    let mut r = lock(rn);
    let r = &mut *r;
    if brs.len() < 2 {
        return Err(fail(ctx, "stretch() joins two bridges or more"));
    }
    // Each bridge: its site, namespace and name.
    let mut ends: Vec<(SiteDecl, NsRef, String)> = Vec::new();
    for b in brs {
        let Some(Some(site)) = r.sites.site_of_link(&r.topo, b.id) else {
            return Err(fail(
                ctx,
                "stretch() joins bridges on sites (east.bridge(…)); this one is on no site",
            ));
        };
        enter_link(r, b.id);
        let l = r.topo.link(b.id).map_err(|e| refused(ctx, e))?;
        let d = site_of(ctx, r, &site)?;
        if let Some((first, _, _)) = ends.iter().find(|(s, _, _)| s.name == d.name) {
            return Err(fail(
                ctx,
                format!(
                    "stretch() takes one bridge per site: two are on {}",
                    first.name
                ),
            ));
        }
        if let Some((_, _, n)) = ends.first()
            && n != l.name.as_str()
        {
            return Err(fail(
                ctx,
                format!(
                    "stretch() joins bridges of one name: {n} and {} differ",
                    l.name
                ),
            ));
        }
        ends.push((d, l.ns.clone(), l.name.to_string()));
    }
    if ends
        .iter()
        .any(|(s, _, _)| s.underlay.is_ipv4() != ends[0].0.underlay.is_ipv4())
    {
        return Err(fail(
            ctx,
            "the sites of a stretched bridge have underlays of different families",
        ));
    }
    let ids: Vec<String> = ends
        .iter()
        .map(|(s, ns, n)| end_id(&s.name, ns, n))
        .collect();
    let vni = vni.unwrap_or_else(|| vni_for(&r.name, &ids));
    unused(ctx, r, vni, port)?;
    let over = overhead(ends[0].0.underlay);
    let under = ends.iter().map(|(s, _, _)| s.mtu).min().unwrap_or(1500);
    let mtu = under.saturating_sub(over);
    let port_name = ifname(ctx, &format!("vx{vni}"))?;
    for (b, (site, _, _)) in brs.iter().zip(&ends) {
        let flood: Vec<IpAddr> = ends
            .iter()
            .filter(|(s, _, _)| s.name != site.name)
            .map(|(s, _, _)| s.underlay)
            .collect();
        let spec = VxlanSpec {
            id: vni,
            remote: None,
            group: None,
            local: Some(site.underlay),
            dev: None,
            port,
            learning: true,
        };
        enter_link(r, b.id);
        r.topo
            .add_stretch_port(b.id, port_name.clone(), spec, flood, mtu, pos.clone())
            .map_err(|e| refused(ctx, e))?;
    }
    r.sites.tunnels.push(Tunnel {
        sites: ends.iter().map(|(s, _, _)| s.name.clone()).collect(),
        ends: ends
            .iter()
            .map(|(s, ns, _)| (s.name.clone(), ns.clone(), port_name.to_string()))
            .collect(),
        what: format!("bridge {}", ends[0].2),
        vni,
        port,
        mtu,
        underlay_mtu: under,
        overhead: over,
        stretched: true,
        pos,
    });
    Ok(())
}

const STRETCH_DOC: &str = r#"Join same-named bridges of several sites (one bridge per site) into one
layer-2 segment: on each site a vxlan port `vxVNI` on the bridge, its UDP
socket in the host namespace on the underlay, and head-end replication
(`bridge fdb append 00:00:00:00:00:00 dev vxVNI dst <underlay>` per other
site), learning on. The VNI is allocated from the topology's name and
the bridges (0x10000 to 0xFFFFFF) unless `#{ vni }` gives one; the UDP
port is 4789 unless `#{ port }`. Every port of a stretched bridge (and a
veth port's peer) whose MTU the script does not set gets the tunnel's:
the smallest site MTU less 50 bytes (70 over IPv6), so full-size frames
are not dropped at the vxlan port. Also `stretch([br1, br2, …], opts)`.

Errors: fewer than two bridges; two on one site; different names; a
bridge on no site; a VNI and port another crossing of the script uses.

```rhai
let e = east.bridge("lan0");
let w = west.bridge("lan0");
let n = north.bridge("lan0");
stretch(e, w, n);                 // or stretch(e, w, n, #{ vni: 100 })
```"#;

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Sites");
    let rn = runner.clone();
    reg.method(
        "veth",
        "ns: Netns",
        &["name: string", "other: Netns", "peer: string", "opts: map"],
        "Link",
        r#"A veth between namespaces on two sites, with `#{ vni, port }`: a
point-to-point VXLAN pair. On each site a vxlan device is made from the
host namespace (its UDP socket on the underlay) straight into the
namespace under the name asked for, with the other site's underlay as
remote. The VNI is allocated from the topology's name and the two ends
(0x10000 to 0xFFFFFF) unless given; the port is 4789 unless given. The
ends' MTU is the smaller site MTU less 50 bytes (70 over IPv6) unless
the script sets one. `.peer` is the other end; `.addr/.up/.mtu` work as on
a veth. `a.veth(name, b, peer)` with `a` and `b` on two sites is the same
with no options.

Errors: the namespaces on one site (options are for a crossing); a VNI
and port another crossing of the script uses; underlays of different
families.

```rhai
let v = a.veth("eth0", b, "eth0", #{ vni: 4242 });
v.addr("10.9.0.1/24").up();
v.peer.addr("10.9.0.2/24").up();
```"#,
    )
    .set(
        move |ctx: NativeCallContext,
              this: &mut NsHandle,
              a: &str,
              other: NsHandle,
              b: &str,
              o: Map|
              -> R<LinkHandle> {
            if this.site == other.site {
                return Err(fail(
                    &ctx,
                    "vni and port are options of a veth across sites: these namespaces are on one",
                ));
            }
            veth(&ctx, &rn, this, a, &other, b, &o)
        },
    );
    let rn = runner.clone();
    reg.func(
        "stretch",
        &["bridges: array", "opts: map"],
        "()",
        STRETCH_DOC,
    )
    .set(move |ctx: NativeCallContext, brs: Array, o: Map| -> R<()> {
        let mut hs = Vec::new();
        for b in brs {
            match b.try_cast::<LinkHandle>() {
                Some(h) => hs.push(h),
                None => return Err(fail(&ctx, "stretch() takes bridges")),
            }
        }
        stretch(&ctx, &rn, &hs, &o)
    });
    macro_rules! stretch_n {
        ($($b:ident),+) => {{
            let rn = runner.clone();
            reg.func("stretch", &[$(concat!(stringify!($b), ": Link")),+], "()", STRETCH_DOC)
                .set(move |ctx: NativeCallContext, $($b: LinkHandle),+| -> R<()> {
                    stretch(&ctx, &rn, &[$($b),+], &Map::new())
                });
            let rn = runner.clone();
            reg.func(
                "stretch",
                &[$(concat!(stringify!($b), ": Link")),+, "opts: map"],
                "()",
                STRETCH_DOC,
            )
            .set(move |ctx: NativeCallContext, $($b: LinkHandle),+, o: Map| -> R<()> {
                stretch(&ctx, &rn, &[$($b),+], &o)
            });
        }};
    }
    stretch_n!(a, b);
    stretch_n!(a, b, c);
    stretch_n!(a, b, c, d);
}
