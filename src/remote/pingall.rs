//! `ping-all --all-sites`: each site pings, besides its own part's
//! addresses, those of every other site's part, which it cannot see. The
//! driver learns them from its kernel-less evaluation and passes them as
//! `--also SITE:NS:DEV=ADDR` (NS `host` for a site's host namespace).

use std::net::IpAddr;

use crate::model::{NsName, NsRef};
use crate::script::Session;
use crate::show::pingall::Target;

/// Per site, the `--also` arguments naming the other sites' addresses.
pub fn others(session: &Session) -> Vec<(String, Vec<String>)> {
    let r = session.runner();
    let mut all: Vec<(String, String)> = Vec::new();
    for s in &r.sites.list {
        let Some(part) = r.sites.part(&r.topo, Some(&s.name)) else {
            continue;
        };
        for a in part.addrs() {
            let addr = a.cidr.addr();
            if !routable(&addr) {
                continue;
            }
            let l = part.get(a.link);
            let ns = match &l.ns {
                NsRef::Host => "host".to_string(),
                NsRef::Named(n) => n.to_string(),
            };
            all.push((
                s.name.to_string(),
                format!("{}:{ns}:{}={addr}", s.name, l.name),
            ));
        }
    }
    r.sites
        .list
        .iter()
        .map(|s| {
            let theirs = all
                .iter()
                .filter(|(site, _)| *site != *s.name)
                .map(|(_, arg)| arg.clone())
                .collect();
            (s.name.to_string(), theirs)
        })
        .collect()
}

fn routable(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => !v.is_loopback() && !v.is_link_local(),
        IpAddr::V6(v) => !v.is_loopback() && (v.segments()[0] & 0xffc0) != 0xfe80,
    }
}

/// `--also` arguments as ping targets; the device label names the site
/// (`eth1@west`), since the namespace is not on this machine.
pub fn parse(also: &[String]) -> Result<Vec<Target>, String> {
    also.iter()
        .map(|a| {
            let bad = || format!("--also {a:?}: expected SITE:NS:DEV=ADDR");
            let (left, addr) = a.rsplit_once('=').ok_or_else(bad)?;
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let mut it = left.splitn(3, ':');
            let (Some(site), Some(ns), Some(dev)) = (it.next(), it.next(), it.next()) else {
                return Err(bad());
            };
            let ns = match ns {
                "host" => NsRef::Host,
                n => NsRef::Named(NsName::new(n).map_err(|e| format!("{}: {e}", bad()))?),
            };
            Ok(Target {
                ns,
                dev: format!("{dev}@{site}"),
                addr,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn also_arguments_parse_and_bad_ones_are_named() {
        let t = parse(&[
            "west:wa:eth1=10.99.0.2".into(),
            "north:host:lan0=fd00::3".into(),
        ])
        .unwrap();
        assert_eq!(t[0].dev, "eth1@west");
        assert_eq!(t[0].ns, NsRef::Named(NsName::new("wa").unwrap()));
        assert_eq!(t[1].ns, NsRef::Host);
        assert_eq!(t[1].addr.to_string(), "fd00::3");
        let e = parse(&["west:wa=10.0.0.1".into()]).unwrap_err();
        assert!(e.contains("expected SITE:NS:DEV=ADDR"), "{e}");
    }
}
