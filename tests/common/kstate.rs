//! The kernel state of a sandbox as one comparable text, read back with
//! `ip -j` and `nft -j`: per namespace its links (kind, mtu, up, master,
//! stp), addresses in kernel order, routes of every table, a few sysctls and
//! the nft ruleset. What differs between two equal machines is left out:
//! ifindexes, MAC addresses, link-local fe80 addresses and routes, nft
//! handles.

use serde_json::Value;

use super::Sandbox;

/// Sysctls the day-two tests set or depend on.
pub const SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
];

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        other => other.to_string(),
    }
}

fn links(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let up = l["flags"]
                .as_array()
                .is_some_and(|f| f.iter().any(|x| x == "UP"));
            let kind = &l["linkinfo"]["info_kind"];
            let stp = &l["linkinfo"]["info_data"]["stp_state"];
            format!(
                "link {} kind={} mtu={} up={up} master={} stp={} peer={}",
                s(&l["ifname"]),
                s(kind),
                s(&l["mtu"]),
                s(&l["master"]),
                s(stp),
                // the peer's name when it is in the same namespace
                s(&l["link"]),
            )
        })
        .collect();
    out.sort();
    out
}

fn addrs(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| {
            let a: Vec<String> = l["addr_info"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter(|a| !s(&a["local"]).starts_with("fe80"))
                .map(|a| format!("{}/{}", s(&a["local"]), s(&a["prefixlen"])))
                .collect();
            format!("addrs {}: {}", s(&l["ifname"]), a.join(" "))
        })
        .collect();
    out.sort();
    out
}

fn routes(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|r| !s(&r["dst"]).starts_with("fe80"))
        .map(|r| {
            format!(
                "route table={} type={} {} via {} dev {} proto {} scope {} metric {} src {}",
                s(&r["table"]),
                s(&r["type"]),
                s(&r["dst"]),
                s(&r["gateway"]),
                s(&r["dev"]),
                s(&r["protocol"]),
                s(&r["scope"]),
                s(&r["metric"]),
                s(&r["prefsrc"]),
            )
        })
        .collect();
    out.sort();
    out
}

/// Rules, chains, tables and map elements, handles dropped, sorted.
pub fn nft(v: &Value) -> Vec<String> {
    let mut items: Vec<String> = v["nftables"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|x| x.get("metainfo").is_none())
        .map(|x| {
            let mut x = x.clone();
            if let Some(o) = x.as_object_mut() {
                for (_, inner) in o.iter_mut() {
                    if let Some(o) = inner.as_object_mut() {
                        o.remove("handle");
                        if let Some(e) = o.get_mut("elem").and_then(|e| e.as_array_mut()) {
                            e.sort_by_key(|a| a.to_string());
                        }
                    }
                }
            }
            format!("nft {x}")
        })
        .collect();
    items.sort();
    items
}

/// One namespace's state ("" is the sandbox's own namespace).
pub fn ns_state(sb: &Sandbox, ns: &str) -> Vec<String> {
    let (ip, ex) = if ns.is_empty() {
        ("ip".to_string(), String::new())
    } else {
        (format!("ip -n {ns}"), format!("ip netns exec {ns} "))
    };
    let mut out = vec![format!("== netns {ns}")];
    out.extend(links(&sb.json(&format!("{ip} -j -d link show"))));
    out.extend(addrs(&sb.json(&format!("{ip} -j addr show"))));
    out.extend(routes(
        &sb.json(&format!("{ip} -j -4 route show table all")),
    ));
    out.extend(routes(
        &sb.json(&format!("{ip} -j -6 route show table all")),
    ));
    for k in SYSCTLS {
        out.push(format!(
            "sysctl {k}={}",
            sb.ok(&format!("{ex}sysctl -n {k}")).trim()
        ));
    }
    out.extend(nft(&sb.json(&format!("{ex}nft -j list ruleset"))));
    out
}

/// The whole sandbox: its namespaces by name, then each one's state.
pub fn state(sb: &Sandbox) -> String {
    let mut nss: Vec<String> = sb
        .ok("ip netns list | cut -d' ' -f1")
        .lines()
        .map(str::to_string)
        .collect();
    nss.sort();
    let mut out = vec![format!("netns: {}", nss.join(" "))];
    out.extend(ns_state(sb, ""));
    for n in &nss {
        out.extend(ns_state(sb, n));
    }
    out.join("\n")
}

/// Assert two states are equal, showing the lines that differ.
pub fn assert_same(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let g: Vec<&str> = got.lines().collect();
    let w: Vec<&str> = want.lines().collect();
    let only_got: Vec<&&str> = g.iter().filter(|l| !w.contains(l)).collect();
    let only_want: Vec<&&str> = w.iter().filter(|l| !g.contains(l)).collect();
    panic!(
        "{what}: kernel states differ\nonly in the first:\n{}\nonly in the second:\n{}\n(order differs if both are empty)\nfirst:\n{got}",
        only_got
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        only_want
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
