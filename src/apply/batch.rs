//! Applying a batch of ops: consecutive rtnetlink requests in one namespace
//! are pipelined on its socket, runs of namespace creations and deletions go
//! to a few threads, and every op's outcome — what it made, or its refusal
//! — is reported, so a rollback undoes exactly what happened.

use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::LinkAttribute;
use netplumb_nft::NftError;

use super::request::request_for;
use super::rtnl::Rtnl;
use super::special::special;
use super::{LinuxKernel, msg};
use crate::kernel::{KernelError, NETNS_MARK};
use crate::model::{IfName, NsName, NsRef};
use crate::op::{LinkChange, LinkSpec, Made, Op, Outcome, VethWith};

pub fn nft_err(e: NftError) -> KernelError {
    let tag = match &e {
        NftError::Kernel { tag, .. } => *tag,
        NftError::Invalid { tag, .. } => Some(*tag),
        _ => None,
    };
    let errno = match &e {
        NftError::Kernel { errno, .. } => Some(*errno),
        NftError::Io(io) => io.raw_os_error(),
        _ => None,
    };
    KernelError {
        errno,
        msg: e.to_string(),
        tag,
        not_run: false,
    }
}

/// Runs inside a namespace just made: its rtnetlink socket, and `lo` up
/// (it starts down) with netplumb's mark.
pub(super) fn new_ns_init() -> Result<Rtnl, KernelError> {
    let mut rt = Rtnl::open()?;
    let (m, fl) = msg::init_lo(NETNS_MARK);
    rt.request(m, fl)?;
    Ok(rt)
}

pub(super) fn ino_of(f: &std::fs::File) -> u64 {
    use std::os::unix::fs::MetadataExt;
    f.metadata().map(|m| m.ino()).unwrap_or(0)
}

/// Is the op one rtnetlink request (the rest are mounts, /proc/sys,
/// nf_tables, or need an answer before the next op)?
fn is_rtnetlink(op: &Op) -> bool {
    !matches!(
        op,
        Op::AddNetns { .. }
            | Op::DelNetns { .. }
            | Op::Sysctl { .. }
            | Op::ReplaceNat { .. }
            | Op::DelNat { .. }
            | Op::MoveLink { .. }
            | Op::AddLink {
                spec: LinkSpec::Tun(_),
                ..
            }
            | Op::StartDaemon { .. }
            | Op::StopDaemon { .. }
            | Op::WriteFile { .. }
            | Op::RemoveFile { .. }
    )
}

/// Consecutive sysctl writes worth threads of their own.
const SYSCTL_RUN: usize = 8;

struct Pending {
    ns: NsRef,
    reqs: Vec<(usize, msg::Req)>,
    /// Namespace files the requests name by fd (IFLA_NET_NS_FD), held open
    /// until they are sent: the handle cache may close its own meanwhile.
    fds: Vec<std::fs::File>,
}

pub(super) fn apply_all(k: &mut LinuxKernel, ops: &[Op]) -> Outcome<KernelError> {
    k.ready_seen.forget_touched(ops);
    let mut applied: Vec<Option<Made>> = vec![None; ops.len()];
    let fail = |applied: Vec<Option<Made>>, i: usize, e: KernelError| Outcome {
        applied,
        failed: Some((i, e)),
    };
    let mut pending = Pending {
        ns: NsRef::Host,
        reqs: Vec::new(),
        fds: Vec::new(),
    };
    let mut i = 0;
    while i < ops.len() {
        let op = &ops[i];
        let run = match op {
            Op::AddNetns { .. } => ops[i..]
                .iter()
                .take_while(|o| matches!(o, Op::AddNetns { .. }))
                .count(),
            Op::DelNetns { .. } => ops[i..]
                .iter()
                .take_while(|o| matches!(o, Op::DelNetns { .. }))
                .count(),
            Op::Sysctl { .. } => ops[i..]
                .iter()
                .take_while(|o| matches!(o, Op::Sysctl { .. }))
                .count(),
            _ => 0,
        };
        let needs_drain = !pending.reqs.is_empty()
            && (run > 0 || op.ns() != pending.ns || !indexes_known(k, op) || !is_rtnetlink(op));
        if needs_drain && let Err((j, e)) = flush(k, &mut pending, ops, &mut applied) {
            return fail(applied, j, e);
        }
        if matches!(op, Op::Sysctl { .. }) && run >= SYSCTL_RUN {
            let results = k.timed("sysctl (parallel)", run, |k| {
                super::sysctl::write_many(&k.nsdir, &ops[i..i + run])
            });
            // All ran: record every write made, then report the first refusal.
            let mut failure = None;
            for (j, r) in results.into_iter().enumerate() {
                match r {
                    Ok(m) => applied[i + j] = Some(m),
                    Err(e) => {
                        failure.get_or_insert((i + j, e));
                    }
                }
            }
            if let Some((j, e)) = failure {
                return fail(applied, j, e);
            }
            i += run;
            continue;
        }
        let spread = local_run(k, &ops[i..]);
        if spread > 0 {
            if let Err((j, e)) = flush(k, &mut pending, ops, &mut applied) {
                return fail(applied, j, e);
            }
            if let Err((j, e)) = in_namespaces(k, ops, i, i + spread, &mut applied) {
                return fail(applied, j, e);
            }
            i += spread;
            continue;
        }
        let namespaces_run = matches!(op, Op::AddNetns { .. } | Op::DelNetns { .. });
        if namespaces_run && (run > 1 || matches!(op, Op::DelNetns { .. })) {
            if let Err((j, e)) = namespaces(k, &ops[i..i + run], i, &mut applied) {
                return fail(applied, j, e);
            }
            i += run;
            continue;
        }
        if !is_rtnetlink(op) {
            let what = match op {
                Op::AddNetns { .. } => "netns create",
                Op::Sysctl { .. } => "sysctl",
                Op::MoveLink { .. } => "rtnetlink move",
                Op::AddLink { .. } => "tun/tap create",
                Op::StartDaemon { .. } | Op::StopDaemon { .. } => "processes",
                Op::WriteFile { .. } | Op::RemoveFile { .. } => "files",
                _ => "nf_tables",
            };
            match k.timed(what, 1, |k| special(k, op)) {
                Ok(m) => applied[i] = Some(m),
                Err(e) => return fail(applied, i, e),
            }
            i += 1;
            continue;
        }
        if pending.reqs.is_empty() {
            pending.ns = op.ns();
        }
        match request_for(k, op, &mut pending.fds) {
            Ok(req) => pending.reqs.push((i, req)),
            Err(e) => {
                if let Err((j, e)) = flush(k, &mut pending, ops, &mut applied) {
                    return fail(applied, j, e);
                }
                return fail(applied, i, e);
            }
        }
        match op {
            Op::DelLink { ns, name, .. } | Op::RenameLink { ns, name, .. } => {
                k.index.remove(ns, name.as_str());
            }
            _ => {}
        }
        i += 1;
    }
    if let Err((j, e)) = flush(k, &mut pending, ops, &mut applied) {
        return fail(applied, j, e);
    }
    Outcome {
        applied,
        failed: None,
    }
}

/// Send what is pending; record each request's outcome.
fn flush(
    k: &mut LinuxKernel,
    p: &mut Pending,
    ops: &[Op],
    applied: &mut [Option<Made>],
) -> Result<(), (usize, KernelError)> {
    if p.reqs.is_empty() {
        return Ok(());
    }
    let reqs = std::mem::take(&mut p.reqs);
    let _held = std::mem::take(&mut p.fds);
    let idx: Vec<usize> = reqs.iter().map(|(i, _)| *i).collect();
    let first = idx[0];
    let what = if p.ns == NsRef::Host {
        "rtnetlink host"
    } else {
        "rtnetlink in namespaces"
    };
    let ns = p.ns.clone();
    let n = reqs.len();
    let replies = k.timed(what, n, |k| {
        let rt = k.conns.rtnl(&k.nsdir, &ns).map_err(|e| (first, e))?;
        let reqs = reqs.into_iter().map(|(_, r)| r).collect();
        Ok::<_, (usize, KernelError)>(rt.request_many_keeping(reqs, slim_echo))
    })?;
    let mut failed = None;
    for (j, reply) in replies.into_iter().enumerate() {
        let i = idx[j];
        match reply {
            Ok(echo) => applied[i] = Some(made_from(k, &ops[i], &echo)),
            Err(e) => {
                if failed.is_none() {
                    failed = Some((i, e));
                }
            }
        }
    }
    match failed {
        Some(f) => Err(f),
        None if applied[idx[idx.len() - 1]].is_none() => Err((
            idx[idx.len() - 1],
            KernelError::other("the request was not answered"),
        )),
        None => Ok(()),
    }
}

/// An echoed link reduced to what `made_from` reads (its index and its
/// peer's): a parsed link with its stats and per-family settings is
/// kilobytes, and a window of host veths held them all (6 MiB of peak RSS
/// at S(3000,·)).
fn slim_echo(m: M) -> M {
    match m {
        M::NewLink(mut l) => {
            l.attributes.retain(|a| matches!(a, LinkAttribute::Link(_)));
            l.attributes.shrink_to_fit();
            M::NewLink(l)
        }
        m => m,
    }
}

/// The identity an applied request made, from the kernel's echo.
fn made_from(k: &mut LinuxKernel, op: &Op, echo: &[M]) -> Made {
    let (ns, name, peer) = match op {
        Op::AddVeth {
            ns,
            name,
            peer_ns,
            peer,
            ..
        } => (ns, name, Some((peer_ns, peer))),
        Op::AddBridge { ns, name } => (ns, name, None),
        Op::AddLink { ns, name, into, .. } => (into.as_ref().unwrap_or(ns), name, None),
        _ => return Made::Nothing,
    };
    let Some(l) = echo.iter().find_map(|m| match m {
        M::NewLink(l) => Some(l),
        _ => None,
    }) else {
        // No echo: ask.
        return match k.ifindex(ns, name.as_str()) {
            Ok(index) => Made::Link { index, peer: None },
            Err(_) => Made::Nothing,
        };
    };
    let index = l.header.index;
    let peer_index = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(i) => Some(*i),
        _ => None,
    });
    k.index.insert(ns, name.as_str(), index);
    if let (Some((pns, pname)), Some(pi)) = (peer, peer_index) {
        k.index.insert(pns, pname.as_str(), pi);
    }
    Made::Link {
        index,
        peer: peer_index,
    }
}

impl LinuxKernel {
    pub(super) fn ifindex(&mut self, ns: &NsRef, name: &str) -> Result<u32, KernelError> {
        if let Some(i) = self.index.get(ns, name) {
            return Ok(i);
        }
        let links = super::read::read_links(self.conns.rtnl(&self.nsdir, ns)?)?;
        self.index.learn(ns, &links);
        self.index.get(ns, name).ok_or_else(|| {
            KernelError::errno(libc::ENODEV, format!("no device {name} in netns {ns}"))
        })
    }
}

/// Whether every ifindex the op needs is already known.
fn indexes_known(k: &LinuxKernel, op: &Op) -> bool {
    let known = |ns: &NsRef, n: &str| k.index.contains(ns, n);
    match op {
        Op::RenameLink { ns, name, .. } => known(ns, name.as_str()),
        Op::AddVeth {
            ns,
            with: VethWith {
                master: Some(m), ..
            },
            ..
        } => known(ns, m.as_str()),
        Op::SetLink {
            ns,
            change: LinkChange::Master(Some(m)),
            ..
        } => known(ns, m.as_str()),
        Op::AddAddr { ns, dev, .. }
        | Op::DelAddr { ns, dev, .. }
        | Op::SetQdisc { ns, dev, .. }
        | Op::DelQdisc { ns, dev }
        | Op::AddFdb { ns, dev, .. }
        | Op::DelFdb { ns, dev, .. } => known(ns, dev.as_str()),
        Op::PutRoute { ns, route, .. } | Op::DelRouteEx { ns, route } => {
            route.devs().all(|d| known(ns, d.as_str()))
        }
        Op::AddLink { ns, spec, .. } => match spec {
            LinkSpec::Macvlan { parent, .. } => known(ns, parent.as_str()),
            LinkSpec::Vxlan { spec, .. } => spec.dev.as_ref().is_none_or(|d| known(ns, d.as_str())),
            LinkSpec::Tun(_) => true,
        },
        _ => true,
    }
}

/// Does the op touch nothing outside its own namespace and make no link
/// (so that no later op's ifindex depends on it)? Such ops of different
/// namespaces may go in any order relative to each other.
fn is_local(op: &Op) -> bool {
    matches!(
        op,
        Op::SetLink { .. }
            | Op::AddAddr { .. }
            | Op::DelAddr { .. }
            | Op::AddRoute { .. }
            | Op::ReplaceRoute { .. }
            | Op::DelRoute { .. }
            | Op::PutRoute { .. }
            | Op::DelRouteEx { .. }
            | Op::AddRule { .. }
            | Op::DelRule { .. }
            | Op::SetQdisc { .. }
            | Op::DelQdisc { .. }
            | Op::AddFdb { .. }
            | Op::DelFdb { .. }
    )
}

/// Named namespaces a run must span to be worth threads of its own.
const SPREAD_NS: usize = 8;

/// How many ops from the start of `ops` form a run of local requests in
/// named namespaces with every ifindex known, spanning at least
/// `SPREAD_NS` namespaces (0: none worth spreading).
fn local_run(k: &LinuxKernel, ops: &[Op]) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut n = 0;
    for op in ops {
        let ns = op.ns();
        if ns == NsRef::Host || !is_local(op) || !indexes_known(k, op) {
            break;
        }
        seen.insert(ns);
        n += 1;
    }
    if seen.len() >= SPREAD_NS { n } else { 0 }
}

/// One namespace's share of a spread run: its ops' positions and requests.
struct Share {
    ns: NsRef,
    idx: Vec<usize>,
    /// The links its ops bring up: asked about once they are sent.
    up: Vec<IfName>,
    reqs: std::sync::Mutex<Vec<msg::Req>>,
}

/// Ops `from..to` (a `local_run`) on a few threads, each entering one
/// namespace after another and sending its requests there at once, in
/// their order. After a refusal no further namespace is started; the ones
/// under way finish, and every outcome is recorded.
fn in_namespaces(
    k: &mut LinuxKernel,
    ops: &[Op],
    from: usize,
    to: usize,
    applied: &mut [Option<Made>],
) -> Result<(), (usize, KernelError)> {
    let mut shares: Vec<Share> = Vec::new();
    let mut at: std::collections::HashMap<NsRef, usize> = std::collections::HashMap::new();
    let mut fds = Vec::new();
    let mut end = to;
    let mut unbuilt = None;
    for (i, op) in ops.iter().enumerate().take(to).skip(from) {
        let req = match request_for(k, op, &mut fds) {
            Ok(r) => r,
            Err(e) => {
                // What comes before it is still sent, as a pipeline would.
                end = i;
                unbuilt = Some((i, e));
                break;
            }
        };
        let ns = op.ns();
        let s = *at.entry(ns.clone()).or_insert_with(|| {
            shares.push(Share {
                ns,
                idx: Vec::new(),
                up: Vec::new(),
                reqs: std::sync::Mutex::new(Vec::new()),
            });
            shares.len() - 1
        });
        shares[s].idx.push(i);
        shares[s].up.extend(super::ready::brings_up(op).cloned());
        if let Ok(mut r) = shares[s].reqs.lock() {
            r.push(req);
        }
    }
    let refused = std::sync::atomic::AtomicBool::new(false);
    let workers = super::pool::workers();
    let replies = k.timed("rtnetlink in namespaces", end - from, |k| {
        super::pool::in_each_ns(
            &k.nsdir,
            &shares,
            workers,
            |s| Ok(&s.ns),
            |s| {
                if refused.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok((Vec::new(), Vec::new()));
                }
                let reqs = s.reqs.lock().map(|mut r| std::mem::take(&mut *r));
                let reqs = reqs.map_err(|_| KernelError::other("request list poisoned"))?;
                let mut rt = Rtnl::open()?;
                let out = rt.request_many(reqs);
                if out.iter().any(|r| r.is_err()) {
                    refused.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok((out, Vec::new()));
                }
                // Not an error of the apply: the wait asks again.
                let ready = match s.up.is_empty() {
                    true => Vec::new(),
                    false => super::ready::ready_now(&mut rt, &s.up).unwrap_or_default(),
                };
                Ok((out, ready))
            },
        )
    });
    drop(fds);
    let mut failed: Option<(usize, KernelError)> = None;
    let mut note = |i: usize, e: KernelError| {
        if failed.as_ref().is_none_or(|(j, _)| i < *j) {
            failed = Some((i, e));
        }
    };
    let skipped = refused.load(std::sync::atomic::Ordering::Relaxed);
    for (s, r) in shares.iter().zip(replies) {
        match r {
            Ok((rs, ready)) => {
                k.ready_seen.record(&s.ns, ready);
                let answered = rs.len();
                for (&i, reply) in s.idx.iter().zip(rs) {
                    match reply {
                        Ok(echo) => applied[i] = Some(made_from(k, &ops[i], &echo)),
                        Err(e) => note(i, e),
                    }
                }
                // Not started after another namespace's refusal: never sent,
                // and not an error of its own.
                if answered < s.idx.len() && !(answered == 0 && skipped) {
                    note(
                        s.idx[answered],
                        KernelError::other("the request was not answered"),
                    );
                }
            }
            Err(e) => note(s.idx[0], e),
        }
    }
    match failed.or(unbuilt) {
        Some(f) => Err(f),
        None => Ok(()),
    }
}

/// Namespaces made at once before their handles are adopted.
const CREATE_SLICE: usize = 64;

/// Take over a new namespace's handles (kept open or closed by `Conns`);
/// its identity.
fn adopt_made(
    k: &mut LinuxKernel,
    ns: &NsName,
    r: Result<(std::fs::File, Rtnl), KernelError>,
) -> Result<u64, KernelError> {
    let (f, rt) = r?;
    let ino = ino_of(&f);
    let r = NsRef::Named(ns.clone());
    k.forget(&r);
    k.index.insert(&r, "lo", 1);
    k.conns.adopt(&r, f, rt);
    Ok(ino)
}

/// A run of namespace creations or deletions, on a few threads.
fn namespaces(
    k: &mut LinuxKernel,
    run: &[Op],
    first: usize,
    applied: &mut [Option<Made>],
) -> Result<(), (usize, KernelError)> {
    let mut failure = None;
    if let Some(Op::AddNetns { .. }) = run.first() {
        let names: Vec<NsName> = run
            .iter()
            .filter_map(|o| match o {
                Op::AddNetns { ns } => Some(ns.clone()),
                _ => None,
            })
            .collect();
        // In slices: every namespace made holds its file and a socket
        // until adopted (and mostly closed) below, and a run of thousands
        // must fit the customary 1,024 descriptors.
        let mut results = Vec::with_capacity(names.len());
        for part in names.chunks(CREATE_SLICE) {
            let made = k.timed("netns create (parallel)", part.len(), |k| {
                k.nsdir.create_many(part, new_ns_init)
            });
            for (ns, r) in part.iter().zip(made) {
                results.push(adopt_made(k, ns, r));
            }
        }
        for (j, r) in results.into_iter().enumerate() {
            match r {
                Ok(ino) => applied[first + j] = Some(Made::Netns { ino }),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some((first + j, e));
                    }
                }
            }
        }
    } else {
        let list: Vec<(NsName, Option<u64>)> = run
            .iter()
            .filter_map(|o| match o {
                Op::DelNetns { ns, ino } => Some((ns.clone(), *ino)),
                _ => None,
            })
            .collect();
        for (ns, _) in &list {
            let r = NsRef::Named(ns.clone());
            k.conns.drop_ns(&r);
            k.forget(&r);
        }
        let results = k.timed("netns delete (parallel)", list.len(), |k| {
            k.nsdir.delete_many(&list)
        });
        for (j, r) in results.into_iter().enumerate() {
            match r {
                Ok(()) => applied[first + j] = Some(Made::Nothing),
                Err(e) => {
                    if failure.is_none() {
                        failure = Some((first + j, e));
                    }
                }
            }
        }
    }
    failure.map_or(Ok(()), Err)
}
