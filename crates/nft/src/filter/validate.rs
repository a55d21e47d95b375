//! Filter rules checked before any kernel contact.

use super::{Endpoint, FilterMatch, FilterProto, FilterRule};
use crate::error::NftError;
use crate::validate::check_ifname;

fn check_endpoint(tag: usize, role: &str, e: &Option<Endpoint>) -> Result<(), NftError> {
    match e {
        Some(Endpoint::Iface(n)) => check_ifname(tag, role, &Some(n.clone())),
        _ => Ok(()),
    }
}

fn check_match(m: &FilterMatch) -> Result<(), NftError> {
    let t = m.tag;
    check_endpoint(t, "from interface", &m.from)?;
    check_endpoint(t, "to interface", &m.to)?;
    if let (Some(Endpoint::Net(a)), Some(Endpoint::Net(b))) = (&m.from, &m.to)
        && a.addr().is_ipv4() != b.addr().is_ipv4()
    {
        return Err(NftError::invalid(
            t,
            format!("from {a} to {b}: both subnets must be the same IP version"),
        ));
    }
    if let Some((lo, hi)) = m.ports {
        if !matches!(m.proto, Some(FilterProto::Tcp | FilterProto::Udp)) {
            return Err(NftError::invalid(
                t,
                format!("port {lo} needs proto tcp or udp"),
            ));
        }
        if lo == 0 {
            return Err(NftError::invalid(
                t,
                "port 0 is not a port; ports are 1 to 65535",
            ));
        }
        if lo > hi {
            return Err(NftError::invalid(
                t,
                format!("port range {lo}-{hi} is backwards; write {hi}-{lo}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn check_filter(rules: &[FilterRule]) -> Result<(), NftError> {
    for r in rules {
        match r {
            FilterRule::Allow(m) | FilterRule::Deny(m) => check_match(m)?,
            FilterRule::Isolate { bridge, tag } => {
                check_ifname(*tag, "bridge", &Some(bridge.clone()))?
            }
        }
    }
    Ok(())
}
