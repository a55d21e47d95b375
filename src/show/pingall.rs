//! `ping-all`: every namespace of a topology pings every address of it
//! (through `Kernel::ping_many`, in parallel on a real kernel), and the
//! answers become a matrix.
//! A pair "should reach" when the source has an address on the target's
//! subnet, owns the target, or has a route covering it (a default route
//! too); a pair that should reach and does not is a failure (exit 1).

use std::net::IpAddr;

use super::table::align;
use super::view::{Namespace, TopologyView};
use crate::kernel::Kernel;
use crate::model::NsRef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub ns: NsRef,
    pub dev: String,
    pub addr: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub reached: bool,
    pub expected: bool,
    /// The ping could not be sent at all (not "no answer").
    pub error: Option<String>,
}

impl Cell {
    pub fn failed(&self) -> bool {
        self.expected && !self.reached
    }
}

#[derive(Debug, Clone)]
pub struct Matrix {
    pub topology: String,
    pub sources: Vec<NsRef>,
    pub targets: Vec<Target>,
    /// cells[source][target]
    pub cells: Vec<Vec<Cell>>,
    /// Namespaces with no address and no route: they cannot ping anything.
    pub skipped: Vec<NsRef>,
    /// Some pings were not put to a kernel at all (the recording fake
    /// sends no packets): the answers are not answers.
    pub not_run: bool,
}

fn label(ns: &NsRef) -> String {
    match ns {
        NsRef::Host => "host".into(),
        NsRef::Named(n) => n.to_string(),
    }
}

/// Should `src` reach `ip`? Addresses count even on a link that is down (the
/// kernel then drops the link's routes, but the topology still means it).
pub fn expected(src: &Namespace, ip: &IpAddr) -> bool {
    src.links
        .iter()
        .flat_map(|l| l.addrs.iter())
        .any(|a| a.is_routable() && (a.net.addr() == *ip || a.net.trunc().contains(ip)))
        || src.routes.iter().any(|r| r.covers(ip))
}

impl Matrix {
    pub fn failures(&self) -> Vec<(&NsRef, &Target)> {
        let mut out = Vec::new();
        for (s, row) in self.cells.iter().enumerate() {
            for (t, c) in row.iter().enumerate() {
                if c.failed() {
                    out.push((&self.sources[s], &self.targets[t]));
                }
            }
        }
        out
    }

    pub fn ok(&self) -> bool {
        self.cells.iter().flatten().all(|c| !c.failed())
    }

    pub fn render(&self) -> String {
        let pings = self.sources.len() * self.targets.len();
        let mut out = format!(
            "ping-all: topology {}: {} namespace{} × {} address{} ({pings} pings)\n",
            self.topology,
            self.sources.len(),
            if self.sources.len() == 1 { "" } else { "s" },
            self.targets.len(),
            if self.targets.len() == 1 { "" } else { "es" },
        );
        if pings == 0 {
            out.push_str("nothing to ping: the topology has no addresses\n");
            return out;
        }
        let mut header: Vec<String> = vec![String::new()];
        header.extend(self.targets.iter().map(|t| label(&t.ns)));
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut devs = vec![String::new()];
        devs.extend(self.targets.iter().map(|t| t.dev.clone()));
        rows.push(devs);
        let mut addrs = vec!["FROM \\ TO".to_string()];
        addrs.extend(self.targets.iter().map(|t| t.addr.to_string()));
        rows.push(addrs);
        for (s, row) in self.cells.iter().enumerate() {
            let mut r = vec![label(&self.sources[s])];
            r.extend(row.iter().map(|c| {
                match (c.reached, c.expected, &c.error) {
                    (true, _, _) => "ok",
                    (false, true, Some(_)) => "ERROR",
                    (false, true, None) => "FAIL",
                    (false, false, _) => "--",
                }
                .to_string()
            }));
            rows.push(r);
        }
        let hdr: Vec<&str> = header.iter().map(String::as_str).collect();
        out.push_str(&align("  ", &hdr, &rows));
        out.push_str(
            "  ok: answered   --: no answer, none expected   FAIL: no answer although on the same subnet or routed\n",
        );
        if !self.skipped.is_empty() {
            let names: Vec<String> = self.skipped.iter().map(label).collect();
            out.push_str(&format!(
                "not pinging from {} (no addresses, no routes)\n",
                names.join(", ")
            ));
        }
        let answered = self.cells.iter().flatten().filter(|c| c.reached).count();
        let fails = self.failures();
        if fails.is_empty() {
            out.push_str(&format!(
                "{answered}/{pings} answered; every pair that should reach does\n"
            ));
        } else {
            out.push_str(&format!(
                "{answered}/{pings} answered; {} pair{} that should reach do{} not:\n",
                fails.len(),
                if fails.len() == 1 { "" } else { "s" },
                if fails.len() == 1 { "es" } else { "" },
            ));
            for (s, t) in &fails {
                out.push_str(&format!(
                    "  {} → {} ({} {})\n",
                    label(s),
                    t.addr,
                    label(&t.ns),
                    t.dev
                ));
            }
        }
        if let Some(e) = self.cells.iter().flatten().find_map(|c| c.error.as_ref()) {
            out.push_str(&format!("some pings could not be sent: {e}\n"));
        }
        out
    }
}

/// Ping everything in `view` from every namespace of it, through `k`.
pub fn run(k: &mut dyn Kernel, view: &TopologyView) -> Matrix {
    run_with(k, view, &[])
}

/// [`run`], with `extra` targets too: the addresses of other sites' parts
/// (`ping-all --all-sites`), which no view of this machine shows.
pub fn run_with(k: &mut dyn Kernel, view: &TopologyView, extra: &[Target]) -> Matrix {
    let mut targets: Vec<Target> = Vec::new();
    for n in view.namespaces.iter().filter(|n| n.exists) {
        for (l, a) in n.routable_addrs() {
            let t = Target {
                ns: n.ns.clone(),
                dev: l.name.clone(),
                addr: a.net.addr(),
            };
            if !targets.iter().any(|x| x.addr == t.addr) {
                targets.push(t);
            }
        }
    }
    for t in extra {
        if !targets.iter().any(|x| x.addr == t.addr) {
            targets.push(t.clone());
        }
    }
    let mut sources: Vec<&Namespace> = Vec::new();
    let mut skipped = Vec::new();
    for n in view.namespaces.iter().filter(|n| n.exists) {
        // IPv6 link-local routes exist on every link that is up; they route nothing here.
        let routes = n.routes.iter().any(|r| match r.dest {
            ipnet::IpNet::V6(d) => (d.addr().segments()[0] & 0xffc0) != 0xfe80,
            ipnet::IpNet::V4(_) => true,
        });
        if n.routable_addrs().next().is_some() || routes {
            sources.push(n);
        } else {
            skipped.push(n.ns.clone());
        }
    }
    let jobs: Vec<(usize, usize)> = (0..sources.len())
        .flat_map(|s| (0..targets.len()).map(move |t| (s, t)))
        .collect();
    let pings: Vec<(NsRef, IpAddr)> = jobs
        .iter()
        .map(|&(s, t)| (sources[s].ns.clone(), targets[t].addr))
        .collect();
    let results = k.ping_many(&pings);
    let mut cells: Vec<Vec<Cell>> = sources
        .iter()
        .map(|src| {
            targets
                .iter()
                .map(|t| Cell {
                    reached: false,
                    expected: expected(src, &t.addr),
                    error: None,
                })
                .collect()
        })
        .collect();
    let mut not_run = false;
    for (i, &(s, t)) in jobs.iter().enumerate() {
        match results.get(i) {
            Some(Ok(ok)) => cells[s][t].reached = *ok,
            Some(Err(e)) => {
                not_run |= e.not_run;
                cells[s][t].error = Some(e.to_string());
            }
            None => cells[s][t].error = Some("not pinged".into()),
        }
    }
    Matrix {
        topology: view.name.clone(),
        sources: sources.iter().map(|n| n.ns.clone()).collect(),
        targets,
        cells,
        skipped,
        not_run,
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::{Addr, Link, Route};
    use super::*;
    use crate::model::NsName;

    fn ns(name: &str, addr: Option<&str>, routes: &[&str]) -> Namespace {
        Namespace {
            ns: NsRef::Named(NsName::new(name).unwrap()),
            owned: true,
            exists: true,
            forwarding_v4: None,
            forwarding_v6: None,
            links: vec![Link {
                index: 2,
                name: "eth0".into(),
                kind: Some("veth".into()),
                admin_up: true,
                lower_up: true,
                oper: "UP".into(),
                mtu: 1500,
                mac: None,
                master: None,
                peer: None,
                addrs: addr
                    .map(|a| Addr {
                        net: a.parse().unwrap(),
                        scope: "global".into(),
                        flags: vec![],
                    })
                    .into_iter()
                    .collect(),
            }],
            routes: routes
                .iter()
                .map(|r| Route {
                    dest: r.parse().unwrap(),
                    via: None,
                    dev: Some("eth0".into()),
                    kind: "unicast".into(),
                    proto: "boot".into(),
                    scope: "global".into(),
                    src: None,
                    metric: None,
                })
                .collect(),
            nat: vec![],
            missing: vec![],
        }
    }

    #[test]
    fn expectation_follows_subnets_and_routes() {
        let leaf = ns("a", Some("10.1.0.10/24"), &["0.0.0.0/0"]);
        assert!(expected(&leaf, &"10.1.0.11".parse().unwrap()));
        assert!(expected(&leaf, &"10.2.0.10".parse().unwrap()));
        let isolated = ns("b", Some("10.1.0.10/24"), &[]);
        assert!(expected(&isolated, &"10.1.0.99".parse().unwrap()));
        assert!(!expected(&isolated, &"10.2.0.10".parse().unwrap()));
        let routed = ns("c", Some("10.1.0.10/24"), &["10.9.0.0/16"]);
        assert!(expected(&routed, &"10.9.3.4".parse().unwrap()));
        assert!(!expected(&routed, &"10.8.0.1".parse().unwrap()));
    }

    #[test]
    fn matrix_reports_failures() {
        let m = Matrix {
            topology: "t".into(),
            sources: vec![NsRef::Host],
            targets: vec![Target {
                ns: NsRef::Host,
                dev: "br0".into(),
                addr: "10.0.0.1".parse().unwrap(),
            }],
            cells: vec![vec![Cell {
                reached: false,
                expected: true,
                error: None,
            }]],
            skipped: vec![],
            not_run: false,
        };
        assert!(!m.ok());
        let text = m.render();
        assert!(text.contains("FAIL"), "{text}");
        assert!(text.contains("host → 10.0.0.1 (host br0)"), "{text}");
    }
}
