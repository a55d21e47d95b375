//! NAT: one table per namespace, compared by the fingerprint kept in its
//! userdata (which also marks it as this topology's: a table of the same
//! name without the mark is someone else's and is never touched), and the
//! host ports it publishes, checked against every other topology's.

use netplumb_nft::{NatRule, NatTable};

use super::{Cx, DiffError, Step, err, nat_table_name};
use crate::kernel::Kernel;
use crate::ledger::{Entry, PortClaim, TableName};
use crate::model::NsRef;
use crate::op::Op;
use crate::topo::{FILTER_TAG_BASE, Pos, Topology};

const MARK: &str = "netplumb:";

/// A stable fingerprint of a NAT table's content, tagged with the topology
/// that made it, stored as the table's userdata: a second `up` compares it
/// instead of re-reading every element.
pub fn fingerprint(topology: &str, table: &NatTable) -> Vec<u8> {
    let h = netplumb_nft::fingerprint(table);
    format!("{MARK}{topology}:{h:016x}").into_bytes()
}

/// The topology a table's userdata names, when netplumb made it.
pub fn marker_topology(userdata: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(userdata).ok()?;
    let rest = s.strip_prefix(MARK)?;
    let (topo, _) = rest.rsplit_once(':')?;
    Some(topo)
}

/// "pa.rhai:3": where a published port was declared, for another
/// topology's error message.
fn place(script: &str, pos: &Pos) -> String {
    if pos.source.is_empty() {
        format!("{script}:{}", pos.line)
    } else {
        format!("{}:{}", pos.source, pos.line)
    }
}

/// The host ports the script publishes in `ns`, ranges merged per line.
fn port_claims(topo: &Topology, ns: &NsRef, script: &str) -> Vec<(PortClaim, Pos)> {
    let mut out: Vec<(PortClaim, Pos)> = Vec::new();
    for d in topo.nat().iter().filter(|d| &d.ns == ns) {
        let NatRule::Dnat(m) = &d.rule else { continue };
        let v6 = m.to_addr.is_ipv6();
        if let Some((l, lpos)) = out.last_mut()
            && l.proto == m.proto
            && l.v6 == v6
            && l.daddr == m.daddr
            && l.hi.checked_add(1) == Some(m.ports.0)
            // the same line reads the same place without writing it (a
            // loop of 100,000 mappings is one claim)
            && ((lpos.source == d.pos.source && lpos.line == d.pos.line)
                || l.at == place(script, &d.pos))
        {
            l.hi = m.ports.1;
            continue;
        }
        let c = PortClaim {
            proto: m.proto,
            v6,
            daddr: m.daddr,
            lo: m.ports.0,
            hi: m.ports.1,
            at: place(script, &d.pos),
        };
        out.push((c, d.pos.clone()));
    }
    out
}

fn overlaps(a: &PortClaim, b: &PortClaim) -> bool {
    a.proto == b.proto
        && a.v6 == b.v6
        && (a.daddr.is_none() || b.daddr.is_none() || a.daddr == b.daddr)
        && a.lo <= b.hi
        && b.lo <= a.hi
}

/// A host port another topology already publishes is refused before
/// anything changes, naming both topologies and lines.
pub(super) fn check_ports(topo: &Topology, cx: &mut Cx) -> Result<(), DiffError> {
    let mut nss: Vec<NsRef> = Vec::new();
    for d in topo.nat() {
        if !nss.contains(&d.ns) {
            nss.push(d.ns.clone());
        }
    }
    for ns in nss {
        for (c, pos) in port_claims(topo, &ns, cx.script) {
            for (other, ons, oc) in cx.world.port_claims() {
                if ons != &ns || !overlaps(&c, oc) {
                    continue;
                }
                let port = c.lo.max(oc.lo);
                let where_ = match &ns {
                    NsRef::Host => "host".to_string(),
                    NsRef::Named(n) => format!("netns {n}"),
                };
                return Err(err(
                    &pos,
                    format!(
                        "{} port {port} in {where_} is already published by topology '{other}' ({})",
                        c.proto.name(),
                        oc.at
                    ),
                    Some("publish another host port, or take that topology down first"),
                ));
            }
        }
    }
    Ok(())
}

/// Every namespace with a NAT or filter rule, in declaration order.
pub fn nat_namespaces(topo: &Topology) -> Vec<NsRef> {
    let mut out: Vec<NsRef> = Vec::new();
    let nat = topo.nat().iter().map(|d| d.ns.clone());
    let filters = topo.filters().iter().map(|d| topo.filter_ns(d));
    for ns in nat.chain(filters).chain(topo.loss_namespaces()) {
        if !out.contains(&ns) {
            out.push(ns);
        }
    }
    out
}

/// Where the first NAT or filter rule of `ns` was declared: the table's
/// errors point there when no rule of their own is named.
fn first_pos<'a>(topo: &'a Topology, ns: &NsRef) -> Option<&'a Pos> {
    topo.nat()
        .iter()
        .find(|d| &d.ns == ns)
        .map(|d| &d.pos)
        .or_else(|| {
            topo.filters()
                .iter()
                .find(|d| &topo.filter_ns(d) == ns)
                .map(|d| &d.pos)
        })
}

/// The table the script declares in `ns` (userdata still empty): its NAT
/// rules and its forward chain, validated.
pub fn declared_table(topo: &Topology, ns: &NsRef, name: &str) -> Result<NatTable, DiffError> {
    // sized up front: a filtered chain has no size hint, and growing a
    // vector of 100,000 rules by doubling copies and faults it in again
    let mut rules = Vec::with_capacity(topo.nat().len());
    rules.extend(
        topo.nat()
            .iter()
            .filter(|d| &d.ns == ns)
            .map(|d| d.rule.clone()),
    );
    rules.extend(topo.hairpin_rules(ns));
    let table = NatTable {
        name: name.to_string(),
        rules,
        filter: topo
            .filter_rules(ns)
            .map_err(|(pos, msg)| err(&pos, msg, None))?,
        loss: topo.loss_rules(ns),
        userdata: Vec::new(),
        ..Default::default()
    };
    let first = first_pos(topo, ns);
    table.validate().map_err(|e| {
        let (pos, other) = nat_error_pos(topo, &e);
        let fallback = Pos::default();
        let mut d = err(pos.or(first).unwrap_or(&fallback), e.to_string(), None);
        d.other = other.cloned().map(Box::new);
        d
    })?;
    Ok(table)
}

pub(super) fn nat(topo: &Topology, kernel: &mut dyn Kernel, cx: &mut Cx) -> Result<(), DiffError> {
    let name = nat_table_name(cx.topo_name);
    for ns in nat_namespaces(topo) {
        let mut table = declared_table(topo, &ns, &name)?;
        let first = &first_pos(topo, &ns).cloned().unwrap_or_default();
        table.userdata = fingerprint(cx.topo_name, &table);
        cx.diff
            .nat_prints
            .push((ns.clone(), table.userdata.clone()));
        let info = if cx.is_fresh(&ns) {
            None
        } else {
            kernel.nat_info(&ns, &name).map_err(|e| {
                err(
                    first,
                    format!("cannot read NAT table {name} in netns {ns}: {e}"),
                    None,
                )
            })?
        };
        if let Some(i) = &info
            && marker_topology(&i.userdata) != Some(cx.topo_name)
        {
            let whose = match marker_topology(&i.userdata) {
                Some(t) => format!("topology '{t}'"),
                None => "something other than netplumb".to_string(),
            };
            return Err(err(
                first,
                format!("netns {ns} already has an nftables table inet {name}, made by {whose}"),
                Some(
                    "netplumb never changes a table it did not make: rename or remove that table, or pick another topology name with --name",
                ),
            ));
        }
        let mine = cx
            .owned
            .iter()
            .find(|e| matches!(e, Entry::Nat { ns: n, .. } if n == &ns))
            .cloned();
        let record = Entry::Nat {
            ns: ns.clone(),
            table: TableName::for_topology(cx.topo_name),
            handle: info.as_ref().map(|i| i.handle),
            ports: port_claims(topo, &ns, cx.script)
                .into_iter()
                .map(|(c, _)| c)
                .collect(),
        };
        if let Some(i) = &info
            && i.userdata == table.userdata
        {
            if mine.as_ref() != Some(&record) {
                cx.diff.releases.extend(mine);
                cx.diff.claims.push(record);
            }
            continue;
        }
        // Only a table that changes can have a new mapping (reading the
        // sockets walks the whole machine's TCP hash).
        if !cx.is_fresh(&ns) {
            check_listeners(topo, kernel, &ns, &name)?;
        }
        let undo = match &info {
            None => vec![Op::DelNat {
                ns: ns.clone(),
                table: name.clone(),
                handle: None,
            }],
            Some(_) => kernel
                .nat_table(&ns, &name)
                .ok()
                .flatten()
                .map(|prev| Op::ReplaceNat {
                    ns: ns.clone(),
                    table: Box::new(prev),
                    replaces: None,
                })
                .into_iter()
                .collect(),
        };
        let record = match record {
            Entry::Nat {
                ns, table, ports, ..
            } => Entry::Nat {
                ns,
                table,
                handle: None,
                ports,
            },
            other => other,
        };
        cx.push_step(Step {
            op: Op::ReplaceNat {
                ns: ns.clone(),
                table: Box::new(table),
                replaces: info.map(|i| i.handle),
            },
            pos: first.clone(),
            records: vec![record],
            retires: mine.into_iter().collect(),
            undo,
            key: Some(format!("nat {ns}")),
        })?;
    }
    Ok(())
}

/// The script positions of the rule an nft error names by tag (and of the
/// rule it clashes with, when there is one).
pub fn nat_error_pos<'a>(
    topo: &'a Topology,
    e: &netplumb_nft::NftError,
) -> (Option<&'a Pos>, Option<&'a Pos>) {
    let (tag, other) = match e {
        netplumb_nft::NftError::Invalid { tag, other_tag, .. } => (Some(*tag), *other_tag),
        netplumb_nft::NftError::Kernel { tag, .. } => (*tag, None),
        _ => (None, None),
    };
    let at = |t: Option<usize>| match t {
        Some(t) if t >= FILTER_TAG_BASE => topo.filters().get(t - FILTER_TAG_BASE).map(|d| &d.pos),
        Some(t) => topo.nat().get(t).map(|d| &d.pos),
        None => None,
    };
    (at(tag), at(other))
}

/// A new mapping on a port a socket already waits on in `ns` would take
/// that service's traffic without a word: refused before any change,
/// naming the socket and its process (unless `force: true`). A mapping the
/// kernel's table holds already is not new, whatever listens now.
fn check_listeners(
    topo: &Topology,
    kernel: &mut dyn Kernel,
    ns: &NsRef,
    table: &str,
) -> Result<(), DiffError> {
    let Ok(listeners) = kernel.listeners(ns) else {
        return Ok(());
    };
    if listeners.is_empty() {
        return Ok(());
    }
    let mut published: Option<Vec<netplumb_nft::DnatMapping>> = None;
    for d in topo.nat().iter().filter(|d| &d.ns == ns && !d.force) {
        let NatRule::Dnat(m) = &d.rule else { continue };
        let v6 = m.to_addr.is_ipv6();
        let hit = listeners.iter().find(|l| {
            l.proto == m.proto
                && (m.ports.0..=m.ports.1).contains(&l.port)
                // A v6 socket on :: takes v4 too (unless v6only).
                && (l.addr.is_ipv6() == v6 || (l.addr.is_ipv6() && l.addr.is_unspecified()))
                && (l.addr.is_unspecified() || m.daddr.is_none_or(|a| a == l.addr))
        });
        let Some(l) = hit else { continue };
        let old = published.get_or_insert_with(|| {
            kernel
                .nat_table(ns, table)
                .ok()
                .flatten()
                .map(|t| {
                    t.normalized()
                        .rules
                        .into_iter()
                        .filter_map(|r| match r {
                            NatRule::Dnat(m) => Some(m),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
        let norm = match NatRule::Dnat(m.clone()).normalized() {
            NatRule::Dnat(n) => n,
            _ => continue,
        };
        if old.contains(&norm) {
            continue;
        }
        let where_ = match ns {
            NsRef::Host => "host".to_string(),
            NsRef::Named(n) => format!("netns {n}"),
        };
        let who = kernel
            .socket_holder(l.inode)
            .map(|h| format!(", held by {h}"))
            .unwrap_or_default();
        let sock = match l.addr {
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", l.port),
            a => format!("{a}:{}", l.port),
        };
        return Err(err(
            &d.pos,
            format!(
                "{} port {} in {where_} already has a listening socket ({sock}{who}): the mapping would take its traffic",
                m.proto.name(),
                l.port
            ),
            Some("publish another host port, stop that service, or add force: true to the mapping"),
        ));
    }
    Ok(())
}
