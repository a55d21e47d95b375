//! netem: delay, jitter, loss, duplication, corruption, reordering.
//!
//! TCA_OPTIONS is not a plain nest: it starts with struct tc_netem_qopt and
//! the attributes follow it (the kernel's `nla_parse_nested_compat`). The
//! attribute set and order are what iproute2's `tc` sends: CORR, REORDER,
//! CORRUPT, RATE64, RATE. Delay and jitter travel as 32-bit psched ticks in
//! the struct (what `tc` 6.1 does; the reach is 274 s); beyond that they go
//! as TCA_NETEM_LATENCY64/JITTER64 in nanoseconds right after the struct
//! (what newer `tc` does for every delay), which the kernel prefers.
//!
//! Presence follows `tc`'s command line: an option given as `Some(0.0)` is
//! still sent, `None` is not. One deliberate difference: `tc` 6.1 drops a
//! duplicate correlation on its own (it sends no CORR for it); we send it.

use std::time::Duration;

use super::{
    NS_PER_TICK, TcError, attrs, percent_arg, percent_u32, put_attr, rate_arg, time_arg, u32_at,
    u32_percent, u64_at,
};

const TCA_NETEM_CORR: u16 = 1;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;

const QOPT_LEN: usize = 24;

/// Options as on `tc`'s command line; percentages are 0–100.
#[derive(Debug, Clone, PartialEq)]
pub struct Netem {
    /// Queue length in packets (tc's default: 1000).
    pub limit: u32,
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    pub delay_corr: Option<f64>,
    pub loss: Option<f64>,
    pub loss_corr: Option<f64>,
    pub duplicate: Option<f64>,
    pub dup_corr: Option<f64>,
    pub reorder: Option<f64>,
    pub reorder_corr: Option<f64>,
    /// Reorder every gap-th packet (tc sets 1 when reordering without one).
    pub gap: Option<u32>,
    pub corrupt: Option<f64>,
    pub corrupt_corr: Option<f64>,
    /// Bytes per second.
    pub rate: Option<u64>,
}

impl Default for Netem {
    fn default() -> Self {
        Self {
            limit: 1000,
            delay: None,
            jitter: None,
            delay_corr: None,
            loss: None,
            loss_corr: None,
            duplicate: None,
            dup_corr: None,
            reorder: None,
            reorder_corr: None,
            gap: None,
            corrupt: None,
            corrupt_corr: None,
            rate: None,
        }
    }
}

/// A dumped netem. Times in nanoseconds, percentages 0–100.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetemState {
    pub limit: u32,
    pub delay_ns: u64,
    pub jitter_ns: u64,
    pub loss: f64,
    pub duplicate: f64,
    pub gap: u32,
    pub delay_corr: f64,
    pub loss_corr: f64,
    pub dup_corr: f64,
    pub reorder: f64,
    pub reorder_corr: f64,
    pub corrupt: f64,
    pub corrupt_corr: f64,
    /// Bytes per second, 0 when unlimited.
    pub rate: u64,
}

fn ticks(d: Duration) -> u64 {
    (d.as_nanos() / u128::from(NS_PER_TICK)).min(u128::from(u64::MAX)) as u64
}

fn pct(what: &'static str, p: Option<f64>) -> Result<u32, TcError> {
    p.map_or(Ok(0), |p| percent_u32(what, p))
}

impl Netem {
    /// The checks `tc` makes before it sends anything.
    pub fn validate(&self) -> Result<(), TcError> {
        let has_delay = self.delay.is_some_and(|d| !d.is_zero());
        if self.jitter.is_some() && self.delay.is_none() {
            return Err(TcError::Invalid("netem jitter needs a delay".into()));
        }
        if self.delay_corr.is_some() && self.jitter.is_none() {
            return Err(TcError::Invalid(
                "a delay correlation needs a jitter".into(),
            ));
        }
        if self.reorder.is_some_and(|r| r > 0.0) && !has_delay {
            return Err(TcError::Invalid(
                "reordering is not possible without a delay".into(),
            ));
        }
        if self.gap.is_some_and(|g| g > 0) && !self.reorder.is_some_and(|r| r > 0.0) {
            return Err(TcError::Invalid(
                "a reorder gap needs a reorder probability".into(),
            ));
        }
        for (what, given, corr) in [
            ("loss", self.loss, self.loss_corr),
            ("duplicate", self.duplicate, self.dup_corr),
            ("reorder", self.reorder, self.reorder_corr),
            ("corrupt", self.corrupt, self.corrupt_corr),
        ] {
            if corr.is_some() && given.is_none() {
                return Err(TcError::Invalid(format!(
                    "a {what} correlation needs a {what} probability"
                )));
            }
        }
        Ok(())
    }

    /// The TCA_OPTIONS payload.
    pub fn options(&self) -> Result<Vec<u8>, TcError> {
        self.validate()?;
        let latency = self.delay.map_or(0, ticks);
        let jitter = self.jitter.map_or(0, ticks);
        let wide = latency > u64::from(u32::MAX) || jitter > u64::from(u32::MAX);
        let (lat32, jit32) = if wide {
            (0, 0)
        } else {
            (latency as u32, jitter as u32)
        };
        let reordering = self.reorder.is_some_and(|r| r > 0.0);
        let gap = match self.gap {
            Some(g) if g > 0 => g,
            _ if reordering => 1,
            _ => 0,
        };
        let mut out = Vec::with_capacity(96);
        for v in [
            lat32,
            self.limit,
            pct("loss", self.loss)?,
            gap,
            pct("duplicate", self.duplicate)?,
            jit32,
        ] {
            out.extend_from_slice(&v.to_ne_bytes());
        }
        if wide {
            let ns =
                |d: Option<Duration>| d.map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
            put_attr(&mut out, TCA_NETEM_LATENCY64, &ns(self.delay).to_ne_bytes());
            put_attr(&mut out, TCA_NETEM_JITTER64, &ns(self.jitter).to_ne_bytes());
        }
        let corr_given = [
            self.delay_corr,
            self.loss_corr,
            self.dup_corr,
            self.reorder_corr,
            self.corrupt_corr,
        ]
        .iter()
        .any(Option::is_some);
        if corr_given {
            let mut c = Vec::with_capacity(12);
            for (what, v) in [
                ("delay correlation", self.delay_corr),
                ("loss correlation", self.loss_corr),
                ("duplicate correlation", self.dup_corr),
            ] {
                c.extend_from_slice(&pct(what, v)?.to_ne_bytes());
            }
            put_attr(&mut out, TCA_NETEM_CORR, &c);
        }
        for (kind, what, p, corr) in [
            (
                TCA_NETEM_REORDER,
                "reorder",
                self.reorder,
                self.reorder_corr,
            ),
            (
                TCA_NETEM_CORRUPT,
                "corrupt",
                self.corrupt,
                self.corrupt_corr,
            ),
        ] {
            if p.is_some() {
                let mut v = pct(what, p)?.to_ne_bytes().to_vec();
                v.extend_from_slice(&pct("correlation", corr)?.to_ne_bytes());
                put_attr(&mut out, kind, &v);
            }
        }
        if let Some(rate) = self.rate {
            let rate32 = match u32::try_from(rate) {
                Ok(r) => r,
                Err(_) => {
                    put_attr(&mut out, TCA_NETEM_RATE64, &rate.to_ne_bytes());
                    u32::MAX
                }
            };
            // struct tc_netem_rate: rate, packet_overhead, cell_size,
            // cell_overhead.
            let mut v = rate32.to_ne_bytes().to_vec();
            v.extend_from_slice(&[0; 12]);
            put_attr(&mut out, TCA_NETEM_RATE, &v);
        }
        Ok(out)
    }

    /// `netem limit 1000 delay 20000us 5000us loss 1% …`, accepted by `tc`.
    pub fn tc_args(&self) -> String {
        let mut s = format!("netem limit {}", self.limit);
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                s.push_str(&format!(" {k} {v}"));
            }
        };
        let delay = self.delay.map(|d| {
            let mut v = time_arg(d);
            if let Some(j) = self.jitter {
                v.push(' ');
                v.push_str(&time_arg(j));
                if let Some(c) = self.delay_corr {
                    v.push(' ');
                    v.push_str(&percent_arg(c));
                }
            }
            v
        });
        opt("delay", delay);
        let with_corr = |p: Option<f64>, c: Option<f64>| {
            p.map(|p| match c {
                Some(c) => format!("{} {}", percent_arg(p), percent_arg(c)),
                None => percent_arg(p),
            })
        };
        opt("loss", with_corr(self.loss, self.loss_corr));
        opt("duplicate", with_corr(self.duplicate, self.dup_corr));
        opt("reorder", with_corr(self.reorder, self.reorder_corr));
        opt("gap", self.gap.map(|g| g.to_string()));
        opt("corrupt", with_corr(self.corrupt, self.corrupt_corr));
        opt("rate", self.rate.map(rate_arg));
        s
    }
}

pub(super) fn parse(opts: &[u8]) -> Option<NetemState> {
    let q = opts.get(..QOPT_LEN)?;
    let mut st = NetemState {
        delay_ns: u64::from(u32_at(q, 0)) * NS_PER_TICK,
        limit: u32_at(q, 4),
        loss: u32_percent(u32_at(q, 8)),
        gap: u32_at(q, 12),
        duplicate: u32_percent(u32_at(q, 16)),
        jitter_ns: u64::from(u32_at(q, 20)) * NS_PER_TICK,
        ..NetemState::default()
    };
    let mut rate64 = None;
    for (kind, v) in attrs(&opts[QOPT_LEN..]) {
        match kind {
            TCA_NETEM_LATENCY64 if v.len() >= 8 => st.delay_ns = u64_at(v, 0).min(i64::MAX as u64),
            TCA_NETEM_JITTER64 if v.len() >= 8 => st.jitter_ns = u64_at(v, 0).min(i64::MAX as u64),
            TCA_NETEM_CORR if v.len() >= 12 => {
                st.delay_corr = u32_percent(u32_at(v, 0));
                st.loss_corr = u32_percent(u32_at(v, 4));
                st.dup_corr = u32_percent(u32_at(v, 8));
            }
            TCA_NETEM_REORDER if v.len() >= 8 => {
                st.reorder = u32_percent(u32_at(v, 0));
                st.reorder_corr = u32_percent(u32_at(v, 4));
            }
            TCA_NETEM_CORRUPT if v.len() >= 8 => {
                st.corrupt = u32_percent(u32_at(v, 0));
                st.corrupt_corr = u32_percent(u32_at(v, 4));
            }
            TCA_NETEM_RATE if v.len() >= 4 => st.rate = u32_at(v, 0).into(),
            TCA_NETEM_RATE64 if v.len() >= 8 => rate64 = Some(u64_at(v, 0)),
            _ => {}
        }
    }
    if let Some(r) = rate64 {
        st.rate = r;
    }
    Some(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn percentages_round_like_rint() {
        // 30 % of 2^32-1 is 1288490188.5: ties to even, as C's rint.
        assert_eq!(percent_u32("x", 30.0), Ok(0x4ccc_cccc));
        assert_eq!(percent_u32("x", 0.5), Ok(0x0147_ae14));
        assert_eq!(percent_u32("x", 100.0), Ok(u32::MAX));
        assert!(percent_u32("loss", 150.0).is_err());
        assert_eq!(
            percent_u32("loss", 150.0).unwrap_err().to_string(),
            "loss must be between 0 and 100 %, not 150"
        );
    }

    #[test]
    fn tc_refusals_are_ours_too() {
        let reorder_alone = Netem {
            reorder: Some(10.0),
            ..Netem::default()
        };
        assert!(reorder_alone.options().is_err());
        let gap_alone = Netem {
            delay: ms(1),
            gap: Some(3),
            ..Netem::default()
        };
        assert!(gap_alone.options().is_err());
        let jitter_alone = Netem {
            jitter: ms(1),
            ..Netem::default()
        };
        assert!(jitter_alone.options().is_err());
    }

    #[test]
    fn a_duplicate_correlation_alone_is_kept() {
        let n = Netem {
            duplicate: Some(1.0),
            dup_corr: Some(50.0),
            ..Netem::default()
        };
        let st = parse(&n.options().expect("options")).expect("parse");
        assert!((st.dup_corr - 50.0).abs() < 1e-6);
    }

    /// Past 2^32 ticks (274.9 s) the delay goes as nanoseconds.
    #[test]
    fn long_delays_use_the_64_bit_attributes() {
        let n = Netem {
            delay: Some(Duration::from_secs(600)),
            jitter: ms(1500),
            ..Netem::default()
        };
        let b = n.options().expect("options");
        assert_eq!(u32_at(&b, 0), 0, "the struct's latency is unused");
        let a = attrs(&b[QOPT_LEN..]);
        assert_eq!(a[0].0, TCA_NETEM_LATENCY64);
        assert_eq!(u64_at(a[0].1, 0), 600_000_000_000);
        assert_eq!(a[1].0, TCA_NETEM_JITTER64);
        assert_eq!(u64_at(a[1].1, 0), 1_500_000_000);
        let st = parse(&b).expect("parse");
        assert_eq!(
            (st.delay_ns, st.jitter_ns),
            (600_000_000_000, 1_500_000_000)
        );
    }

    /// The kernel's dump: the struct (ticks capped to u32), then LATENCY64
    /// and JITTER64 always, then the rest; parse prefers the 64-bit values.
    #[test]
    fn parse_reads_a_kernel_style_dump() {
        let mut b = Vec::new();
        for v in [312_500u32, 1000, 0x028f_5c29, 1, 0x051e_b852, 78_125] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        put_attr(&mut b, TCA_NETEM_LATENCY64, &20_000_000i64.to_ne_bytes());
        put_attr(&mut b, TCA_NETEM_JITTER64, &5_000_000i64.to_ne_bytes());
        put_attr(&mut b, TCA_NETEM_CORR, &[0; 12]);
        put_attr(&mut b, TCA_NETEM_REORDER, &[0, 0, 0, 0x40, 0, 0, 0, 0]);
        put_attr(
            &mut b,
            TCA_NETEM_CORRUPT,
            &[0x14, 0xae, 0x47, 0x01, 0, 0, 0, 0],
        );
        put_attr(&mut b, TCA_NETEM_RATE, &[0; 16]);
        let st = parse(&b).expect("parse");
        assert_eq!(
            (st.delay_ns, st.jitter_ns, st.limit, st.gap),
            (20_000_000, 5_000_000, 1000, 1)
        );
        assert!((st.loss - 1.0).abs() < 1e-6);
        assert!((st.duplicate - 2.0).abs() < 1e-6);
        assert!((st.reorder - 25.0).abs() < 1e-6);
        assert!((st.corrupt - 0.5).abs() < 1e-6);
        assert_eq!(st.rate, 0);
    }

    #[test]
    fn tc_args_spell_every_option() {
        let n = Netem {
            delay: ms(20),
            jitter: ms(5),
            loss: Some(1.0),
            duplicate: Some(2.0),
            corrupt: Some(0.5),
            reorder: Some(25.0),
            ..Netem::default()
        };
        assert_eq!(
            n.tc_args(),
            "netem limit 1000 delay 20ms 5ms loss 1% duplicate 2% reorder 25% corrupt 0.5%"
        );
    }
}
