//! What the commands say about a run: the change lines of `up` (compressed
//! by kind when there are many), the counts line, and the same facts as
//! JSON documents (`--json`; schemas in docs/*-json.md). Text and JSON are
//! made from the same steps, so they cannot disagree.

pub mod doc;
pub mod stream;

use serde::Serialize;

use crate::model::NsRef;
use crate::op::Op;
use crate::plan::{self, Intent, Step};
use crate::run::Runner;

/// The version of every document this module writes; bumped (per
/// document) only when a field is renamed, removed or changes meaning.
pub const SCHEMA: u32 = 1;

/// More changes than this in one batch print as one line per kind.
const FULL_LINES: usize = 40;

/// A namespace as JSON: null for the one netplumb runs in (a netns may
/// itself be named "host").
fn ns_json(ns: &NsRef) -> Option<String> {
    match ns {
        NsRef::Host => None,
        NsRef::Named(n) => Some(n.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct End {
    pub namespace: Option<String>,
    pub name: String,
}

/// One change (an op) as an object.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    /// "add", "set" or "remove".
    pub op: &'static str,
    /// netns, veth, bridge, link, addr, route, sysctl, nat.
    pub kind: &'static str,
    pub namespace: Option<String>,
    /// The object's name in its namespace (see docs/up-json.md).
    pub object: String,
    /// The interface an address is on.
    pub device: Option<String>,
    /// A new veth's other end.
    pub peer: Option<End>,
    /// What a change sets: "up", "mtu 1400", "via 10.0.0.1", "1", …
    pub value: Option<String>,
    pub summary: String,
    pub repaired: bool,
    /// The equivalent shell lines (`netplumb plan` prints these).
    pub shell: Vec<String>,
}

impl Change {
    pub fn of(op: &Op, repaired: bool) -> Self {
        Change {
            shell: plan::render(op),
            ..Self::brief(op, repaired)
        }
    }

    /// `of` without the shell lines, for the text report, which never
    /// shows them (a NAT table's are a line per mapping).
    pub fn brief(op: &Op, repaired: bool) -> Self {
        let (verb, kind, object, device, peer, value) = fields(op);
        Change {
            op: verb,
            kind,
            namespace: ns_json(&op.ns()),
            object,
            device,
            peer,
            value,
            summary: op.summary(),
            repaired,
            shell: Vec::new(),
        }
    }
}

type Fields = (
    &'static str,
    &'static str,
    String,
    Option<String>,
    Option<End>,
    Option<String>,
);

fn fields(op: &Op) -> Fields {
    let s = |x: &dyn std::fmt::Display| x.to_string();
    match op {
        Op::AddNetns { ns } => ("add", "netns", s(ns), None, None, None),
        Op::DelNetns { ns, .. } => ("remove", "netns", s(ns), None, None, None),
        Op::AddVeth {
            name,
            peer_ns,
            peer,
            with,
            ..
        } => {
            let mut v = Vec::new();
            if let Some(m) = &with.master {
                v.push(format!("master {m}"));
            }
            if with.up {
                v.push("up".to_string());
            }
            let end = End {
                namespace: ns_json(peer_ns),
                name: s(peer),
            };
            let value = (!v.is_empty()).then(|| v.join(" "));
            ("add", "veth", s(name), None, Some(end), value)
        }
        Op::AddBridge { name, .. } => ("add", "bridge", s(name), None, None, None),
        Op::AddLink { name, spec, .. } => {
            let value = Some(spec.words(None));
            ("add", spec.kind(), s(name), None, None, value)
        }
        Op::DelLink { name, .. } => ("remove", "link", s(name), None, None, None),
        Op::MoveLink { name, to, .. } => {
            let to = match to {
                NsRef::Host => "netns host".to_string(),
                NsRef::Named(n) => format!("netns {n}"),
            };
            ("set", "link", s(name), None, None, Some(to))
        }
        Op::RenameLink { name, to, .. } => (
            "set",
            "link",
            s(name),
            None,
            None,
            Some(format!("name {to}")),
        ),
        Op::SetLink { name, change, .. } => ("set", "link", s(name), None, None, Some(s(change))),
        Op::AddAddr { dev, cidr, .. } => ("add", "addr", s(cidr), Some(s(dev)), None, None),
        Op::DelAddr { dev, cidr, .. } => ("remove", "addr", s(cidr), Some(s(dev)), None, None),
        Op::AddRoute { route, .. } => route_fields("add", route),
        Op::ReplaceRoute { route, .. } => route_fields("set", route),
        Op::DelRoute { route, .. } => route_fields("remove", route),
        Op::PutRoute { route, replace, .. } => (
            if *replace { "set" } else { "add" },
            "route",
            route.dest.to_string(),
            None,
            None,
            Some(route.words()),
        ),
        Op::DelRouteEx { route, .. } => (
            "remove",
            "route",
            route.dest.to_string(),
            None,
            None,
            Some(route.words()),
        ),
        Op::AddRule { rule, .. } => ("add", "rule", rule.words(), None, None, None),
        Op::SetQdisc {
            dev, shape, mtu, ..
        } => (
            "set",
            "link",
            s(dev),
            None,
            None,
            Some(format!("shape {}", shape.tc_args(*mtu))),
        ),
        Op::DelQdisc { dev, .. } => ("set", "link", s(dev), None, None, Some("shape none".into())),
        Op::DelRule { rule, .. } => ("remove", "rule", rule.words(), None, None, None),
        Op::AddFdb { dev, dst, .. } => ("add", "flood", s(dev), None, None, Some(dst.to_string())),
        Op::DelFdb { dev, dst, .. } => {
            ("remove", "flood", s(dev), None, None, Some(dst.to_string()))
        }
        Op::Sysctl { key, value, .. } => (
            "set",
            "sysctl",
            key.clone(),
            None,
            None,
            Some(value.clone()),
        ),
        Op::ReplaceNat {
            table, replaces, ..
        } => {
            let n = table.rules.len();
            let rules = if n == 1 { "rule" } else { "rules" };
            let value = Some(format!("{n} {rules}"));
            let verb = if replaces.is_some() { "set" } else { "add" };
            (verb, "nat", table.name.clone(), None, None, value)
        }
        Op::DelNat { table, .. } => ("remove", "nat", table.clone(), None, None, None),
        Op::StartDaemon { daemon, .. } => (
            "add",
            "daemon",
            daemon.spec.name.clone(),
            None,
            None,
            Some(daemon.spec.argv.to_string()),
        ),
        Op::WriteFile { path, content, .. } => (
            "add",
            "file",
            path.clone(),
            None,
            None,
            Some(format!("{} bytes", content.len())),
        ),
        Op::RemoveFile { path, .. } => ("remove", "file", path.clone(), None, None, None),
        Op::StopDaemon { name, identity, .. } => (
            "remove",
            "daemon",
            name.clone(),
            None,
            None,
            Some(format!("pid {}", identity.pid)),
        ),
    }
}

fn route_fields(verb: &'static str, r: &crate::op::RouteSpec) -> Fields {
    let s = |x: &dyn std::fmt::Display| x.to_string();
    (
        verb,
        "route",
        s(&r.dest),
        None,
        None,
        Some(format!("via {}", r.via)),
    )
}

/// How many of each kind of change, as the counts line and `counts` say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub created: usize,
    pub changed: usize,
    pub removed: usize,
    pub repaired: usize,
    pub total: usize,
}

impl Counts {
    pub fn of(changes: &[Change]) -> Self {
        let mut c = Counts {
            total: changes.len(),
            ..Counts::default()
        };
        for ch in changes {
            match ch.op {
                "add" => c.created += 1,
                "remove" => c.removed += 1,
                _ => c.changed += 1,
            }
            if ch.repaired {
                c.repaired += 1;
            }
        }
        c
    }

    /// "3 created, 1 changed, 0 removed, 1 repaired".
    pub fn line(&self) -> String {
        let mut parts = vec![
            format!("{} created", self.created),
            format!("{} changed", self.changed),
            format!("{} removed", self.removed),
        ];
        if self.repaired > 0 {
            parts.push(format!("{} repaired", self.repaired));
        }
        parts.join(", ")
    }
}

/// The steps as changes, each marked repaired when it puts back what the
/// script did not change since the topology's last commit (see
/// `Runner::is_repair`; `now`: what the model asks for now), made by
/// `make`: `Change::of`, or `Change::brief` for the text report.
pub fn changes(
    r: &Runner,
    steps: &[Step],
    now: &Intent,
    make: fn(&Op, bool) -> Change,
) -> Vec<Change> {
    steps
        .iter()
        .map(|s| make(&s.op, r.is_repair(s, now)))
        .collect()
}

/// The change lines of one batch: one per change, or, when there are more
/// than 40 and not `verbose`, one per kind (`+ netns ×1000`) in the order
/// each kind first appeared.
pub fn lines(changes: &[Change], verbose: bool) -> String {
    let mut out = String::new();
    if changes.len() <= FULL_LINES || verbose {
        for c in changes {
            let tag = if c.repaired { "   (repaired)" } else { "" };
            out.push_str(&format!("{}{tag}\n", c.summary));
        }
        return out;
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for c in changes {
        let key: String = c
            .summary
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }
    for (k, n) in counts {
        out.push_str(&format!("{k} ×{n}\n"));
    }
    out
}

/// The last line of `up`: what the whole run changed, and how long it took.
pub fn counts_line(name: &str, all: &[Change], took: std::time::Duration) -> String {
    if all.is_empty() {
        return format!("topology '{name}': no changes, everything is up to date\n");
    }
    format!(
        "topology '{name}': {} in {took:.2?}\n",
        Counts::of(all).line()
    )
}

/// A document as JSON on stdout (quiet on a closed pipe).
pub fn emit<T: Serialize>(doc: &T) {
    match serde_json::to_string_pretty(doc) {
        Ok(s) => crate::out::write(&format!("{s}\n")),
        // Serializing plain structs of strings and numbers cannot fail;
        // should it ever, say so rather than print half a document.
        Err(e) => eprintln!("netplumb: cannot write JSON: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{IfName, NsName};
    use crate::op::{LinkChange, VethWith};

    fn nsn(s: &str) -> NsName {
        NsName::new(s).unwrap()
    }
    fn ifn(s: &str) -> IfName {
        IfName::new(s).unwrap()
    }

    #[test]
    fn a_veth_names_its_peer_and_settings() {
        let op = Op::AddVeth {
            ns: NsRef::Host,
            name: ifn("veth0"),
            peer_ns: NsRef::Named(nsn("foons")),
            peer: ifn("eth0"),
            with: VethWith {
                master: Some(ifn("foobr0")),
                up: true,
            },
        };
        let c = Change::of(&op, false);
        assert_eq!((c.op, c.kind, c.object.as_str()), ("add", "veth", "veth0"));
        assert_eq!(c.namespace, None);
        assert_eq!(
            c.peer,
            Some(End {
                namespace: Some("foons".into()),
                name: "eth0".into()
            })
        );
        assert_eq!(c.value.as_deref(), Some("master foobr0 up"));
        assert_eq!(
            c.shell[0],
            "ip link add veth0 type veth peer name eth0 netns foons"
        );
    }

    #[test]
    fn many_changes_compress_by_kind_and_count() {
        let mut ch: Vec<Change> = (0..50)
            .map(|i| {
                Change::of(
                    &Op::AddNetns {
                        ns: nsn(&format!("n{i}")),
                    },
                    false,
                )
            })
            .collect();
        ch.push(Change::of(
            &Op::SetLink {
                ns: NsRef::Host,
                name: ifn("br0"),
                change: LinkChange::Up(true),
            },
            true,
        ));
        assert_eq!(lines(&ch, false), "+ netns ×50\n~ link ×1\n");
        assert_eq!(
            lines(&ch[49..], false),
            "+ netns n49\n~ link br0 up   (repaired)\n"
        );
        let c = Counts::of(&ch);
        assert_eq!(
            (c.created, c.changed, c.removed, c.repaired, c.total),
            (50, 1, 0, 1, 51)
        );
        assert_eq!(c.line(), "50 created, 1 changed, 0 removed, 1 repaired");
    }
}
