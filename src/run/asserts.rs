//! Reachability assertions (`assert_reach`, `assert_no_reach`): declared
//! by the script, run once the topology is converged and its daemons are
//! ready, each reported with its script line.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::Runner;
use crate::model::NsRef;
use crate::topo::Pos;

/// How long one TCP connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Echo requests tried before "does not reach" (the first may be lost to
/// neighbour discovery).
const PINGS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An ICMP echo.
    Icmp(IpAddr),
    /// A TCP connection.
    Tcp(SocketAddr),
}

impl Target {
    /// `10.0.0.2` (ICMP), `10.0.0.2:80` or `[fd00::2]:80` (TCP connect).
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Target::Icmp(ip));
        }
        let t = s.strip_prefix("tcp:").unwrap_or(s);
        t.parse::<SocketAddr>().map(Target::Tcp).map_err(|_| {
            format!("'{s}' is not a target: use an address (ping) or address:port (TCP connect), like 10.0.0.2 or 10.0.0.2:80 or [fd00::2]:80")
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Icmp(ip) => write!(f, "{ip}"),
            Target::Tcp(sa) => write!(f, "{sa}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Assertion {
    pub from: NsRef,
    pub target: Target,
    /// true: must reach; false: must not.
    pub reach: bool,
    pub pos: Pos,
}

impl Assertion {
    /// As the script wrote it: `assert_reach(client, "10.0.0.2:80")`.
    pub fn call(&self) -> String {
        let f = if self.reach {
            "assert_reach"
        } else {
            "assert_no_reach"
        };
        format!("{f}({}, \"{}\")", self.from, self.target)
    }
}

#[derive(Debug, Clone)]
pub struct Checked {
    pub assertion: Assertion,
    pub passed: bool,
    /// What was seen: "replied", "no reply to 3 echo requests", …
    pub detail: String,
    /// Nothing was asked (a kernel that only records).
    pub not_run: bool,
    pub seconds: f64,
}

impl Runner {
    /// Run every declared assertion, in order.
    pub fn check_asserts(&mut self) -> Vec<Checked> {
        let asserts = self.asserts.clone();
        asserts.into_iter().map(|a| self.check_one(a)).collect()
    }

    fn check_one(&mut self, a: Assertion) -> Checked {
        let t0 = Instant::now();
        let seen = match &a.target {
            Target::Icmp(ip) => {
                let tries = if a.reach { PINGS } else { 2 };
                let mut res = Ok(false);
                for _ in 0..tries {
                    res = self.kernel.ping(&a.from, *ip);
                    if !matches!(res, Ok(false)) {
                        break;
                    }
                }
                res.map(|ok| {
                    let d = if ok {
                        "an echo reply came back".to_string()
                    } else {
                        format!("no reply to {tries} echo requests")
                    };
                    (ok, d)
                })
            }
            Target::Tcp(sa) => self
                .kernel
                .connect(&a.from, *sa, CONNECT_TIMEOUT)
                .map(|why| match why {
                    None => (true, "the TCP connection was accepted".to_string()),
                    Some(why) => (false, why),
                }),
        };
        let (passed, detail, not_run) = match seen {
            Ok((reached, d)) => (reached == a.reach, d, false),
            Err(e) if e.not_run => {
                self.note_not_run(a.call());
                (true, "not run".to_string(), true)
            }
            Err(e) => (false, e.to_string(), false),
        };
        Checked {
            assertion: a,
            passed,
            detail,
            not_run,
            seconds: t0.elapsed().as_secs_f64(),
        }
    }
}
