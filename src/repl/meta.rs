//! What the meta commands print: `:help` (from the engine's function
//! metadata plus one line of description each), `:show` (the session's
//! model) and the script `:save` writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use netplumb_nft::NatRule;
use rhai::Engine;

use crate::model::NsRef;
use crate::topo::{LinkKind, Topology};

/// (name, usage, what it does). Usage names the parameters, which the
/// engine's metadata cannot (closures have no parameter names).
pub const DESCRIPTIONS: &[(&str, &str, &str)] = &[
    (
        "netns",
        "netns(name)",
        "create a network namespace (idempotent); its lo is brought up",
    ),
    ("host", "host()", "the namespace netplumb runs in"),
    (
        "veth",
        "veth(a, b) · veth(a, ns, b) · ns.veth(a, b) · ns.veth(a, other, b)",
        "a veth pair: both ends in the host, the peer b inside ns, or ends in namespaces",
    ),
    (
        "bridge",
        "bridge(name) · ns.bridge(name)",
        "a bridge in the host, or inside ns",
    ),
    (
        "link",
        "ns.link(name)",
        "an existing device, adopted: never created nor removed",
    ),
    (
        "addr",
        "link.addr(cidr)",
        "add an IPv4 or IPv6 address (CIDR); returns the link",
    ),
    ("up", "link.up()", "bring the link up"),
    ("down", "link.down()", "set the link down"),
    ("mtu", "link.mtu(bytes)", "set the MTU (68 to 65535)"),
    (
        "stp",
        "bridge.stp(on)",
        "turn the bridge's spanning tree on or off",
    ),
    (
        "attach",
        "bridge.attach(link)",
        "make link a port of the bridge (same namespace)",
    ),
    (
        "move_to",
        "link.move_to(ns)",
        "move the link into namespace ns",
    ),
    ("rename", "link.rename(name)", "give the link a new name"),
    (
        "route",
        "ns.route(dest, via)",
        "add a route to dest (\"default\" or a CIDR) via a gateway",
    ),
    (
        "sysctl",
        "ns.sysctl(key, value)",
        "set a sysctl inside ns; down restores the old value",
    ),
    (
        "exec",
        "ns.exec(cmd) · ns.exec(cmd, #{ timeout })",
        "run a command inside ns: #{ status, stdout, stderr }",
    ),
    (
        "ping",
        "ns.ping(addr)",
        "one ICMP echo from ns, 1 s timeout: true or false",
    ),
    (
        "masquerade",
        "masquerade(cidr) · masquerade(cidr, #{ oif }) · ns.masquerade(…)",
        "masquerade traffic from cidr to anywhere outside it",
    ),
    (
        "snat",
        "snat(cidr, to) · snat(cidr, to, #{ oif }) · ns.snat(…)",
        "rewrite the source of traffic from cidr to address to",
    ),
    (
        "dnat",
        "dnat(port, to) · dnat(#{ daddr, port, to, proto, iif }) · ns.dnat(…)",
        "forward a port (or a range a..b) to \"ip\" or \"ip:port\"",
    ),
    (
        "cidr_host",
        "cidr_host(cidr, n)",
        "the n-th address of cidr, with its prefix length",
    ),
    (
        "cidr_ip",
        "cidr_ip(cidr) · cidr_ip(cidr, n)",
        "the address part, or the n-th address",
    ),
    (
        "cidr_network",
        "cidr_network(cidr)",
        "the network of cidr (host bits cleared)",
    ),
    (
        "cidr_prefix_len",
        "cidr_prefix_len(cidr)",
        "the prefix length",
    ),
    (
        "cidr_size",
        "cidr_size(cidr)",
        "how many addresses cidr holds",
    ),
    (
        "cidr_subnet",
        "cidr_subnet(cidr, new_len, i)",
        "the i-th subnet of length new_len inside cidr",
    ),
    (
        "cidr_cover",
        "cidr_cover(cidr, new_len, from, to)",
        "the subnets of length new_len numbered from..to",
    ),
    (
        "cidr_contains",
        "cidr_contains(cidr, ip)",
        "whether ip lies inside cidr",
    ),
    (
        "counter",
        "counter(start)",
        "a counter shared by every copy of it",
    ),
    (
        "next",
        "counter.next()",
        "the counter's value, then one more",
    ),
    (
        "ping_all",
        "ping_all()",
        "every namespace pings every address: #{ ok, matrix, failures }",
    ),
    (
        "read_file",
        "read_file(path)",
        "a file's text (relative to the script's directory)",
    ),
    ("name", "x.name", "the name of a namespace or link"),
    ("peer", "link.peer", "the other end of a veth pair"),
    ("ns", "link.ns", "the namespace a link is in"),
    ("value", "counter.value", "the counter's current value"),
];

pub const META_HELP: &[(&str, &str)] = &[
    (":help [name]", "this list, or one function's signatures"),
    (":plan", "what the session has built, as ip / nft commands"),
    (
        ":show",
        "the session's namespaces and links with their addresses",
    ),
    (
        ":save FILE",
        "write the session's statements as a script `netplumb up` reproduces",
    ),
    (":load FILE", "run a script file into the session"),
    (
        ":down",
        "remove everything the session built (its topology), and start afresh",
    ),
    (":quit", "leave (Ctrl-D too); what was built stays up"),
];

fn describe(name: &str) -> Option<(&'static str, &'static str)> {
    DESCRIPTIONS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, u, d)| (*u, *d))
}

/// The parameter hint after `name(`: the first usage's parameter list.
pub fn param_hint(name: &str) -> Option<String> {
    let (usage, _) = describe(name)?;
    let first = usage.split(" · ").next()?;
    let open = first.find(&format!("{name}("))? + name.len() + 1;
    Some(first[open..].to_string())
}

/// Functions the engine knows, from its metadata: name → signatures.
#[derive(Debug, Default)]
pub struct FnIndex {
    pub functions: BTreeMap<String, Vec<String>>,
    pub properties: BTreeMap<String, Vec<String>>,
}

impl FnIndex {
    pub fn from_engine(engine: &Engine) -> Self {
        let mut idx = Self::default();
        for sig in engine.gen_fn_signatures(false) {
            let Some(s) = clean_signature(engine, &sig) else {
                continue;
            };
            let map = if s.property {
                &mut idx.properties
            } else {
                &mut idx.functions
            };
            let v = map.entry(s.name).or_default();
            if !v.contains(&s.text) {
                v.push(s.text);
            }
        }
        for v in idx
            .functions
            .values_mut()
            .chain(idx.properties.values_mut())
        {
            v.sort();
        }
        // Conversions, not something to call.
        idx.functions.remove("to_string");
        idx.functions.remove("to_debug");
        idx
    }
}

pub struct Signature {
    pub name: String,
    pub text: String,
    pub property: bool,
}

/// Index of the bracket closing the one at `open`.
fn closing(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in s[open..].char_indices() {
        match c {
            '(' | '<' => depth += 1,
            ')' | '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split on commas outside brackets.
fn split_top(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

/// `alloc::string::String` → `String`, inside generics too.
fn short_paths(s: &str) -> String {
    let mut out = String::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        out.push_str(word.rsplit("::").next().unwrap_or(word));
        word.clear();
    };
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

fn type_name(engine: &Engine, t: &str) -> String {
    let t = t.trim();
    let t = t
        .strip_prefix("&mut ")
        .or_else(|| t.strip_prefix('&'))
        .unwrap_or(t);
    let t = engine.map_type_name(t);
    // Rhai's own names for its types, as the parameters already show them.
    match short_paths(t).as_str() {
        "str" | "String" | "ImmutableString" => "string".to_string(),
        "i64" | "INT" => "int".to_string(),
        "f64" | "FLOAT" => "float".to_string(),
        "Map" => "map".to_string(),
        "Array" => "array".to_string(),
        m if m.starts_with("BTreeMap<") => "map".to_string(),
        a if a.starts_with("Vec<") => "array".to_string(),
        other => other.to_string(),
    }
}

/// `Result<T, E>` → `T`: a script sees the value or an error.
fn ok_type(r: &str) -> &str {
    let r = r.trim();
    for p in ["core::result::Result<", "std::result::Result<", "Result<"] {
        if let Some(inner) = r.strip_prefix(p).and_then(|i| i.strip_suffix('>')) {
            return split_top(inner).first().copied().unwrap_or(inner);
        }
    }
    r
}

/// A metadata signature (`bridge(_: &mut Netns, _: string) -> Result<…>`)
/// as a script writes it (`Netns.bridge(string) -> Link`).
pub fn clean_signature(engine: &Engine, sig: &str) -> Option<Signature> {
    let open = sig.find('(')?;
    let close = closing(sig, open)?;
    let name = &sig[..open];
    let ret = sig[close + 1..]
        .trim()
        .strip_prefix("->")
        .map(|r| type_name(engine, ok_type(r)))
        .filter(|r| r != "()");
    let mut params: Vec<&str> = split_top(&sig[open + 1..close])
        .into_iter()
        .map(|p| p.split_once(": ").map_or(p, |(_, t)| t))
        .collect();
    let this = match params.first() {
        Some(p) if p.starts_with("&mut ") => {
            let t = type_name(engine, p);
            params.remove(0);
            Some(t)
        }
        _ => None,
    };
    let params: Vec<String> = params.iter().map(|p| type_name(engine, p)).collect();
    let arrow = ret.map(|r| format!(" -> {r}")).unwrap_or_default();
    if let Some(prop) = name.strip_prefix("get$") {
        return Some(Signature {
            name: prop.to_string(),
            text: format!("{}.{prop}{arrow}", this.unwrap_or_default()),
            property: true,
        });
    }
    if name.contains('$') {
        // Setters and indexers: not called by name.
        return None;
    }
    let call = match this {
        Some(t) => format!("{t}.{name}({})", params.join(", ")),
        None => format!("{name}({})", params.join(", ")),
    };
    Some(Signature {
        name: name.to_string(),
        text: format!("{call}{arrow}"),
        property: false,
    })
}

/// A function the session defined, for `:help`.
#[derive(Debug, Clone)]
pub struct UserFn {
    pub signature: String,
    pub doc: String,
    /// The input that defined it.
    pub source: String,
}

pub fn help_all(idx: &FnIndex, user: &BTreeMap<(String, usize), UserFn>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "netplumb functions (:help NAME for one):");
    for (name, sigs) in &idx.functions {
        let desc = describe(name).map_or("", |(_, d)| d);
        let _ = writeln!(out, "  {name:<16} {desc}");
        for s in sigs {
            let _ = writeln!(out, "  {:<16}   {s}", "");
        }
    }
    let _ = writeln!(out, "properties:");
    for (name, sigs) in &idx.properties {
        let desc = describe(name).map_or("", |(_, d)| d);
        let _ = writeln!(out, "  {name:<16} {desc}  ({})", sigs.join(", "));
    }
    if !user.is_empty() {
        let _ = writeln!(out, "your functions:");
        for f in user.values() {
            let _ = writeln!(out, "  {:<30} {}", f.signature, first_line(&f.doc));
        }
    }
    let _ = writeln!(out, "commands:");
    for (c, d) in META_HELP {
        let _ = writeln!(out, "  {c:<16} {d}");
    }
    let _ = writeln!(
        out,
        "Each statement is applied when it is complete; Ctrl-C stops a running one \
         (it is rolled back), Ctrl-D leaves."
    );
    out
}

fn first_line(doc: &str) -> &str {
    doc.lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("///")
                .trim_start_matches("/**")
                .trim()
        })
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

pub fn help_one(
    idx: &FnIndex,
    user: &BTreeMap<(String, usize), UserFn>,
    name: &str,
) -> Option<String> {
    let name = name.trim().trim_end_matches("()");
    let mut out = String::new();
    if let Some((c, d)) = META_HELP
        .iter()
        .find(|(c, _)| c.split(' ').next() == Some(&format!(":{}", name.trim_start_matches(':'))))
    {
        let _ = writeln!(out, "{c}  {d}");
    }
    if let Some(sigs) = idx.functions.get(name).or_else(|| idx.properties.get(name)) {
        if let Some((usage, desc)) = describe(name) {
            let _ = writeln!(out, "{usage}\n  {desc}");
        }
        let _ = writeln!(out, "signatures:");
        for s in sigs {
            let _ = writeln!(out, "  {s}");
        }
    }
    for ((n, _), f) in user {
        if n == name {
            let _ = writeln!(out, "{}  (defined in {})", f.signature, f.source);
            for l in f.doc.lines() {
                let _ = writeln!(out, "  {}", l.trim());
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

fn nat_line(r: &NatRule) -> String {
    let oif = |o: &Option<String>| o.as_ref().map(|o| format!(" oif {o}")).unwrap_or_default();
    match r {
        NatRule::Masquerade { src, oif: o, .. } => format!("masquerade {src}{}", oif(o)),
        NatRule::Snat {
            src, to, oif: o, ..
        } => format!("snat {src} → {to}{}", oif(o)),
        NatRule::Hairpin { subnet, .. } => format!("hairpin masquerade {subnet}"),
        NatRule::LocalhostMasquerade { oif, .. } => format!("localhost masquerade oif {oif}"),
        NatRule::Dnat(m) => {
            let ports = if m.ports.0 == m.ports.1 {
                m.ports.0.to_string()
            } else {
                format!("{}-{}", m.ports.0, m.ports.1)
            };
            let daddr = m.daddr.map(|d| d.to_string()).unwrap_or_else(|| "*".into());
            let to = match m.to_port {
                Some(p) => format!("{}:{p}", m.to_addr),
                None => m.to_addr.to_string(),
            };
            format!("dnat {} {daddr}:{ports} → {to}", m.proto.name())
        }
    }
}

/// The session's model: per namespace its links (kind, peer, master,
/// state, MTU, addresses), routes, sysctls and NAT rules.
pub fn show(t: &Topology) -> String {
    if t.size() == 0 {
        return "the session has built nothing yet\n".to_string();
    }
    let mut out = String::new();
    for ns in t.touched_ns() {
        let _ = match &ns {
            NsRef::Host => writeln!(out, "host"),
            NsRef::Named(n) => writeln!(out, "netns {n}"),
        };
        for (id, l) in t.links().filter(|(_, l)| l.ns == ns) {
            let mut line = format!("  {:<15}", l.name.to_string());
            match &l.kind {
                LinkKind::Veth { peer } => {
                    let p = t.get(*peer);
                    let other = match &p.ns {
                        NsRef::Host => p.name.to_string(),
                        NsRef::Named(n) => format!("{n}:{}", p.name),
                    };
                    let _ = write!(line, " veth ↔ {other}");
                }
                LinkKind::Bridge => line.push_str(" bridge"),
                LinkKind::Existing => line.push_str(" device"),
                LinkKind::Macvlan { parent, mode } => {
                    let _ = write!(
                        line,
                        " macvlan on {} ({})",
                        t.get(*parent).name,
                        mode.as_str()
                    );
                }
                LinkKind::Tun(t) => {
                    let _ = write!(line, " {}", t.words());
                }
                LinkKind::Vxlan { spec, .. } => {
                    let _ = write!(line, " vxlan id {}", spec.id);
                }
            }
            match l.up {
                Some(true) => line.push_str(" up"),
                Some(false) => line.push_str(" down"),
                None => {}
            }
            if let Some(m) = l.mtu {
                let _ = write!(line, " mtu {m}");
            }
            if let Some(m) = l.master {
                let _ = write!(line, " master {}", t.get(m).name);
            }
            if let Some(on) = l.stp {
                let _ = write!(line, " stp {}", if on { "on" } else { "off" });
            }
            for a in t.addrs().iter().filter(|a| a.link == id) {
                let _ = write!(line, " {}", a.cidr);
            }
            let _ = writeln!(out, "{line}");
        }
        for r in t.routes().iter().filter(|r| r.ns == ns) {
            let _ = writeln!(out, "  route {} via {}", r.route.dest, r.route.via);
        }
        for s in t.sysctls().iter().filter(|s| s.ns == ns) {
            let _ = writeln!(out, "  sysctl {}={}", s.key, s.value);
        }
        for n in t.nat().iter().filter(|n| n.ns == ns) {
            let _ = writeln!(out, "  {}", nat_line(&n.rule));
        }
    }
    out
}

/// A Rhai literal for a `--set` value, as `param_value` typed it.
fn literal(v: &str) -> String {
    if v.parse::<i64>().is_ok() || v.parse::<f64>().is_ok() || v.parse::<bool>().is_ok() {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

/// One saved input: its text, ended so the next one parses after it.
fn terminated(text: &str) -> String {
    let t = text.trim_end();
    if t.ends_with(';') || t.ends_with('}') {
        return t.to_string();
    }
    match t.lines().last() {
        // A trailing comment would swallow a `;` on the same line.
        Some(l) if l.contains("//") => format!("{t}\n;"),
        _ => format!("{t};"),
    }
}

pub struct SavedInput<'a> {
    pub text: &'a str,
    /// The file it came from (`repl FILE`, `:load`), if any.
    pub file: Option<&'a str>,
}

/// The session as a script: `--set` parameters (overridable again with
/// `--set`), then each successful statement in order.
pub fn script(topology: &str, params: &[(String, String)], inputs: &[SavedInput]) -> String {
    let mut out = format!(
        "// Saved from `netplumb repl` (topology '{topology}'): `netplumb up` on this file\n\
         // rebuilds what the session had built.\n"
    );
    for (k, v) in params {
        let _ = writeln!(
            out,
            "const {k} = if is_def_var(\"{k}\") {{ {k} }} else {{ {} }};",
            literal(v)
        );
    }
    for i in inputs {
        if let Some(f) = i.file {
            let _ = writeln!(out, "// from {f}");
        }
        let _ = writeln!(out, "{}", terminated(i.text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_inputs_parse_one_after_another() {
        let s = script(
            "repl",
            &[("n".into(), "3".into()), ("who".into(), "lab".into())],
            &[
                SavedInput {
                    text: "let a = 1",
                    file: None,
                },
                SavedInput {
                    text: "a + 1 // two",
                    file: None,
                },
                SavedInput {
                    text: "for i in 0..n {\n  print(i);\n}",
                    file: None,
                },
                SavedInput {
                    text: "fn f(x) { x }\nf(who)",
                    file: Some("x.rhai"),
                },
            ],
        );
        assert!(Engine::new().compile(&s).is_ok(), "{s}");
        assert!(s.contains("const who = if is_def_var(\"who\") { who } else { \"lab\" };"));
    }

    #[test]
    fn signatures_read_like_scripts() {
        let e = Engine::new();
        let s = clean_signature(&e, "bridge(_: &mut Netns, _: string) -> core::result::Result<netplumb::script::api::LinkHandle, alloc::boxed::Box<rhai::EvalAltResult>>").map(|s| s.text);
        assert_eq!(s.as_deref(), Some("Netns.bridge(string) -> LinkHandle"));
        let s = clean_signature(&e, "get$name(_: &mut Link) -> String").map(|s| s.text);
        assert_eq!(s.as_deref(), Some("Link.name -> string"));
        let s = clean_signature(
            &e,
            "exec(_: &mut Netns, _: string) -> core::result::Result<alloc::collections::btree::map::BTreeMap<smartstring::SmartString<smartstring::config::LazyCompact>, rhai::Dynamic>, alloc::boxed::Box<rhai::EvalAltResult>>",
        )
        .map(|s| s.text);
        assert_eq!(s.as_deref(), Some("Netns.exec(string) -> map"));
        assert_eq!(param_hint("netns").as_deref(), Some("name)"));
        assert_eq!(param_hint("route").as_deref(), Some("dest, via)"));
    }
}
