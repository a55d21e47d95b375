//! Link kinds beyond veth and bridge, as plain data: what `ip link add …
//! type macvlan|vxlan` is asked to make. Validated by the model before it
//! gets here; encoded by `apply::link_msg` / `apply::vxlan_msg`.

use std::net::IpAddr;

use crate::model::{IfName, NsRef};

/// A macvlan's mode (`ip link add … type macvlan mode MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MacvlanMode {
    Bridge,
    Private,
    Vepa,
    Passthru,
}

impl MacvlanMode {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "bridge" => Self::Bridge,
            "private" => Self::Private,
            "vepa" => Self::Vepa,
            "passthru" => Self::Passthru,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Private => "private",
            Self::Vepa => "vepa",
            Self::Passthru => "passthru",
        }
    }
}

/// The IANA VXLAN port (the kernel's own default is 8472).
pub const VXLAN_PORT: u16 = 4789;

/// A vxlan as declared: VNI, where unknown destinations go, the underlay.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VxlanSpec {
    pub id: u32,
    pub remote: Option<IpAddr>,
    pub group: Option<IpAddr>,
    pub local: Option<IpAddr>,
    /// The underlay device, in the vxlan's namespace.
    pub dev: Option<IfName>,
    pub port: u16,
    pub learning: bool,
}

impl VxlanSpec {
    /// Outer headers: 50 bytes over IPv4, 70 over IPv6.
    pub fn overhead(&self) -> u32 {
        let v6 = self
            .remote
            .or(self.group)
            .or(self.local)
            .is_some_and(|a| a.is_ipv6());
        if v6 { 70 } else { 50 }
    }

    /// The `type vxlan …` words, as `ip` takes them.
    pub fn words(&self) -> String {
        let mut s = format!("id {}", self.id);
        if let Some(r) = self.remote {
            s.push_str(&format!(" remote {r}"));
        }
        if let Some(g) = self.group {
            s.push_str(&format!(" group {g}"));
        }
        if let Some(l) = self.local {
            s.push_str(&format!(" local {l}"));
        }
        if let Some(d) = &self.dev {
            s.push_str(&format!(" dev {d}"));
        }
        s.push_str(&format!(" dstport {}", self.port));
        if !self.learning {
            s.push_str(" nolearning");
        }
        s
    }
}

/// A persistent tun (layer 3) or tap (layer 2) device, for a VM or a
/// user-space program to open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TunSpec {
    pub tap: bool,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    pub multi_queue: bool,
}

impl TunSpec {
    /// `mode tap user 1000 group 100 multi_queue`, as `ip tuntap` takes it.
    pub fn words(&self) -> String {
        let mut s = format!("mode {}", if self.tap { "tap" } else { "tun" });
        if let Some(u) = self.owner {
            s.push_str(&format!(" user {u}"));
        }
        if let Some(g) = self.group {
            s.push_str(&format!(" group {g}"));
        }
        if self.multi_queue {
            s.push_str(" multi_queue");
        }
        s
    }
}

/// What a new link of another kind is made as.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LinkSpec {
    /// On `parent` (a device in the namespace the request is sent in).
    Macvlan { parent: IfName, mode: MacvlanMode },
    /// `mtu`: the underlay's minus the outer headers, set explicitly so
    /// `plan` says what the kernel will have.
    Vxlan { spec: VxlanSpec, mtu: Option<u32> },
    /// Made through /dev/net/tun in the request's namespace, persistent.
    Tun(TunSpec),
}

impl LinkSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            LinkSpec::Macvlan { .. } => "macvlan",
            LinkSpec::Vxlan { .. } => "vxlan",
            LinkSpec::Tun(_) => "tun",
        }
    }

    /// What reading the device back says it is (`kernel::Link::info`),
    /// to tell a device made as declared from one the script changed.
    pub fn info(&self) -> String {
        match self {
            LinkSpec::Macvlan { mode, .. } => format!("mode {}", mode.as_str()),
            LinkSpec::Vxlan { spec, .. } => {
                let s = VxlanSpec {
                    dev: None,
                    ..spec.clone()
                };
                s.words()
            }
            LinkSpec::Tun(t) => t.words(),
        }
    }

    /// `ip link add` words after the name: `link eth0 type macvlan mode
    /// bridge`, `mtu 1450 type vxlan id 42 … dstport 4789`. `into`: the
    /// namespace the link is born in when that is not the request's.
    pub fn words(&self, into: Option<&NsRef>) -> String {
        let netns = match into {
            None => String::new(),
            // `$$`: the shell running the plan is in the host namespace.
            Some(NsRef::Host) => " netns $$".to_string(),
            Some(NsRef::Named(n)) => format!(" netns {n}"),
        };
        match self {
            LinkSpec::Macvlan { parent, mode } => {
                format!("link {parent}{netns} type macvlan mode {}", mode.as_str())
            }
            LinkSpec::Vxlan { spec, mtu } => {
                let mtu = mtu.map(|m| format!(" mtu {m}")).unwrap_or_default();
                format!("{mtu}{netns} type vxlan {}", spec.words())
                    .trim_start()
                    .to_string()
            }
            LinkSpec::Tun(t) => t.words(),
        }
    }
}
