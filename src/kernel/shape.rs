//! Shaping against the state types: how a declared shape reads back as a
//! root qdisc, and whether the one there is it.

use super::Qdisc;
use crate::op::Shape;

/// What `shape` installs on a device of `mtu`, as a dump reads it.
pub fn as_read(shape: &Shape, mtu: u32) -> Option<Qdisc> {
    if shape.is_empty() {
        return None;
    }
    Some(match shape.tbf(mtu) {
        Some((rate, burst, limit)) => Qdisc {
            kind: "tbf".into(),
            rate,
            burst,
            limit,
        },
        None => Qdisc {
            kind: "netem".into(),
            rate: shape.rate.unwrap_or(0),
            burst: 0,
            limit: shape.limit.unwrap_or(1000),
        },
    })
}

/// Is `have` (None: the device's default) what `want` makes? A tbf's
/// bucket reads back recomputed from the kernel's ticks: a few bytes off.
pub fn is_as_declared(have: Option<&Qdisc>, want: &Shape, mtu: u32) -> bool {
    match (have, as_read(want, mtu)) {
        (None, None) => true,
        (Some(h), Some(w)) => {
            let slack = 16 + w.rate / 100_000;
            h.kind == w.kind
                && h.rate == w.rate
                && h.limit == w.limit
                && u64::from(h.burst.abs_diff(w.burst)) <= slack
        }
        _ => false,
    }
}

/// The shape that puts `q` back (a tbf; None for anything else).
pub fn restore(q: &Qdisc) -> Option<Shape> {
    (q.kind == "tbf").then(|| Shape {
        rate: Some(q.rate),
        burst: Some(q.burst),
        limit: Some(q.limit),
        ..Shape::default()
    })
}
