//! Does this kernel have link kind X / qdisc Y? Asked before any change, so a
//! missing kind is a clear error up front instead of EOPNOTSUPP half-way.
//!
//! The answer comes from /proc/config.gz when it is readable (`=y`, or `=m`
//! with the module present), otherwise from a probe in a throwaway network
//! namespace (a thread that unshares one, asks the kernel to create the
//! thing there, and ends: nothing outside that namespace changes). Answers
//! are cached for the life of the process.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::RouteNetlinkMessage as M;
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use super::rtnl::Rtnl;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    Veth,
    Bridge,
    Macvlan,
    Macvtap,
    Vxlan,
    /// tun and tap devices (one driver).
    Tun,
    Dummy,
    Vlan,
    Bond,
    Wireguard,
    Vrf,
    Ipvlan,
    Ifb,
    Netem,
    Tbf,
    Htb,
    Ingress,
}

/// What a feature is, for the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thing {
    /// An `IFLA_INFO_KIND`.
    LinkKind(&'static str),
    /// A `TCA_KIND`.
    Qdisc(&'static str),
}

impl Feature {
    pub const ALL: [Feature; 17] = [
        Feature::Veth,
        Feature::Bridge,
        Feature::Macvlan,
        Feature::Macvtap,
        Feature::Vxlan,
        Feature::Tun,
        Feature::Dummy,
        Feature::Vlan,
        Feature::Bond,
        Feature::Wireguard,
        Feature::Vrf,
        Feature::Ipvlan,
        Feature::Ifb,
        Feature::Netem,
        Feature::Tbf,
        Feature::Htb,
        Feature::Ingress,
    ];

    /// The link kind or qdisc name, config option and module of each.
    fn facts(self) -> (Thing, &'static str, &'static str) {
        use Feature::*;
        use Thing::{LinkKind as L, Qdisc as Q};
        match self {
            Veth => (L("veth"), "CONFIG_VETH", "veth"),
            Bridge => (L("bridge"), "CONFIG_BRIDGE", "bridge"),
            Macvlan => (L("macvlan"), "CONFIG_MACVLAN", "macvlan"),
            Macvtap => (L("macvtap"), "CONFIG_MACVTAP", "macvtap"),
            Vxlan => (L("vxlan"), "CONFIG_VXLAN", "vxlan"),
            Tun => (L("tun"), "CONFIG_TUN", "tun"),
            Dummy => (L("dummy"), "CONFIG_DUMMY", "dummy"),
            Vlan => (L("vlan"), "CONFIG_VLAN_8021Q", "8021q"),
            Bond => (L("bond"), "CONFIG_BONDING", "bonding"),
            Wireguard => (L("wireguard"), "CONFIG_WIREGUARD", "wireguard"),
            Vrf => (L("vrf"), "CONFIG_NET_VRF", "vrf"),
            Ipvlan => (L("ipvlan"), "CONFIG_IPVLAN", "ipvlan"),
            Ifb => (L("ifb"), "CONFIG_IFB", "ifb"),
            Netem => (Q("netem"), "CONFIG_NET_SCH_NETEM", "sch_netem"),
            Tbf => (Q("tbf"), "CONFIG_NET_SCH_TBF", "sch_tbf"),
            Htb => (Q("htb"), "CONFIG_NET_SCH_HTB", "sch_htb"),
            Ingress => (Q("ingress"), "CONFIG_NET_SCH_INGRESS", "sch_ingress"),
        }
    }

    pub fn thing(self) -> Thing {
        self.facts().0
    }
    pub fn config(self) -> &'static str {
        self.facts().1
    }
    pub fn module(self) -> &'static str {
        self.facts().2
    }

    /// "netem qdisc", "vxlan link kind".
    pub fn describe(self) -> String {
        match self.thing() {
            Thing::LinkKind("tun") => "tun/tap device".to_string(),
            Thing::LinkKind(k) => format!("{k} link kind"),
            Thing::Qdisc(q) => format!("{q} qdisc"),
        }
    }

    pub fn from_link_kind(kind: &str) -> Option<Feature> {
        let kind = if kind == "tap" { "tun" } else { kind };
        Self::ALL
            .into_iter()
            .find(|f| matches!(f.thing(), Thing::LinkKind(k) if k == kind))
    }

    pub fn from_qdisc(kind: &str) -> Option<Feature> {
        Self::ALL
            .into_iter()
            .find(|f| matches!(f.thing(), Thing::Qdisc(q) if q == kind))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    #[error("this kernel has no {} ({})", .0.describe(), .0.config())]
    Missing(Feature),
    #[error("cannot tell whether this kernel has the {} ({}): {reason}", .feature.describe(), .feature.config())]
    Undetermined { feature: Feature, reason: String },
}

/// How an answer was found (for `-v` and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Probe,
}

/// Fail with "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)" when the
/// feature is missing.
pub fn require(f: Feature) -> Result<(), FeatureError> {
    if available(f)? {
        Ok(())
    } else {
        Err(FeatureError::Missing(f))
    }
}

/// Whether the kernel has `f` (cached).
pub fn available(f: Feature) -> Result<bool, FeatureError> {
    static CACHE: OnceLock<Mutex<HashMap<Feature, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache.lock().ok().and_then(|c| c.get(&f).copied()) {
        return Ok(v);
    }
    let (v, _) = detect(f)?;
    if let Ok(mut c) = cache.lock() {
        c.insert(f, v);
    }
    Ok(v)
}

/// Uncached: the answer and where it came from.
pub fn detect(f: Feature) -> Result<(bool, Source), FeatureError> {
    if let Some(cfg) = kernel_config() {
        return Ok((cfg.has(f, &ModulesOnDisk), Source::Config));
    }
    probe(f).map(|v| (v, Source::Probe))
}

/// The running kernel's build configuration, read once.
pub fn kernel_config() -> Option<&'static KernelConfig> {
    static CONFIG: OnceLock<Option<KernelConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let gz = std::fs::read("/proc/config.gz").ok()?;
            KernelConfig::parse(&gunzip(&gz)?).into()
        })
        .as_ref()
}

/// `CONFIG_X=y|m` lines of a kernel config; "is not set" lines are absent.
#[derive(Debug, Clone, Default)]
pub struct KernelConfig {
    values: HashMap<String, String>,
}

/// Is a loadable module installed?
pub trait Modules {
    fn present(&self, module: &str) -> bool;
}

/// Loaded (/sys/module) or installed (modules.dep of the running kernel).
pub struct ModulesOnDisk;

impl Modules for ModulesOnDisk {
    fn present(&self, module: &str) -> bool {
        if std::path::Path::new("/sys/module").join(module).exists() {
            return true;
        }
        let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else {
            return false;
        };
        let dep = format!("/lib/modules/{}/modules.dep", release.trim());
        std::fs::read_to_string(dep).is_ok_and(|d| modules_dep_has(&d, module))
    }
}

/// modules.dep lines look like `kernel/net/sched/sch_netem.ko.zst: …`; the
/// file name may spell `_` as `-`.
fn modules_dep_has(dep: &str, module: &str) -> bool {
    let want = module.replace('-', "_");
    dep.lines().any(|l| {
        let path = l.split(':').next().unwrap_or("");
        let file = path.rsplit('/').next().unwrap_or("");
        file.split(".ko")
            .next()
            .is_some_and(|stem| file.contains(".ko") && stem.replace('-', "_") == want)
    })
}

impl KernelConfig {
    pub fn parse(text: &str) -> Self {
        let values = text
            .lines()
            .filter(|l| l.starts_with("CONFIG_"))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Self { values }
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn has(&self, f: Feature, modules: &dyn Modules) -> bool {
        match self.value(f.config()) {
            Some("y") => true,
            Some("m") => modules.present(f.module()),
            _ => false,
        }
    }
}

/// Decompress a gzip file (RFC 1952): its header, then one deflate stream.
fn gunzip(gz: &[u8]) -> Option<String> {
    if gz.len() < 18 || gz[0] != 0x1f || gz[1] != 0x8b || gz[2] != 8 {
        return None;
    }
    let flags = gz[3];
    let mut off = 10;
    if flags & 0x04 != 0 {
        let xlen = u16::from_le_bytes([*gz.get(off)?, *gz.get(off + 1)?]) as usize;
        off += 2 + xlen;
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            off += gz.get(off..)?.iter().position(|b| *b == 0)? + 1;
        }
    }
    if flags & 0x02 != 0 {
        off += 2;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec(gz.get(off..)?).ok()?;
    String::from_utf8(raw).ok()
}

/// Ask the kernel itself, inside a namespace made for the question.
pub fn probe(f: Feature) -> Result<bool, FeatureError> {
    let undetermined = |reason: String| FeatureError::Undetermined { feature: f, reason };
    std::thread::spawn(move || -> Result<bool, String> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("cannot make a throwaway network namespace: {e}"))?;
        match f.thing() {
            Thing::LinkKind("tun") => Ok(super::tun::probe_here()),
            Thing::LinkKind(kind) => {
                let mut rt = Rtnl::open().map_err(|e| e.to_string())?;
                let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(kind.into())
                    .name("npprobe0".to_string())
                    .build();
                // An unknown kind is EOPNOTSUPP; a known one succeeds or
                // refuses its missing parameters (EINVAL …).
                match rt.request(M::NewLink(msg), NLM_F_CREATE | NLM_F_EXCL) {
                    Err(e) if e.errno == Some(libc::EOPNOTSUPP) => Ok(false),
                    _ => Ok(true),
                }
            }
            Thing::Qdisc(kind) => {
                let mut rt = Rtnl::open().map_err(|e| e.to_string())?;
                let mut m = TcMessage::default();
                m.header.index = 1;
                if kind == "ingress" {
                    m.header.parent = TcHandle::INGRESS;
                    m.header.handle = TcHandle {
                        major: 0xffff,
                        minor: 0,
                    };
                } else {
                    m.header.parent = TcHandle::ROOT;
                }
                m.attributes.push(TcAttribute::Kind(kind.to_string()));
                // A module load answers EAGAIN ("replay"): ask again once.
                let ask = |rt: &mut Rtnl| {
                    rt.request(M::NewQueueDiscipline(m.clone()), NLM_F_CREATE | NLM_F_EXCL)
                };
                let mut r = ask(&mut rt);
                if matches!(&r, Err(e) if e.errno == Some(libc::EAGAIN)) {
                    r = ask(&mut rt);
                }
                // "Specified qdisc kind is unknown" is ENOENT.
                Ok(!matches!(r, Err(e) if e.errno == Some(libc::ENOENT)))
            }
        }
    })
    .join()
    .map_err(|_| undetermined("probe thread panicked".to_string()))?
    .map_err(undetermined)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoModules;
    impl Modules for NoModules {
        fn present(&self, _: &str) -> bool {
            false
        }
    }
    struct Only(&'static str);
    impl Modules for Only {
        fn present(&self, m: &str) -> bool {
            m == self.0
        }
    }

    #[test]
    fn error_names_the_qdisc_and_the_option() {
        assert_eq!(
            FeatureError::Missing(Feature::Netem).to_string(),
            "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM)"
        );
        assert_eq!(
            FeatureError::Missing(Feature::Vlan).to_string(),
            "this kernel has no vlan link kind (CONFIG_VLAN_8021Q)"
        );
    }

    #[test]
    fn config_lines_y_m_and_not_set() {
        let cfg = KernelConfig::parse(
            "# comment\nCONFIG_VXLAN=y\nCONFIG_NET_SCH_NETEM=m\n# CONFIG_DUMMY is not set\nCONFIG_VLAN_8021Q=m\n",
        );
        assert!(cfg.has(Feature::Vxlan, &NoModules));
        assert!(!cfg.has(Feature::Dummy, &NoModules));
        assert!(!cfg.has(Feature::Netem, &NoModules));
        assert!(cfg.has(Feature::Netem, &Only("sch_netem")));
        assert!(cfg.has(Feature::Vlan, &Only("8021q")));
        assert!(!cfg.has(Feature::Tbf, &Only("sch_tbf")), "absent option");
    }

    #[test]
    fn modules_dep_matches_compressed_and_dashed_names() {
        let dep = "kernel/net/sched/sch_netem.ko.zst: \nkernel/drivers/net/wireguard/wireguard.ko: kernel/lib/udp_tunnel.ko\n";
        assert!(modules_dep_has(dep, "sch_netem"));
        assert!(modules_dep_has(dep, "wireguard"));
        assert!(!modules_dep_has(dep, "sch_tbf"));
        assert!(!modules_dep_has(dep, "udp"));
    }

    #[test]
    fn names_map_to_features() {
        assert_eq!(Feature::from_qdisc("netem"), Some(Feature::Netem));
        assert_eq!(Feature::from_link_kind("tap"), Some(Feature::Tun));
        assert_eq!(Feature::from_link_kind("macvlan"), Some(Feature::Macvlan));
        assert_eq!(Feature::from_link_kind("nonsense"), None);
    }

    #[test]
    fn gunzip_reads_this_kernels_config() {
        let Ok(gz) = std::fs::read("/proc/config.gz") else {
            eprintln!("note: skipped, /proc/config.gz not readable");
            return;
        };
        let text = gunzip(&gz).expect("gunzip");
        assert!(text.contains("CONFIG_NET="), "not a kernel config");
        assert!(kernel_config().is_some());
    }

    /// The two ways of knowing agree on every feature, on any kernel.
    #[test]
    fn probe_agrees_with_config() {
        let Some(cfg) = kernel_config() else {
            eprintln!("note: skipped, no /proc/config.gz to compare with");
            return;
        };
        if !nix::unistd::geteuid().is_root() {
            eprintln!("note: skipped, probing needs root");
            return;
        }
        for f in Feature::ALL {
            let by_config = cfg.has(f, &ModulesOnDisk);
            let by_probe = probe(f).expect("probe");
            assert_eq!(
                by_config, by_probe,
                "{f:?}: config says {by_config}, probe {by_probe}"
            );
        }
    }

    /// What this kernel answers for netem, as the user reads it.
    #[test]
    fn require_gives_the_clear_error() {
        let Some(cfg) = kernel_config() else { return };
        for f in Feature::ALL {
            match (cfg.value(f.config()), require(f)) {
                (Some("y"), r) => assert_eq!(r, Ok(())),
                (None, Err(e)) => assert_eq!(
                    e.to_string(),
                    format!("this kernel has no {} ({})", f.describe(), f.config())
                ),
                (v, r) if v != Some("m") => panic!("{f:?}: config {v:?} but require gave {r:?}"),
                _ => {}
            }
        }
    }
}
