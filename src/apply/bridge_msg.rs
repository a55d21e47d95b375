//! Bridge options and bridge port options, set and read back the way
//! `ip -d link` shows them: IFLA_LINKINFO / IFLA_INFO_DATA of the bridge,
//! and IFLA_LINKINFO / IFLA_INFO_SLAVE_DATA (kind "bridge") of a port.
//!
//! Port options go in an RTM_NEWLINK without NLM_F_CREATE on a link that
//! already has its master: the kernel finds the master's slave_changelink
//! before it handles IFLA_MASTER, so enslaving and port options in one
//! request fail (EOPNOTSUPP); the lead sends them as two requests.
//! (IFLA_PROTINFO under AF_BRIDGE, as `bridge link set` sends, reaches the
//! same switches; we use the slave data because it reads back the same way.)
//!
//! Bridge times travel in clock_t (USER_HZ, 100 per second).

use std::time::Duration;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::link::{
    BridgeStpState, InfoBridge, InfoBridgePort, InfoPortData, InfoPortKind, LinkInfo,
};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkMessageBuilder};

use super::link_msg::LinkError;
use super::msg::Req;

const USER_HZ: u128 = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeOpts {
    pub stp: Option<bool>,
    pub forward_delay: Option<Duration>,
    pub ageing_time: Option<Duration>,
    pub mcast_snooping: Option<bool>,
}

/// A bridge as dumped; times in clock_t (centiseconds), as `ip -j -d` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeState {
    pub stp: bool,
    pub forward_delay: u32,
    pub ageing_time: u32,
    pub mcast_snooping: bool,
}

fn clock_t(what: &str, d: Duration) -> Result<u32, LinkError> {
    u32::try_from(d.as_millis() * USER_HZ / 1000)
        .map_err(|_| LinkError::Invalid(format!("bridge {what} too long")))
}

impl BridgeOpts {
    /// With STP on, the kernel takes forward delays of 2 to 30 s only (ERANGE).
    pub fn validate(&self) -> Result<(), LinkError> {
        if self.stp == Some(true)
            && let Some(fd) = self.forward_delay
            && !(Duration::from_secs(2)..=Duration::from_secs(30)).contains(&fd)
        {
            return Err(LinkError::Invalid(format!(
                "with STP on, forward_delay must be 2 to 30 s, not {} ms",
                fd.as_millis()
            )));
        }
        Ok(())
    }

    fn apply(
        &self,
        mut b: LinkMessageBuilder<LinkBridge>,
    ) -> Result<LinkMessageBuilder<LinkBridge>, LinkError> {
        self.validate()?;
        // Forward delay first: the kernel checks it against STP when STP
        // is switched on in the same request.
        if let Some(fd) = self.forward_delay {
            b = b.forward_delay(clock_t("forward_delay", fd)?);
        }
        if let Some(on) = self.stp {
            b = b.stp_state(if on {
                BridgeStpState::KernelStp
            } else {
                BridgeStpState::Disabled
            });
        }
        if let Some(a) = self.ageing_time {
            b = b.ageing_time(clock_t("ageing_time", a)?);
        }
        if let Some(m) = self.mcast_snooping {
            b = b.mcast_snooping(m);
        }
        Ok(b)
    }
}

/// `ip link add NAME type bridge stp_state … forward_delay … ageing_time …
/// mcast_snooping …`.
pub fn add_bridge(name: &str, o: &BridgeOpts) -> Result<Req, LinkError> {
    let b = o.apply(LinkBridge::new(name))?;
    Ok((M::NewLink(b.build()), NLM_F_CREATE | NLM_F_EXCL))
}

/// Change an existing bridge's options.
pub fn set_bridge(name: &str, o: &BridgeOpts) -> Result<Req, LinkError> {
    let b = o.apply(LinkBridge::new(name))?;
    Ok((M::NewLink(b.build()), 0))
}

pub(super) fn bridge_state(infos: &[InfoBridge]) -> BridgeState {
    let mut st = BridgeState::default();
    for i in infos {
        match i {
            InfoBridge::StpState(s) => st.stp = !matches!(s, BridgeStpState::Disabled),
            InfoBridge::ForwardDelay(v) => st.forward_delay = *v,
            InfoBridge::AgeingTime(v) => st.ageing_time = *v,
            InfoBridge::MulticastSnooping(v) => st.mcast_snooping = *v,
            _ => {}
        }
    }
    st
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortOpts {
    pub hairpin: Option<bool>,
    pub isolated: Option<bool>,
    pub learning: Option<bool>,
    /// Unknown unicast flooding (`flood` in `ip`).
    pub flood: Option<bool>,
    pub mcast_flood: Option<bool>,
    pub bcast_flood: Option<bool>,
    pub cost: Option<u32>,
    pub priority: Option<u16>,
}

impl PortOpts {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A bridge port as dumped (IFLA_INFO_SLAVE_DATA).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgePortState {
    pub hairpin: bool,
    pub isolated: bool,
    pub learning: bool,
    pub flood: bool,
    pub mcast_flood: bool,
    pub bcast_flood: bool,
    pub cost: u32,
    pub priority: u16,
}

/// The port priority is 6 bits (0 to 63) in the kernel.
pub const PORT_PRIORITY_MAX: u16 = 63;

/// `ip link set dev INDEX type bridge_slave hairpin … isolated … learning …
/// flood … cost … priority …` on a link already on its bridge.
pub fn set_port(index: u32, o: &PortOpts) -> Result<Req, LinkError> {
    if o.priority.is_some_and(|p| p > PORT_PRIORITY_MAX) {
        return Err(LinkError::Invalid(format!(
            "a bridge port priority is 0 to {PORT_PRIORITY_MAX}"
        )));
    }
    if o.cost == Some(0) {
        return Err(LinkError::Invalid(
            "a bridge port cost is at least 1".into(),
        ));
    }
    let mut b = LinkBridgePort::new(index);
    let flags = [
        (
            o.hairpin,
            InfoBridgePort::HairpinMode as fn(bool) -> InfoBridgePort,
        ),
        (o.isolated, InfoBridgePort::Isolated),
        (o.learning, InfoBridgePort::Learning),
        (o.flood, InfoBridgePort::UnicastFlood),
        (o.mcast_flood, InfoBridgePort::MulticastFlood),
        (o.bcast_flood, InfoBridgePort::BroadcastFlood),
    ];
    for (v, f) in flags {
        if let Some(v) = v {
            b = b.append_info_data(f(v));
        }
    }
    if let Some(c) = o.cost {
        b = b.cost(c);
    }
    if let Some(p) = o.priority {
        b = b.priority(p);
    }
    Ok((M::NewLink(b.build()), 0))
}

pub(super) fn port_state(infos: &[LinkInfo]) -> Option<BridgePortState> {
    let is_bridge_port = infos
        .iter()
        .any(|i| matches!(i, LinkInfo::PortKind(InfoPortKind::Bridge)));
    if !is_bridge_port {
        return None;
    }
    let mut st = BridgePortState::default();
    for i in infos {
        if let LinkInfo::PortData(InfoPortData::BridgePort(p)) = i {
            for a in p {
                match a {
                    InfoBridgePort::HairpinMode(v) => st.hairpin = *v,
                    InfoBridgePort::Isolated(v) => st.isolated = *v,
                    InfoBridgePort::Learning(v) => st.learning = *v,
                    InfoBridgePort::UnicastFlood(v) => st.flood = *v,
                    InfoBridgePort::MulticastFlood(v) => st.mcast_flood = *v,
                    InfoBridgePort::BroadcastFlood(v) => st.bcast_flood = *v,
                    InfoBridgePort::Cost(v) => st.cost = *v,
                    InfoBridgePort::Priority(v) => st.priority = *v,
                    _ => {}
                }
            }
        }
    }
    Some(st)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::apply::link_msg::{KindInfo, parse_link};
    use crate::apply::msg;
    use crate::apply::testns::{TestNs, dump_link, link_json, pings};

    #[test]
    fn bridge_options_set_and_read_back() {
        let Some(ns) = TestNs::new() else { return };
        let o = BridgeOpts {
            stp: Some(true),
            forward_delay: Some(Duration::from_secs(4)),
            ageing_time: Some(Duration::from_secs(120)),
            mcast_snooping: Some(false),
        };
        ns.apply(vec![add_bridge("br0", &o).expect("bridge")]);
        let d = link_json(&ns, "br0")["linkinfo"]["info_data"].clone();
        assert_eq!(d["stp_state"], 1);
        assert_eq!(d["forward_delay"], 400);
        assert_eq!(d["ageing_time"], 12000);
        assert_eq!(d["mcast_snooping"], 0);
        let want = BridgeState {
            stp: true,
            forward_delay: 400,
            ageing_time: 12000,
            mcast_snooping: false,
        };
        assert_eq!(
            parse_link(&dump_link(&ns, "br0")).kind,
            Some(KindInfo::Bridge(want))
        );

        let change = BridgeOpts {
            stp: Some(false),
            mcast_snooping: Some(true),
            ..BridgeOpts::default()
        };
        ns.apply(vec![set_bridge("br0", &change).expect("change")]);
        let Some(KindInfo::Bridge(st)) = parse_link(&dump_link(&ns, "br0")).kind else {
            panic!("bridge")
        };
        assert_eq!(
            (st.stp, st.mcast_snooping, st.forward_delay),
            (false, true, 400)
        );

        let bad = BridgeOpts {
            stp: Some(true),
            forward_delay: Some(Duration::from_secs(1)),
            ..BridgeOpts::default()
        };
        assert!(add_bridge("br1", &bad).is_err());
    }

    #[test]
    fn bridge_port_options_set_and_read_back() {
        let Some(ns) = TestNs::new() else { return };
        ns.apply(vec![
            add_bridge("br0", &BridgeOpts::default()).expect("bridge"),
        ]);
        let br = ns.index("br0");
        ns.apply(vec![msg::add_veth("v0", "v1", None, Some(br), true)]);
        let idx = ns.index("v0");
        let o = PortOpts {
            hairpin: Some(true),
            isolated: Some(true),
            learning: Some(false),
            flood: Some(false),
            mcast_flood: Some(false),
            bcast_flood: Some(false),
            cost: Some(42),
            priority: Some(7),
        };
        ns.apply(vec![set_port(idx, &o).expect("port")]);
        let j = link_json(&ns, "v0");
        assert_eq!(j["linkinfo"]["info_slave_kind"], "bridge");
        let d = &j["linkinfo"]["info_slave_data"];
        for (k, v) in [
            ("hairpin", false),
            ("isolated", false),
            ("learning", true),
            ("flood", true),
            ("mcast_flood", true),
            ("bcast_flood", true),
        ] {
            assert_eq!(d[k], !v, "{k}");
        }
        assert_eq!(
            (d["cost"].clone(), d["priority"].clone()),
            (42.into(), 7.into())
        );
        let st = parse_link(&dump_link(&ns, "v0"))
            .bridge_port
            .expect("port state");
        assert_eq!(
            st,
            BridgePortState {
                hairpin: true,
                isolated: true,
                learning: false,
                flood: false,
                mcast_flood: false,
                bcast_flood: false,
                cost: 42,
                priority: 7,
            }
        );
        assert!(
            set_port(
                idx,
                &PortOpts {
                    priority: Some(64),
                    ..PortOpts::default()
                }
            )
            .is_err()
        );
        // A link that is no bridge port has no port options to set.
        ns.apply(vec![msg::add_veth("w0", "w1", None, None, true)]);
        let e = ns
            .try_apply(set_port(ns.index("w0"), &o).expect("msg"))
            .unwrap_err();
        assert_eq!(e.errno, Some(libc::EOPNOTSUPP));
    }

    /// Isolated ports do not reach each other; non-isolated ones do.
    #[test]
    fn isolated_ports_stop_traffic() {
        let Some(hub) = TestNs::new() else { return };
        let b = TestNs::new().expect("b");
        let c = TestNs::new().expect("c");
        hub.apply(vec![
            add_bridge(
                "br0",
                &BridgeOpts {
                    stp: Some(false),
                    ..BridgeOpts::default()
                },
            )
            .expect("bridge"),
        ]);
        hub.ok("ip link set br0 up");
        let br = hub.index("br0");
        hub.apply(vec![
            msg::add_veth("pb", "eth0", Some(b.fd()), Some(br), true),
            msg::add_veth("pc", "eth0", Some(c.fd()), Some(br), true),
        ]);
        b.ok("ip addr add 10.8.0.2/24 dev eth0");
        b.ok("ip link set eth0 up");
        c.ok("ip addr add 10.8.0.3/24 dev eth0");
        c.ok("ip link set eth0 up");
        assert!(pings(&b, "10.8.0.3"), "before isolation");
        let iso = PortOpts {
            isolated: Some(true),
            ..PortOpts::default()
        };
        hub.apply(vec![
            set_port(hub.index("pb"), &iso).expect("pb"),
            set_port(hub.index("pc"), &iso).expect("pc"),
        ]);
        b.ok("ip neigh flush dev eth0");
        assert!(!pings(&b, "10.8.0.3"), "isolated ports must not talk");
    }
}
