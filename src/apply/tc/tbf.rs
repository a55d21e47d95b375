//! tbf: a token bucket that holds a link to a rate.
//!
//! TCA_OPTIONS is a nest of TCA_TBF_PARMS (struct tc_tbf_qopt), TCA_TBF_BURST,
//! TCA_TBF_RATE64 (rates of 2^32 bytes/s and more) and TCA_TBF_RTAB, in
//! that order, as `tc` sends it. The kernel ignores the 256-entry rate
//! table once the rate spec names a link layer, but `tc` always sends one,
//! so we do too and stay byte-identical.

use std::time::Duration;

use super::{TcError, attrs, put_attr, rate_arg, u32_at, u64_at, xmitsize, xmittime};

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;

/// TC_LINKLAYER_ETHERNET: what `tc` assumes.
const LINKLAYER_ETHERNET: u8 = 1;
/// `tc`'s MTU for the rate table when none is given.
const RTAB_MTU: u32 = 2047;

/// What the user asks for; the rest is derived (`resolve`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tbf {
    /// Bytes per second (`10mbit` is 1_250_000).
    pub rate: u64,
    /// Bucket size in bytes.
    pub burst: Option<u32>,
    /// Queue size in bytes. Exclusive with `latency`, as in `tc`.
    pub limit: Option<u32>,
    /// The longest a packet may wait; gives the limit as `tc` computes it.
    pub latency: Option<Duration>,
}

/// A fully specified tbf, what goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TbfParams {
    pub rate: u64,
    pub burst: u32,
    pub limit: u32,
}

/// A dumped tbf.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TbfState {
    pub rate: u64,
    /// The bucket in bytes, computed back from its time the way `tc` prints it.
    pub burst: u32,
    pub limit: u32,
    /// The bucket as the kernel keeps it: psched ticks to drain it.
    pub buffer_ticks: u32,
}

/// When neither limit nor latency is given.
pub const DEFAULT_LATENCY: Duration = Duration::from_millis(50);

impl Tbf {
    pub fn new(rate: u64) -> Self {
        Self {
            rate,
            burst: None,
            limit: None,
            latency: None,
        }
    }

    /// The default bucket: 10 ms at the rate (enough for the kernel timer
    /// to keep the link busy between wakeups), at least two full frames of
    /// the device (a bucket smaller than one frame drops it outright).
    pub fn default_burst(rate: u64, mtu: u32) -> u32 {
        let ten_ms = rate / 100;
        let frames = 2 * (u64::from(mtu) + 14);
        ten_ms.max(frames).min(u64::from(u32::MAX)) as u32
    }

    /// Fill in burst and limit. `mtu` is the device's, for the default burst.
    pub fn resolve(&self, mtu: u32) -> Result<TbfParams, TcError> {
        if self.rate == 0 {
            return Err(TcError::Invalid("a tbf rate must be above zero".into()));
        }
        if self.limit.is_some() && self.latency.is_some() {
            return Err(TcError::Invalid(
                "tbf limit and latency are mutually exclusive".into(),
            ));
        }
        let burst = self
            .burst
            .unwrap_or_else(|| Self::default_burst(self.rate, mtu));
        if burst == 0 {
            return Err(TcError::Invalid("a tbf burst must be above zero".into()));
        }
        let limit = match self.limit {
            Some(l) => l,
            None => {
                // tc: limit = rate * latency + burst (bytes), in doubles.
                let lat = self.latency.unwrap_or(DEFAULT_LATENCY);
                let us = u32::try_from(lat.as_micros())
                    .map_err(|_| TcError::Invalid("tbf latency too large".into()))?;
                let lim = self.rate as f64 * us as f64 / super::TIME_UNITS_PER_SEC + burst as f64;
                lim as u32
            }
        };
        Ok(TbfParams {
            rate: self.rate,
            burst,
            limit,
        })
    }
}

impl TbfParams {
    /// The TCA_OPTIONS payload, byte for byte what `tc` sends.
    pub fn options(&self) -> Vec<u8> {
        let rate32 = u32::try_from(self.rate).unwrap_or(u32::MAX);
        let mut cell_log = 0u8;
        while (RTAB_MTU >> cell_log) > 255 {
            cell_log += 1;
        }
        // struct tc_tbf_qopt: rate, peakrate (struct tc_ratespec each),
        // limit, buffer, mtu.
        let mut q = Vec::with_capacity(36);
        q.push(cell_log);
        q.push(LINKLAYER_ETHERNET);
        q.extend_from_slice(&0u16.to_ne_bytes()); // overhead
        q.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align
        q.extend_from_slice(&0u16.to_ne_bytes()); // mpu
        q.extend_from_slice(&rate32.to_ne_bytes());
        q.extend_from_slice(&[0; 12]); // no peak rate
        q.extend_from_slice(&self.limit.to_ne_bytes());
        q.extend_from_slice(&xmittime(rate32.into(), self.burst).to_ne_bytes());
        q.extend_from_slice(&0u32.to_ne_bytes()); // mtu (peak rate only)

        let mut rtab = Vec::with_capacity(1024);
        for i in 0..256u32 {
            rtab.extend_from_slice(&xmittime(rate32.into(), (i + 1) << cell_log).to_ne_bytes());
        }

        let mut out = Vec::new();
        put_attr(&mut out, TCA_TBF_PARMS, &q);
        put_attr(&mut out, TCA_TBF_BURST, &self.burst.to_ne_bytes());
        if self.rate > u64::from(u32::MAX) {
            put_attr(&mut out, TCA_TBF_RATE64, &self.rate.to_ne_bytes());
        }
        put_attr(&mut out, TCA_TBF_RTAB, &rtab);
        out
    }

    /// `tbf rate 10mbit burst 12500 limit 75000`.
    pub fn tc_args(&self) -> String {
        format!(
            "tbf rate {} burst {} limit {}",
            rate_arg(self.rate),
            self.burst,
            self.limit
        )
    }

    /// The latency this limit allows, as `tc` prints it (`lat`).
    pub fn latency(&self) -> Duration {
        let us = 1e6 * (self.limit as f64 / self.rate as f64)
            - super::tick2time(xmittime(self.rate, self.burst)) as f64;
        Duration::from_micros(us.max(0.0) as u64)
    }
}

impl TbfState {
    /// What to send to put this tbf back (`down` restoring an adopted
    /// qdisc). The burst is the one `tc` shows, recomputed from the kernel's
    /// ticks, so it can differ from the original by a tick's worth of bytes.
    pub fn params(&self) -> TbfParams {
        TbfParams {
            rate: self.rate,
            burst: self.burst,
            limit: self.limit,
        }
    }
}

pub(super) fn parse(opts: &[u8]) -> Option<TbfState> {
    let mut qopt = None;
    let mut rate64 = None;
    for (kind, v) in attrs(opts) {
        match kind {
            TCA_TBF_PARMS if v.len() >= 36 => qopt = Some(v),
            TCA_TBF_RATE64 if v.len() >= 8 => rate64 = Some(u64_at(v, 0)),
            _ => {}
        }
    }
    let q = qopt?;
    let rate = rate64.unwrap_or_else(|| u32_at(q, 8).into());
    let buffer = u32_at(q, 28);
    Some(TbfState {
        rate,
        burst: xmitsize(rate, buffer),
        limit: u32_at(q, 24),
        buffer_ticks: buffer,
    })
}

#[cfg(test)]
mod tests {
    use super::super::time2tick;
    use super::*;

    #[test]
    fn limit_from_latency_as_tc_computes_it() {
        let t = Tbf {
            rate: 1_250_000,
            burst: Some(12500),
            limit: None,
            latency: Some(Duration::from_millis(50)),
        };
        assert_eq!(
            t.resolve(1500),
            Ok(TbfParams {
                rate: 1_250_000,
                burst: 12500,
                limit: 75000
            })
        );
    }

    #[test]
    fn defaults_scale_with_rate_and_mtu() {
        // 10mbit: 10 ms is 12,500 bytes, more than two 1514-byte frames.
        let p = Tbf::new(1_250_000).resolve(1500).expect("resolve");
        assert_eq!((p.burst, p.limit), (12500, 75000));
        // 100kbit: 10 ms is 125 bytes; two frames it is.
        let p = Tbf::new(12_500).resolve(1500).expect("resolve");
        assert_eq!(p.burst, 3028);
        // lo's 64 KiB MTU.
        assert_eq!(Tbf::default_burst(12_500, 65536), 131_100);
    }

    #[test]
    fn bad_combinations_are_refused() {
        let mut t = Tbf::new(1000);
        t.limit = Some(1);
        t.latency = Some(Duration::from_millis(1));
        assert!(t.resolve(1500).is_err());
        assert!(Tbf::new(0).resolve(1500).is_err());
    }

    #[test]
    fn parse_reads_back_what_options_wrote() {
        let p = TbfParams {
            rate: 1_250_000,
            burst: 12500,
            limit: 75000,
        };
        let st = parse(&p.options()).expect("parse");
        assert_eq!(
            st,
            TbfState {
                rate: 1_250_000,
                burst: 12500,
                limit: 75000,
                buffer_ticks: 156_250
            }
        );
        let big = TbfParams {
            rate: 5_000_000_000,
            burst: 1_000_000,
            limit: 51_000_000,
        };
        assert_eq!(parse(&big.options()).map(|s| s.rate), Some(5_000_000_000));
        assert_eq!(st.params(), p);
    }

    #[test]
    fn ticks_match_tc_rounding() {
        // 20 ms is 312,500 ticks of 64 ns.
        assert_eq!(time2tick(20_000), 312_500);
        // 8 bytes at 10mbit: 6.4 us truncated to 6, then 93.75 ticks to 93.
        assert_eq!(xmittime(1_250_000, 8), 93);
    }
}
