//! Link shaping as plain data: what `link.shape(#{ … })` asks for, and the
//! root qdisc it becomes — tbf for a rate alone, netem for delay, jitter,
//! loss, duplication, corruption or reordering (with any rate inside it).

use serde::{Deserialize, Serialize};

/// A percentage in thousandths of a percent (20 % is 20_000): exact, and
/// comparable, unlike a float.
pub type Milli = u32;

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// Bytes per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// tbf bucket, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// tbf: queue bytes; netem: queue packets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<Milli>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Milli>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Milli>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Milli>,
}

/// A tbf bucket of 10 ms at the rate, at least two full frames.
pub fn tbf_burst(rate: u64, mtu: u32) -> u32 {
    let ten_ms = rate / 100;
    let frames = 2 * (u64::from(mtu) + 14);
    ten_ms.max(frames).min(u64::from(u32::MAX)) as u32
}

/// `tc`'s tbf limit for 50 ms of latency: rate × 50 ms + burst.
pub fn tbf_limit(rate: u64, burst: u32) -> u32 {
    (rate as f64 * 50_000.0 / 1e6 + f64::from(burst)).min(f64::from(u32::MAX)) as u32
}

fn rate_arg(bytes: u64) -> String {
    let bits = bytes * 8;
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

fn time_arg(us: u32) -> String {
    if us > 0 && us.is_multiple_of(1000) {
        format!("{}ms", us / 1000)
    } else {
        format!("{us}us")
    }
}

fn pct_arg(m: Milli) -> String {
    if m.is_multiple_of(1000) {
        format!("{}%", m / 1000)
    } else {
        format!("{}%", f64::from(m) / 1000.0)
    }
}

impl Shape {
    /// `shape(#{})`: no shaping, the device's default qdisc.
    pub fn is_empty(&self) -> bool {
        *self == Shape::default()
    }

    /// Needs netem (anything but a rate, its bucket and its queue).
    pub fn needs_netem(&self) -> bool {
        self.delay.is_some()
            || self.jitter.is_some()
            || self.loss.is_some()
            || self.duplicate.is_some()
            || self.corrupt.is_some()
            || self.reorder.is_some()
    }

    /// Loss and nothing else: random drop in the topology's nftables table
    /// instead of a qdisc, so it works where the kernel has no netem.
    pub fn loss_only(&self) -> Option<Milli> {
        let rest = Shape {
            loss: None,
            ..self.clone()
        };
        self.loss.filter(|_| rest.is_empty())
    }

    /// What the root qdisc must be: a loss alone leaves it to nftables.
    pub fn qdisc_part(&self) -> Shape {
        if self.loss_only().is_some() {
            Shape::default()
        } else {
            self.clone()
        }
    }

    pub fn kind(&self) -> &'static str {
        if self.needs_netem() { "netem" } else { "tbf" }
    }

    /// tbf's rate, bucket and queue, defaults filled in for a device of `mtu`.
    pub fn tbf(&self, mtu: u32) -> Option<(u64, u32, u32)> {
        if self.needs_netem() {
            return None;
        }
        let rate = self.rate?;
        let burst = self.burst.unwrap_or_else(|| tbf_burst(rate, mtu));
        let limit = self.limit.unwrap_or_else(|| tbf_limit(rate, burst));
        Some((rate, burst, limit))
    }

    /// The words after `tc qdisc replace dev DEV root`.
    pub fn tc_args(&self, mtu: u32) -> String {
        if let Some((rate, burst, limit)) = self.tbf(mtu) {
            return format!("tbf rate {} burst {burst} limit {limit}", rate_arg(rate));
        }
        let mut s = format!("netem limit {}", self.limit.unwrap_or(1000));
        if let Some(d) = self.delay {
            s.push_str(&format!(" delay {}", time_arg(d)));
            if let Some(j) = self.jitter {
                s.push_str(&format!(" {}", time_arg(j)));
            }
        }
        for (k, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(v) = v {
                s.push_str(&format!(" {k} {}", pct_arg(v)));
            }
        }
        if let Some(r) = self.rate {
            s.push_str(&format!(" rate {}", rate_arg(r)));
        }
        s
    }
}
