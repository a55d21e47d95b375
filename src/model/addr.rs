use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::InvalidValue;

/// An interface address with its prefix, host bits kept (`172.18.0.21/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Cidr(IpNet);

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let (addr, len) = s
            .split_once('/')
            .ok_or_else(|| InvalidValue::BadCidr(s.to_string()))?;
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| InvalidValue::BadCidr(s.to_string()))?;
        let len: u8 = len
            .parse()
            .map_err(|_| InvalidValue::BadCidr(s.to_string()))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        if len > max {
            return Err(InvalidValue::BadPrefix(s.to_string(), len, max));
        }
        IpNet::new(ip, len)
            .map(Cidr)
            .map_err(|_| InvalidValue::BadCidr(s.to_string()))
    }
    pub fn addr(&self) -> IpAddr {
        self.0.addr()
    }
    pub fn prefix_len(&self) -> u8 {
        self.0.prefix_len()
    }
    pub fn net(&self) -> IpNet {
        self.0
    }
    /// The network itself (host bits cleared), as a route destination uses it.
    pub fn trunc(&self) -> IpNet {
        self.0.trunc()
    }
    pub fn is_v6(&self) -> bool {
        self.0.addr().is_ipv6()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

pub fn parse_ip(s: &str) -> Result<IpAddr, InvalidValue> {
    s.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .map_err(|_| InvalidValue::BadIp(s.to_string()))
}

/// A route's destination: the default route of a family, or a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RouteDest {
    Default { v6: bool },
    Prefix(IpNet),
}

impl RouteDest {
    /// `via` decides the family of "default": `route("default", "fd00::1")` is v6.
    pub fn parse(dest: &str, via: &IpAddr) -> Result<Self, InvalidValue> {
        let d = if dest == "default" {
            RouteDest::Default { v6: via.is_ipv6() }
        } else {
            let c = Cidr::parse(dest).map_err(|_| InvalidValue::BadDest(dest.to_string()))?;
            if c.net() != c.trunc() {
                return Err(InvalidValue::Other(format!(
                    "route destination '{dest}' has host bits set: did you mean {}?",
                    c.trunc()
                )));
            }
            RouteDest::Prefix(c.trunc())
        };
        if d.is_v6() != via.is_ipv6() {
            return Err(InvalidValue::FamilyMismatch {
                dest: dest.to_string(),
                via: via.to_string(),
            });
        }
        Ok(d)
    }
    pub fn is_v6(&self) -> bool {
        match self {
            RouteDest::Default { v6 } => *v6,
            RouteDest::Prefix(n) => n.addr().is_ipv6(),
        }
    }
    /// Prefix form with zero length for the default route, as the kernel stores it.
    pub fn as_net(&self) -> IpNet {
        match self {
            RouteDest::Default { v6: false } => IpNet::new(IpAddr::from([0u8; 4]), 0),
            RouteDest::Default { v6: true } => IpNet::new(IpAddr::from([0u8; 16]), 0),
            RouteDest::Prefix(n) => Ok(*n),
        }
        .unwrap_or_else(|_| unreachable_net())
    }
}

// A zero-length prefix is always valid; this keeps `as_net` total without unwrap.
fn unreachable_net() -> IpNet {
    IpNet::default()
}

impl fmt::Display for RouteDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteDest::Default { .. } => f.write_str("default"),
            RouteDest::Prefix(n) => write!(f, "{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_keeps_host_bits() {
        let c = Cidr::parse("172.18.0.21/16").unwrap();
        assert_eq!(c.to_string(), "172.18.0.21/16");
        assert_eq!(c.trunc().to_string(), "172.18.0.0/16");
        assert!(Cidr::parse("fd00::1/64").unwrap().is_v6());
    }

    #[test]
    fn cidr_rejects() {
        for bad in [
            "172.18.0.1",
            "172.18.0.256/24",
            "x/24",
            "10.0.0.1/",
            "fd00::1/x",
        ] {
            assert!(
                matches!(Cidr::parse(bad), Err(InvalidValue::BadCidr(_))),
                "{bad}"
            );
        }
        assert_eq!(
            Cidr::parse("10.0.0.1/33").unwrap_err(),
            InvalidValue::BadPrefix("10.0.0.1/33".into(), 33, 32)
        );
    }

    #[test]
    fn route_dest() {
        let v4: IpAddr = "172.18.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(
            RouteDest::parse("default", &v4).unwrap(),
            RouteDest::Default { v6: false }
        );
        assert_eq!(
            RouteDest::parse("default", &v6).unwrap(),
            RouteDest::Default { v6: true }
        );
        assert!(RouteDest::parse("10.9.0.0/16", &v6).is_err());
        assert!(RouteDest::parse("10.9.0.1/16", &v4).is_err());
        assert_eq!(
            RouteDest::parse("default", &v4)
                .unwrap()
                .as_net()
                .to_string(),
            "0.0.0.0/0"
        );
    }
}
