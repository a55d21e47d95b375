//! Kernel state as read back: one set of types for the diff, `show`,
//! `graph`, `ping-all`, `check` and the REPL. Plain data with the kernel's
//! own numbers (ifindex, table ids); names are resolved by the readers.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::Cidr;

/// The kernel's main routing table (what `ip route` shows by default).
pub const RT_TABLE_MAIN: u32 = 254;

/// Bridge port state "forwarding" (BR_STATE_FORWARDING).
pub const BR_STATE_FORWARDING: u8 = 3;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND`: "veth", "bridge", … (None for physical devices and lo).
    pub kind: Option<String>,
    /// IFF_UP: the administrative state `ip link set … up` sets.
    pub up: bool,
    /// IFF_LOWER_UP: carrier (for a veth: the peer is up too).
    pub lower_up: bool,
    /// `IFLA_OPERSTATE` as `ip` prints it: UP, DOWN, LOWERLAYERDOWN, UNKNOWN, …
    pub oper: String,
    pub mtu: u32,
    pub mac: Option<String>,
    /// `IFLA_IFALIAS`: the description `ip link set … alias` sets.
    pub alias: Option<String>,
    pub master: Option<u32>,
    /// `IFLA_LINK`: for a veth, the peer's ifindex in the peer's namespace.
    pub peer: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer's namespace as this namespace numbers
    /// it; None when the peer is in this same namespace.
    pub peer_netnsid: Option<i32>,
    /// For a bridge port: its STP state (3 = forwarding).
    pub port_state: Option<u8>,
    /// For a bridge: whether the kernel runs STP on it.
    pub stp: Option<bool>,
    /// For a bridge: whether it snoops IGMP/MLD (`ip -d link`: mcast_snooping).
    pub mcast_snooping: Option<bool>,
    /// The root qdisc netplumb can tell from the device's default (None:
    /// noqueue, pfifo_fast, fq_codel, mq … whatever the device came with).
    pub qdisc: Option<Qdisc>,
    /// What a macvlan or vxlan is, in the words of `op::LinkSpec::info`
    /// ("mode bridge", "id 42 remote 10.0.0.2 dstport 4789").
    pub info: Option<String>,
    /// For a bridge port: whether hairpin mode is on.
    pub hairpin: Option<bool>,
    /// For a vxlan: where flooded frames also go (its all-zero-MAC fdb
    /// entries, `bridge fdb append 00:00:00:00:00:00 dev … dst …`).
    pub flood: Vec<IpAddr>,
}

impl Link {
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }
    pub fn is_veth(&self) -> bool {
        self.kind.as_deref() == Some("veth")
    }
    /// Operationally up and, when it is a bridge port, forwarding: a packet
    /// sent now is carried. Until the link watch has run, the device still
    /// has the noop qdisc and drops what is sent — a bridge too, once it
    /// has ports. A bridge with no port up never gets carrier, so for it
    /// being up is all there is to wait for.
    pub fn is_ready(&self, ports_up: bool) -> bool {
        // A vxlan reports no carrier state of its own: UNKNOWN, and lower up.
        let tunnel =
            self.oper == "UNKNOWN" && self.lower_up && self.kind.as_deref() == Some("vxlan");
        // A tun/tap has carrier only while a program holds it open: up is
        // all there is to wait for.
        let tun = self.up && self.kind.as_deref() == Some("tun");
        let carrying =
            self.oper == "UP" || tunnel || tun || (self.is_bridge() && self.up && !ports_up);
        carrying && self.port_state.is_none_or(|s| s == BR_STATE_FORWARDING)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    /// The address with its prefix, host bits kept (`172.18.0.20/16`).
    pub cidr: Cidr,
    /// "global", "link", "host", … as `ip` prints it.
    pub scope: String,
    /// IPv6 duplicate address detection has not finished: not usable yet.
    pub tentative: bool,
    /// The address's IFA_F_* flags as the kernel gives them (`flag_names`
    /// spells them as `ip` does).
    pub flags: u32,
}

/// IFA_F_PERMANENT: configured, not learnt (no lifetime).
pub const IFA_F_PERMANENT: u32 = 0x80;

impl Addr {
    /// The flags as `ip -j addr` names them, in its order: "secondary" (an
    /// IPv6 one is "temporary"), "nodad", "optimistic", "dadfailed", "home",
    /// "deprecated", "tentative", "mngtmpaddr", "noprefixroute", "autojoin",
    /// "stable-privacy", and "dynamic" for an address that is not permanent.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let v6 = self.cidr.is_v6();
        let names: [(u32, &'static str); 11] = [
            (0x01, if v6 { "temporary" } else { "secondary" }),
            (0x02, "nodad"),
            (0x04, "optimistic"),
            (0x08, "dadfailed"),
            (0x10, "home"),
            (0x20, "deprecated"),
            (0x40, "tentative"),
            (0x100, "mngtmpaddr"),
            (0x200, "noprefixroute"),
            (0x400, "autojoin"),
            (0x800, "stable-privacy"),
        ];
        let mut out: Vec<&'static str> = names
            .iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, n)| *n)
            .collect();
        if self.flags & IFA_F_PERMANENT == 0 {
            out.push("dynamic");
        }
        out
    }
}

/// A root qdisc as read back: tbf's rate (bytes/s), bucket and queue
/// (bytes); netem's rate and queue (packets); only the kind for others.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Qdisc {
    pub kind: String,
    pub rate: u64,
    pub burst: u32,
    pub limit: u32,
}

/// One path of a multipath route, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteHop {
    pub via: Option<IpAddr>,
    pub oif: Option<u32>,
    pub weight: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Route {
    pub table: u32,
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub oif: Option<u32>,
    /// "unicast", "unreachable", "blackhole", …
    pub kind: String,
    /// "kernel", "boot", "static", …
    pub proto: String,
    /// "global", "link", "host", …
    pub scope: String,
    pub src: Option<IpAddr>,
    pub metric: Option<u32>,
    pub onlink: bool,
    pub mtu: Option<u32>,
    pub nexthops: Vec<RouteHop>,
}

/// A policy rule, as read back (`ip -j rule`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    pub v6: bool,
    pub priority: u32,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<u32>,
    /// "table 100", "blackhole", "unreachable", "prohibit", "goto 5", "nop".
    pub action: String,
}

/// One namespace's links, addresses (in the kernel's order) and routes of
/// every table, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NsState {
    pub links: Vec<Link>,
    pub addrs: Vec<Addr>,
    pub routes: Vec<Route>,
    /// Policy rules of both families, the kernel's own too.
    pub rules: Vec<Rule>,
}

impl NsState {
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
    pub fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }
    /// The addresses on `dev`, in the kernel's order (the primary first).
    pub fn addrs_of(&self, dev: &str) -> Vec<&Addr> {
        match self.link(dev) {
            Some(l) => self.addrs.iter().filter(|a| a.index == l.index).collect(),
            None => Vec::new(),
        }
    }
    pub fn has_addr(&self, dev: &str, cidr: &Cidr) -> bool {
        self.addrs_of(dev).iter().any(|a| &a.cidr == cidr)
    }
    /// Main-table unicast routes to `dest` (whatever their gateway).
    pub fn routes_to(&self, dest: &IpNet) -> impl Iterator<Item = &Route> {
        self.routes
            .iter()
            .filter(move |r| r.table == RT_TABLE_MAIN && &r.dest == dest && r.kind == "unicast")
    }
    pub fn has_route(&self, dest: &IpNet, via: &IpAddr) -> bool {
        self.routes_to(dest).any(|r| r.via.as_ref() == Some(via))
    }
}

/// An nf_tables table's identity and marker, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub handle: u64,
    pub userdata: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub status: i64,
    pub stdout: String,
    pub stderr: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(cidr: &str, flags: u32) -> Addr {
        Addr {
            index: 2,
            cidr: Cidr::parse(cidr).unwrap(),
            scope: "global".into(),
            tentative: flags & 0x40 != 0,
            flags,
        }
    }

    #[test]
    fn address_flags_are_named_as_ip_names_them() {
        assert!(addr("10.0.0.1/24", IFA_F_PERMANENT).flag_names().is_empty());
        assert_eq!(addr("10.0.0.1/24", 0).flag_names(), ["dynamic"]);
        assert_eq!(
            addr("10.0.0.2/24", IFA_F_PERMANENT | 0x01).flag_names(),
            ["secondary"]
        );
        assert_eq!(
            addr("fd00::1/64", IFA_F_PERMANENT | 0x01 | 0x40 | 0x200).flag_names(),
            ["temporary", "tentative", "noprefixroute"]
        );
    }
}
