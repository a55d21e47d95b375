//! Link shaping over rtnetlink: a root qdisc replaced or deleted, and qdisc
//! dumps read back (kind, handle, parent, options, counters).
//!
//! netlink-packet-route knows no tbf, netem or htb options, so their
//! TCA_OPTIONS payloads are written and read here byte by byte, exactly as
//! iproute2's `tc` writes them (tests compare against `tc`'s own messages,
//! captured with strace, in `testdata/`).

pub mod netem;
pub mod tbf;
#[cfg(test)]
mod tests;

use netem::{Netem, NetemState};
use tbf::{TbfParams, TbfState};

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption, TcStats2};

use super::msg::Req;
use super::tun::nla_parts;

const TCA_OPTIONS: u16 = 2;

/// Nanoseconds per psched tick. Fixed since Linux 2.6.31 (PSCHED_SHIFT 6);
/// /proc/net/psched advertises it as `000003e8 00000040 000f4240`, which is
/// what makes iproute2's `tick_in_usec` 15.625.
const NS_PER_TICK: u64 = 64;
const TICK_IN_USEC: f64 = 15.625;
const TIME_UNITS_PER_SEC: f64 = 1_000_000.0;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TcError {
    #[error("{what} must be between 0 and 100 %, not {value}")]
    Percent { what: &'static str, value: String },
    #[error("{0}")]
    Invalid(String),
}

/// A root qdisc to install.
#[derive(Debug, Clone, PartialEq)]
pub enum Qdisc {
    Tbf(TbfParams),
    Netem(Netem),
}

impl Qdisc {
    pub fn kind(&self) -> &'static str {
        match self {
            Qdisc::Tbf(_) => "tbf",
            Qdisc::Netem(_) => "netem",
        }
    }

    /// The TCA_OPTIONS payload.
    pub fn options(&self) -> Result<Vec<u8>, TcError> {
        match self {
            Qdisc::Tbf(p) => Ok(p.options()),
            Qdisc::Netem(n) => n.options(),
        }
    }

    /// The arguments of `tc qdisc replace dev DEV root …` that make the same
    /// qdisc (for `plan`; tests feed them to `tc` and compare its bytes).
    pub fn tc_args(&self) -> String {
        match self {
            Qdisc::Tbf(p) => p.tc_args(),
            Qdisc::Netem(n) => n.tc_args(),
        }
    }
}

/// `tc qdisc replace dev IFINDEX root KIND …`: creates or replaces the root
/// qdisc (NLM_F_CREATE | NLM_F_REPLACE), handle chosen by the kernel.
pub fn replace_root(ifindex: u32, q: &Qdisc) -> Result<Req, TcError> {
    let mut m = root_msg(ifindex);
    m.attributes.push(TcAttribute::Kind(q.kind().to_string()));
    m.attributes.push(TcAttribute::Other(DefaultNla::new(
        TCA_OPTIONS,
        q.options()?,
    )));
    Ok((M::NewQueueDiscipline(m), NLM_F_CREATE | NLM_F_REPLACE))
}

/// `tc qdisc del dev IFINDEX root`: the device falls back to its default
/// qdisc. ENOENT when only the default is there.
pub fn delete_root(ifindex: u32) -> Req {
    (M::DelQueueDiscipline(root_msg(ifindex)), 0)
}

/// A dump of every qdisc of the namespace (filter by `QdiscState::ifindex`).
pub fn dump_request() -> M {
    M::GetQueueDiscipline(TcMessage::default())
}

fn root_msg(ifindex: u32) -> TcMessage {
    let mut m = TcMessage::default();
    m.header.index = ifindex as i32;
    m.header.parent = TcHandle::ROOT;
    m
}

/// One dumped qdisc.
#[derive(Debug, Clone, PartialEq)]
pub struct QdiscState {
    pub ifindex: u32,
    pub kind: String,
    /// `major:minor` as one number, as the kernel has it (`8001:` is 0x80010000).
    pub handle: u32,
    /// TC_H_ROOT (0xffffffff) for a root qdisc.
    pub parent: u32,
    pub options: QdiscOptions,
    pub stats: QdiscStats,
}

impl QdiscState {
    pub fn is_root(&self) -> bool {
        self.parent == u32::from(TcHandle::ROOT)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum QdiscOptions {
    Tbf(TbfState),
    Netem(NetemState),
    Htb(HtbState),
    /// A kind we do not decode (or options we could not read).
    None,
}

/// The counters `tc -s qdisc` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QdiscStats {
    pub bytes: u64,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub requeues: u64,
    pub qlen: u32,
    pub backlog: u32,
}

/// htb's global options (its classes are separate objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HtbState {
    pub version: u32,
    pub r2q: u32,
    /// The class unclassified traffic goes to (`default 10` is 0x10).
    pub default_class: u32,
    pub direct_packets: u32,
    pub direct_qlen: Option<u32>,
}

const TCA_HTB_INIT: u16 = 2;
const TCA_HTB_DIRECT_QLEN: u16 = 5;

fn parse_htb(opts: &[u8]) -> Option<HtbState> {
    let mut st = None;
    let mut qlen = None;
    for (kind, v) in attrs(opts) {
        match kind {
            TCA_HTB_INIT if v.len() >= 20 => {
                st = Some(HtbState {
                    version: u32_at(v, 0),
                    r2q: u32_at(v, 4),
                    default_class: u32_at(v, 8),
                    direct_packets: u32_at(v, 16),
                    direct_qlen: None,
                })
            }
            TCA_HTB_DIRECT_QLEN if v.len() >= 4 => qlen = Some(u32_at(v, 0)),
            _ => {}
        }
    }
    st.map(|s| HtbState {
        direct_qlen: qlen,
        ..s
    })
}

/// Read one dumped qdisc message.
pub fn parse_qdisc(m: &TcMessage) -> QdiscState {
    let mut kind = String::new();
    let mut raw: Option<Vec<u8>> = None;
    let mut stats = QdiscStats::default();
    let mut have_stats2 = false;
    for a in &m.attributes {
        match a {
            TcAttribute::Kind(k) => kind = k.clone(),
            TcAttribute::Options(opts) => {
                // Kinds the crate does not know arrive as one raw attribute
                // holding the whole TCA_OPTIONS payload.
                if let [TcOption::Other(nla)] = opts.as_slice() {
                    raw = Some(nla_parts(nla).1);
                }
            }
            TcAttribute::Other(nla) if nla_parts(nla).0 == TCA_OPTIONS => {
                raw = Some(nla_parts(nla).1)
            }
            TcAttribute::Stats2(s2) => {
                have_stats2 = true;
                for s in s2 {
                    match s {
                        TcStats2::Basic(b) => {
                            stats.bytes = b.bytes;
                            stats.packets = b.packets.into();
                        }
                        TcStats2::Queue(q) => {
                            stats.qlen = q.qlen;
                            stats.backlog = q.backlog;
                            stats.drops = q.drops.into();
                            stats.requeues = q.requeues.into();
                            stats.overlimits = q.overlimits.into();
                        }
                        _ => {}
                    }
                }
            }
            TcAttribute::Stats(s) if !have_stats2 => {
                stats.bytes = s.bytes;
                stats.packets = s.packets.into();
                stats.drops = s.drops.into();
                stats.overlimits = s.overlimits.into();
                stats.qlen = s.qlen;
                stats.backlog = s.backlog;
            }
            _ => {}
        }
    }
    let options = match (kind.as_str(), raw) {
        ("tbf", Some(r)) => tbf::parse(&r).map_or(QdiscOptions::None, QdiscOptions::Tbf),
        ("netem", Some(r)) => netem::parse(&r).map_or(QdiscOptions::None, QdiscOptions::Netem),
        ("htb", Some(r)) => parse_htb(&r).map_or(QdiscOptions::None, QdiscOptions::Htb),
        _ => QdiscOptions::None,
    };
    QdiscState {
        ifindex: m.header.index as u32,
        kind,
        handle: m.header.handle.into(),
        parent: m.header.parent.into(),
        options,
        stats,
    }
}

/// Every qdisc in a dump.
pub fn parse_dump(msgs: &[M]) -> Vec<QdiscState> {
    msgs.iter()
        .filter_map(|m| match m {
            M::NewQueueDiscipline(q) => Some(parse_qdisc(q)),
            _ => None,
        })
        .collect()
}

// ---- byte helpers shared by the option encoders ----

/// Append one netlink attribute (4-byte header, value, padding to 4).
fn put_attr(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let len = 4 + value.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(value);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The attributes in `buf`, as (type without flag bits, value).
fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((kind, &buf[4..len]));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_ne_bytes(a)
}

/// iproute2's `tc_core_time2tick`: microseconds to psched ticks, truncated.
fn time2tick(us: u32) -> u32 {
    (us as f64 * TICK_IN_USEC) as u32
}

/// iproute2's `tc_core_tick2time`.
fn tick2time(ticks: u32) -> u32 {
    (ticks as f64 / TICK_IN_USEC) as u32
}

/// iproute2's `tc_calc_xmittime`: ticks to send `size` bytes at `rate`
/// bytes/s, with its two truncations (to microseconds, then to ticks).
fn xmittime(rate: u64, size: u32) -> u32 {
    time2tick((TIME_UNITS_PER_SEC * (size as f64 / rate as f64)) as u32)
}

/// iproute2's `tc_calc_xmitsize`: bytes sent at `rate` in `ticks`.
fn xmitsize(rate: u64, ticks: u32) -> u32 {
    ((rate as f64 * tick2time(ticks) as f64) / TIME_UNITS_PER_SEC) as u32
}

/// A percentage as the kernel's fraction of 2^32-1, rounded like iproute2's
/// `get_percent` (rint: ties to even).
fn percent_u32(what: &'static str, p: f64) -> Result<u32, TcError> {
    if !(0.0..=100.0).contains(&p) {
        return Err(TcError::Percent {
            what,
            value: format!("{p}"),
        });
    }
    Ok(((p / 100.0) * u32::MAX as f64).round_ties_even() as u32)
}

fn u32_percent(v: u32) -> f64 {
    v as f64 / u32::MAX as f64 * 100.0
}

/// A byte rate the way `tc` takes it (`bit` units: `10mbit`, `1500kbit`,
/// `40gbit`), exact where it can be.
fn rate_arg(bytes_per_sec: u64) -> String {
    let bits = bytes_per_sec * 8;
    for (unit, n) in [
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
    ] {
        if bits >= n && bits.is_multiple_of(n) {
            return format!("{}{unit}", bits / n);
        }
    }
    format!("{bits}bit")
}

/// A duration the way `tc` takes it; microseconds are its resolution.
fn time_arg(d: std::time::Duration) -> String {
    let us = d.as_micros();
    if us > 0 && us.is_multiple_of(1_000_000) {
        format!("{}s", us / 1_000_000)
    } else if us > 0 && us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

/// A percentage with every digit needed to give back the same u32 fraction.
fn percent_arg(p: f64) -> String {
    format!("{p}%")
}
