//! The ops that are not one rtnetlink request: sysctls, NAT tables (with
//! the conntrack entries of retired mappings), daemons, files, moves that
//! hand over a namespace descriptor. Applied one at a time by the batch.

use netplumb_nft::{CtMatch, DnatMapping, NatRule, NatTable, NftSocket};
use std::collections::HashSet;

use std::os::fd::AsRawFd;

use super::batch::{ino_of, new_ns_init, nft_err};
use super::netns::in_ns;
use super::{LinuxKernel, msg};
use crate::kernel::KernelError;
use crate::model::NsRef;
use crate::op::{LinkSpec, Made, Op};

pub(super) fn special(k: &mut LinuxKernel, op: &Op) -> Result<Made, KernelError> {
    match op {
        Op::StopDaemon { identity, .. } => super::daemon::stop(identity),
        Op::WriteFile { ns, path, content } => super::daemon::write_file(ns, path, Some(content)),
        Op::RemoveFile { ns, path } => super::daemon::write_file(ns, path, None),
        // Only through `Kernel::start_daemon`, which records the process
        // before it runs anything.
        Op::StartDaemon { daemon, .. } => Err(KernelError::other(format!(
            "daemon {} can only be started with its write-ahead record",
            daemon.spec.name
        ))),
        Op::AddNetns { ns } => {
            let (f, rt) = k.nsdir.create(ns, new_ns_init)?;
            let ino = ino_of(&f);
            let r = NsRef::Named(ns.clone());
            k.forget(&r);
            k.index.insert(&r, "lo", 1);
            k.conns.adopt(&r, f, rt);
            Ok(Made::Netns { ino })
        }
        Op::Sysctl { ns, key, value } => {
            let path = LinuxKernel::sysctl_path(key);
            let f = k.conns.file(&k.nsdir, ns)?;
            in_ns(f, || {
                let old = std::fs::read_to_string(&path)
                    .map_err(|e| KernelError::from(e).context(&format!("cannot read {key}")))?;
                std::fs::write(&path, value.as_bytes())
                    .map_err(|e| KernelError::from(e).context(&format!("cannot set {key}")))?;
                Ok(Made::Sysctl {
                    old: old.trim().to_string(),
                })
            })
        }
        // By handle: a table swapped for someone else's since the plan was
        // made fails the whole batch instead of being deleted.
        Op::ReplaceNat {
            ns,
            table,
            replaces,
        } => {
            let sock = k.conns.nft(&k.nsdir, ns)?;
            let before = match replaces {
                Some(_) => mappings_with_flows(sock, &table.name),
                None => Vec::new(),
            };
            let handle = match replaces {
                Some(h) => sock.replace_table_handle(table, *h),
                None => sock.create_table(table),
            }
            .map_err(nft_err)?;
            // A first table, or one no flow went through: nothing to forget,
            // and no set of 100,000 mappings to build to learn so.
            if !before.is_empty() {
                let now: HashSet<DnatMapping> = dnat_mappings(&table.normalized()).collect();
                forget_flows(sock, before.iter().filter(|m| !now.contains(m)));
            }
            Ok(Made::Table { handle })
        }
        Op::DelNat { ns, table, handle } => {
            let sock = k.conns.nft(&k.nsdir, ns)?;
            let before = mappings_with_flows(sock, table);
            let existed = match handle {
                Some(h) => sock.delete_table_handle(table, *h),
                None => sock.delete_table(table),
            }
            .map_err(nft_err)?;
            if existed {
                forget_flows(sock, before.iter());
                Ok(Made::Nothing)
            } else {
                Err(KernelError::errno(
                    libc::ENOENT,
                    format!("no NAT table {table}"),
                ))
            }
        }
        Op::AddLink {
            ns,
            name,
            spec: LinkSpec::Tun(t),
            ..
        } => {
            use super::tun::{TunMode, TunOpts, create_in};
            let mut o = TunOpts::new(
                name.as_str(),
                if t.tap { TunMode::Tap } else { TunMode::Tun },
            );
            o.owner = t.owner;
            o.group = t.group;
            o.multi_queue = t.multi_queue;
            let f = k.conns.file(&k.nsdir, ns)?;
            create_in(f, &o)?;
            k.index.remove(ns, name.as_str());
            let index = k.ifindex(ns, name.as_str())?;
            Ok(Made::Link { index, peer: None })
        }
        Op::MoveLink { ns, name, to } => {
            let f = k.conns.ns_file(&k.nsdir, to)?;
            let (m, fl) = msg::set_link(msg::by_name(name.as_str()).setns_by_fd(f.as_raw_fd()));
            k.conns.rtnl(&k.nsdir, ns)?.request(m, fl)?;
            drop(f);
            k.index.remove(ns, name.as_str());
            k.index.remove(to, name.as_str());
            // The device may get another index where it lands.
            let index = k.ifindex(to, name.as_str())?;
            Ok(Made::Link { index, peer: None })
        }
        other => Err(KernelError::other(format!(
            "not a special op: {}",
            other.summary()
        ))),
    }
}

fn dnat_mappings(t: &NatTable) -> impl Iterator<Item = DnatMapping> + '_ {
    t.rules.iter().filter_map(|r| match r {
        NatRule::Dnat(m) => Some(m.clone()),
        _ => None,
    })
}

/// The DNAT mappings table `name` holds now (normal form), to tell which
/// ones a replace or delete retires. None when no flow of the namespace was
/// DNAT'd (nothing to forget, and the whole map is not read) or when the
/// table is unreadable.
fn mappings_with_flows(sock: &mut NftSocket, name: &str) -> Vec<DnatMapping> {
    if matches!(sock.has_dnat_flows(), Ok(false)) {
        return Vec::new();
    }
    match sock.read_table(name) {
        Ok(Some(rb)) => dnat_mappings(&rb.table).collect(),
        _ => Vec::new(),
    }
}

/// Delete the conntrack entries of retired mappings: an established flow
/// (a UDP stream above all, which never ends on its own) keeps the NAT it
/// was given when it began, so without this it goes on to the old backend
/// until its entry times out. Best effort: the table change has landed,
/// and a flow that survives only delays the move.
fn forget_flows<'a>(sock: &mut NftSocket, gone: impl Iterator<Item = &'a DnatMapping>) {
    let ms: Vec<CtMatch> = gone.map(CtMatch::for_mapping).collect();
    if !ms.is_empty() {
        let _ = sock.delete_conntrack_any(&ms);
    }
}
