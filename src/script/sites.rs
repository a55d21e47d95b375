//! `site(name, #{ underlay, ssh, mtu })` and the `Site` handle's methods
//! (issue 19): thin adapters that name a machine and place namespaces and
//! bridges on it. What crosses sites (a veth between two sites' namespaces,
//! `stretch()` of bridges) is in cross.rs.

use std::sync::Arc;

use rhai::{Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, R, add_bridge, bad};
use super::registry::Reg;
use super::{SharedRunner, fail, lock, pos_of};
use crate::model::{NsName, NsRef, parse_ip};
use crate::site::SiteDecl;

/// A machine as scripts see it: `site("east", #{ underlay: "192.0.2.1" })`.
#[derive(Debug, Clone, PartialEq)]
pub struct SiteHandle {
    pub name: Arc<str>,
}

const SITE_DOC: &str = r#"Declare a site: a machine of a topology spread over several. `underlay`
(required) is the address the other sites reach this machine on; `ssh`
(default: the site's name) the ssh target `--all-sites` uses; `mtu`
(default 1500) the underlay's MTU, from which the tunnels' MTU follows.
Place objects on it with `east.netns(…)`, `east.bridge(…)`, `east.host()`.
`up --site east` builds east's part only; a script with sites needs
`--site` (or `--all-sites`), and objects on no site are refused.

Errors: a name that is not a valid namespace-like name; no or a bad
`underlay`; an unknown option; the same site twice; an object already
declared on no site.

```rhai
let east = site("east", #{ underlay: "192.0.2.1", ssh: "root@east" });
let west = site("west", #{ underlay: "192.0.2.2" });
let a = east.netns("a");
let b = west.netns("b");
a.veth("eth0", b, "eth0");      // a VXLAN pair over the underlay
```"#;

fn site_decl(ctx: &NativeCallContext, name: &str, opts: &Map) -> R<SiteDecl> {
    NsName::new(name).map_err(|e| bad(ctx, e))?;
    if let Some(k) = opts
        .keys()
        .find(|k| !["underlay", "ssh", "mtu"].contains(&k.as_str()))
    {
        return Err(fail(
            ctx,
            format!("unknown site option '{k}': expected underlay, ssh, mtu"),
        ));
    }
    let underlay = match opts.get("underlay") {
        Some(v) => {
            let s = v
                .clone()
                .into_string()
                .map_err(|_| fail(ctx, "site option underlay is an address (a string)"))?;
            parse_ip(&s).map_err(|e| bad(ctx, e))?
        }
        None => {
            return Err(fail(
                ctx,
                format!(
                    "site {name} needs an underlay: the address other sites reach it on (site(\"{name}\", #{{ underlay: \"192.0.2.1\" }}))"
                ),
            ));
        }
    };
    let ssh = match opts.get("ssh") {
        Some(v) => v
            .clone()
            .into_string()
            .map_err(|_| fail(ctx, "site option ssh is a string (user@host)"))?,
        None => name.to_string(),
    };
    let mtu = match opts.get("mtu") {
        Some(v) => match v.as_int() {
            Ok(m) if (1280..=65535).contains(&m) => m as u32,
            _ => {
                return Err(fail(
                    ctx,
                    "site option mtu is the underlay's MTU: 1280 to 65535",
                ));
            }
        },
        None => 1500,
    };
    Ok(SiteDecl {
        name: Arc::from(name),
        underlay,
        ssh,
        mtu,
        pos: pos_of(ctx),
    })
}

fn add_site(ctx: &NativeCallContext, rn: &SharedRunner, name: &str, opts: &Map) -> R<SiteHandle> {
    let d = site_decl(ctx, name, opts)?;
    let mut r = lock(rn);
    if let Some(first) = r.sites.get(name) {
        return Err(fail(
            ctx,
            format!("site {name} is declared twice (first at {})", first.pos),
        ));
    }
    if let Some(other) = r.sites.list.iter().find(|s| s.underlay == d.underlay) {
        return Err(fail(
            ctx,
            format!(
                "sites {} and {name} have the same underlay {}: each machine has its own",
                other.name, d.underlay
            ),
        ));
    }
    // Objects declared before the first site are on no site.
    if r.sites.list.is_empty() {
        let t = r.sites.part(&r.topo, None).cloned().unwrap_or_default();
        if let Some(n) = t.namespaces().first() {
            return Err(fail(
                ctx,
                format!(
                    "netns {} ({}) is on no site, but this script has sites: declare it as {name}.netns(\"{}\")",
                    n.name, n.pos, n.name
                ),
            ));
        }
        if let Some((_, l)) = t.links().next() {
            return Err(fail(
                ctx,
                format!(
                    "link {} ({}) is on no site, but this script has sites: declare it on one, as {name}.bridge(…) or {name}.netns(…).veth(…)",
                    l.name, l.pos
                ),
            ));
        }
        if t.size() > 0 {
            return Err(fail(
                ctx,
                "objects are declared on no site before this site(): declare them on a site",
            ));
        }
    }
    let handle = SiteHandle {
        name: d.name.clone(),
    };
    r.sites.list.push(d);
    Ok(handle)
}

/// The sites a script declared, from a session that evaluated it (with
/// no kernel, like `plan`): for the commands that reach every machine
/// (`up --all-sites`). Here, not in `site`, so that `site` stays below
/// `script` in the layers.
// Its user, `--all-sites`, is on branch h-remote: allowed until the merge.
#[allow(dead_code)]
pub fn declared_sites(session: &super::Session) -> Vec<crate::site::SiteInfo> {
    session.runner().sites.info()
}

fn on(site: &SiteHandle, ns: NsRef) -> NsHandle {
    NsHandle {
        ns,
        site: Some(site.name.clone()),
    }
}

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.engine().register_type_with_name::<SiteHandle>("Site");
    reg.section("Sites");
    let rn = runner.clone();
    reg.func("site", &["name: string", "opts: map"], "Site", SITE_DOC)
        .set(move |ctx: NativeCallContext, name: &str, opts: Map| add_site(&ctx, &rn, name, &opts));
    let rn = runner.clone();
    reg.method(
        "netns",
        "site: Site",
        &["name: string"],
        "Netns",
        r#"Declare namespace `name` on this site (as `netns(name)` does on one
machine). Two sites may each have a namespace of the same name.

```rhai
let a = east.netns("a");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, s: &mut SiteHandle, name: &str| -> R<NsHandle> {
            let n = NsName::new(name).map_err(|e| bad(&ctx, e))?;
            let h = on(s, NsRef::Named(n.clone()));
            h.at(&rn);
            super::api::declare(&ctx, &rn, |t, pos| t.add_netns(n, pos))?;
            Ok(h)
        },
    );
    let rn = runner.clone();
    reg.method(
        "bridge",
        "site: Site",
        &["name: string"],
        "Link",
        r#"Declare a bridge in this site's host namespace (as `bridge(name)` does
on one machine). `stretch()` joins bridges of several sites into one
layer-2 segment.

```rhai
let br = east.bridge("lan0");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, s: &mut SiteHandle, name: &str| -> R<LinkHandle> {
            on(s, NsRef::Host).at(&rn);
            add_bridge(&ctx, &rn, NsRef::Host, name)
        },
    );
    reg.method(
        "host",
        "site: Site",
        &[],
        "Netns",
        r#"This site's host namespace, for namespace methods on it
(`east.host().route(…)`, `east.host().sysctl(…)`).

```rhai
east.host().sysctl("net.ipv4.ip_forward", 1);
```"#,
    )
    .set(|s: &mut SiteHandle| on(s, NsRef::Host));
    reg.getter(
        "name",
        "site: Site",
        "string",
        r#"The site's name.

```rhai
print(east.name);        // east
```"#,
    )
    .set(|s: &mut SiteHandle| s.name.to_string());
    let rn = runner.clone();
    reg.getter(
        "underlay",
        "site: Site",
        "string",
        r#"The site's underlay address, as given to `site()`.

```rhai
print(east.underlay);    // 192.0.2.1
```"#,
    )
    .set(move |s: &mut SiteHandle| {
        let r = lock(&rn);
        r.sites
            .get(&s.name)
            .map(|d| d.underlay.to_string())
            .unwrap_or_default()
    });
    reg.func("to_string", &["value: Site"], "string", super::TO_STRING)
        .set(|s: &mut SiteHandle| format!("site {}", s.name));
}
