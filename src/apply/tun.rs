//! Persistent tun and tap devices, for a VM or a user-space program to open.
//!
//! The kernel makes them only through /dev/net/tun ioctls (its rtnetlink
//! "tun" kind refuses creation with EOPNOTSUPP): TUNSETIFF names the device
//! and its flags, TUNSETOWNER/TUNSETGROUP say who may open it later,
//! TUNSETPERSIST keeps it after our fd closes. The device is born in the
//! network namespace of the thread that opened /dev/net/tun, so this runs on
//! a thread inside the target namespace. Deletion is plain RTM_DELLINK
//! (`msg::del_link`). Read-back is IFLA_INFO_DATA of kind "tun".

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;

use netlink_packet_core::Nla;
use netlink_packet_route::link::{InfoData, InfoKind, LinkAttribute, LinkInfo, LinkMessage};

use super::netns::in_ns;
use crate::kernel::KernelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunMode {
    /// Layer 3: IP packets (IFF_TUN).
    Tun,
    /// Layer 2: Ethernet frames (IFF_TAP).
    Tap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunOpts {
    pub name: String,
    pub mode: TunMode,
    /// The only user allowed to attach (besides CAP_NET_ADMIN).
    pub owner: Option<u32>,
    /// The only group allowed to attach.
    pub group: Option<u32>,
    /// IFF_MULTI_QUEUE: several fds may attach, one queue each.
    pub multi_queue: bool,
    /// IFF_VNET_HDR: frames carry a virtio-net header (what QEMU's vhost wants).
    pub vnet_hdr: bool,
}

impl TunOpts {
    pub fn new(name: &str, mode: TunMode) -> Self {
        Self {
            name: name.to_string(),
            mode,
            owner: None,
            group: None,
            multi_queue: false,
            vnet_hdr: false,
        }
    }

    /// The TUNSETIFF flags. Packet information (the 4-byte prefix) is
    /// always off: every current user opens with IFF_NO_PI, and a device's
    /// flags must match the opener's.
    pub fn flags(&self) -> libc::c_short {
        let mut f = match self.mode {
            TunMode::Tun => libc::IFF_TUN,
            TunMode::Tap => libc::IFF_TAP,
        } | libc::IFF_NO_PI;
        if self.multi_queue {
            f |= libc::IFF_MULTI_QUEUE;
        }
        if self.vnet_hdr {
            f |= libc::IFF_VNET_HDR;
        }
        f as libc::c_short
    }
}

/// What the kernel says about a tun/tap device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TunState {
    /// "tun" or "tap" (IFLA_TUN_TYPE).
    pub mode: Option<TunMode>,
    pub owner: Option<u32>,
    pub group: Option<u32>,
    /// Packet information prefix on (IFF_NO_PI not set).
    pub pi: bool,
    pub vnet_hdr: bool,
    pub persist: bool,
    pub multi_queue: bool,
    /// Queues attached now (only reported for multi-queue devices).
    pub num_queues: Option<u32>,
}

fn errno(what: &str) -> KernelError {
    let e = std::io::Error::last_os_error();
    KernelError::from(e).context(what)
}

fn open_tun() -> Result<File, KernelError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| KernelError::from(e).context("cannot open /dev/net/tun"))
}

fn ifreq(name: &str, flags: libc::c_short) -> Result<libc::ifreq, KernelError> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(KernelError::errno(
            libc::EINVAL,
            format!("bad device name {name:?}"),
        ));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = flags;
    Ok(req)
}

/// Attach `f` to device `name` (made if missing) with `flags`.
fn set_iff(f: &File, name: &str, flags: libc::c_short) -> Result<(), KernelError> {
    let mut req = ifreq(name, flags)?;
    // SAFETY: TUNSETIFF reads and writes one struct ifreq, which `req` is;
    // the fd is open for the duration of the call.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    if r < 0 {
        return Err(errno(&format!("cannot create tun/tap device {name}")));
    }
    Ok(())
}

fn set_value(
    f: &File,
    req: libc::Ioctl,
    value: libc::c_ulong,
    what: &str,
) -> Result<(), KernelError> {
    // SAFETY: these tun ioctls take their argument by value (an unsigned
    // long), not a pointer.
    let r = unsafe { libc::ioctl(f.as_raw_fd(), req, value) };
    if r < 0 {
        return Err(errno(what));
    }
    Ok(())
}

/// Create a persistent device in the calling thread's network namespace.
/// Must run on a thread that is inside the target namespace (see
/// `create_in`). If a step after TUNSETIFF fails, the device goes away with
/// our fd (it is persistent only once TUNSETPERSIST succeeds).
pub fn create_here(o: &TunOpts) -> Result<(), KernelError> {
    let f = open_tun()?;
    set_iff(&f, &o.name, o.flags())?;
    if let Some(uid) = o.owner {
        set_value(
            &f,
            libc::TUNSETOWNER,
            uid.into(),
            &format!("cannot set the owner of {}", o.name),
        )?;
    }
    if let Some(gid) = o.group {
        set_value(
            &f,
            libc::TUNSETGROUP,
            gid.into(),
            &format!("cannot set the group of {}", o.name),
        )?;
    }
    set_value(
        &f,
        libc::TUNSETPERSIST,
        1,
        &format!("cannot make {} persistent", o.name),
    )
}

/// Create a persistent device inside `ns` (None: the caller's namespace),
/// on a thread of its own so no shared thread changes namespace.
pub fn create_in(ns: Option<&File>, o: &TunOpts) -> Result<(), KernelError> {
    match ns {
        Some(_) => in_ns(ns, || create_here(o)),
        None => std::thread::scope(|s| {
            s.spawn(|| create_here(o))
                .join()
                .unwrap_or_else(|_| Err(KernelError::other("tun thread panicked")))
        }),
    }
}

/// Can this namespace make a tun device at all? (A throwaway device: not
/// persistent, it vanishes when the fd closes.)
pub(super) fn probe_here() -> bool {
    open_tun().is_ok_and(|f| {
        set_iff(
            &f,
            "npprobe0",
            (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
        )
        .is_ok()
    })
}

const IFLA_TUN_OWNER: u16 = 1;
const IFLA_TUN_GROUP: u16 = 2;
const IFLA_TUN_TYPE: u16 = 3;
const IFLA_TUN_PI: u16 = 4;
const IFLA_TUN_VNET_HDR: u16 = 5;
const IFLA_TUN_PERSIST: u16 = 6;
const IFLA_TUN_MULTI_QUEUE: u16 = 7;
const IFLA_TUN_NUM_QUEUES: u16 = 8;

/// An attribute's type and payload (netlink-packet-route has no typed tun
/// attributes, only `DefaultNla`).
pub(super) fn nla_parts(n: &impl Nla) -> (u16, Vec<u8>) {
    let mut v = vec![0; n.value_len()];
    n.emit_value(&mut v);
    (n.kind() & 0x3fff, v)
}

/// The tun/tap details of a dumped link, None when it is not one.
pub fn parse_tun(l: &LinkMessage) -> Option<TunState> {
    let infos = l.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(i) => Some(i),
        _ => None,
    })?;
    if !infos
        .iter()
        .any(|i| matches!(i, LinkInfo::Kind(InfoKind::Tun)))
    {
        return None;
    }
    let mut st = TunState::default();
    for i in infos {
        let LinkInfo::Data(InfoData::Tun(attrs)) = i else {
            continue;
        };
        for a in attrs {
            let (kind, v) = nla_parts(a);
            let u8v = v.first().copied().unwrap_or(0);
            let u32v = v
                .get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            match kind {
                IFLA_TUN_OWNER => st.owner = u32v,
                IFLA_TUN_GROUP => st.group = u32v,
                IFLA_TUN_TYPE => {
                    st.mode = match u8v as libc::c_int {
                        libc::IFF_TUN => Some(TunMode::Tun),
                        libc::IFF_TAP => Some(TunMode::Tap),
                        _ => None,
                    }
                }
                IFLA_TUN_PI => st.pi = u8v != 0,
                IFLA_TUN_VNET_HDR => st.vnet_hdr = u8v != 0,
                IFLA_TUN_PERSIST => st.persist = u8v != 0,
                IFLA_TUN_MULTI_QUEUE => st.multi_queue = u8v != 0,
                IFLA_TUN_NUM_QUEUES => st.num_queues = u32v,
                _ => {}
            }
        }
    }
    Some(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::msg;
    use crate::apply::testns::{TestNs, dump_link, link_json};

    #[test]
    fn flags_are_what_ip_tuntap_sends() {
        let mut o = TunOpts::new("tap0", TunMode::Tap);
        assert_eq!(o.flags(), 0x1002);
        o.multi_queue = true;
        assert_eq!(o.flags(), 0x1102);
        assert_eq!(TunOpts::new("tun0", TunMode::Tun).flags(), 0x1001);
    }

    #[test]
    fn bad_names_are_refused_before_the_kernel() {
        assert!(ifreq("", 0).is_err());
        assert!(ifreq("sixteen-bytes-xx", 0).is_err());
        assert!(ifreq("fifteen-bytes-x", 0).is_ok());
    }

    #[test]
    fn persistent_tap_with_owner_group_multi_queue_reads_back() {
        let Some(ns) = TestNs::new() else { return };
        let mut o = TunOpts::new("tap7", TunMode::Tap);
        o.owner = Some(1234);
        o.group = Some(4321);
        o.multi_queue = true;
        create_in(Some(ns.file()), &o).expect("create tap");
        // Our fd is closed: the device stays because it is persistent.
        let j = link_json(&ns, "tap7");
        assert_eq!(j["linkinfo"]["info_kind"], "tun");
        let d = &j["linkinfo"]["info_data"];
        assert_eq!(d["type"], "tap");
        assert_eq!(d["pi"], false);
        assert_eq!(d["persist"], true);
        assert_eq!(d["multi_queue"], true);
        assert_eq!(d["user"], 1234);
        assert_eq!(d["group"], 4321);
        let st = parse_tun(&dump_link(&ns, "tap7")).expect("tun info");
        assert_eq!(
            st,
            TunState {
                mode: Some(TunMode::Tap),
                owner: Some(1234),
                group: Some(4321),
                pi: false,
                vnet_hdr: false,
                persist: true,
                multi_queue: true,
                num_queues: Some(0),
            }
        );
        // The same name again is refused (EBUSY: attached flags differ) …
        let mut other = o.clone();
        other.mode = TunMode::Tun;
        assert!(create_in(Some(ns.file()), &other).is_err());
        // … and RTM_DELLINK removes it.
        ns.apply(vec![msg::del_link("tap7")]);
        assert!(!ns.output("ip link show dev tap7").status.success());
    }

    #[test]
    fn plain_tun_reads_back_without_owner() {
        let Some(ns) = TestNs::new() else { return };
        create_in(Some(ns.file()), &TunOpts::new("tun3", TunMode::Tun)).expect("create tun");
        let st = parse_tun(&dump_link(&ns, "tun3")).expect("tun info");
        assert_eq!(st.mode, Some(TunMode::Tun));
        assert_eq!(
            (st.owner, st.group, st.multi_queue, st.num_queues),
            (None, None, false, None)
        );
        assert!(st.persist);
        assert_eq!(
            link_json(&ns, "tun3")["linkinfo"]["info_data"]["type"],
            "tun"
        );
    }

    /// A program can open the persistent tap and exchange frames through it:
    /// a frame written to the fd is seen by the kernel (rx counter).
    #[test]
    fn tap_opened_by_a_program_carries_frames() {
        let Some(ns) = TestNs::new() else { return };
        create_in(Some(ns.file()), &TunOpts::new("tap9", TunMode::Tap)).expect("create tap");
        ns.ok("ip link set tap9 up");
        let sent = ns.run(|| {
            let f = open_tun().expect("open");
            set_iff(
                &f,
                "tap9",
                (libc::IFF_TAP | libc::IFF_NO_PI) as libc::c_short,
            )
            .expect("attach");
            // A broadcast ARP request frame, 42 bytes.
            let mut frame = vec![0xffu8; 6];
            frame.extend([0x02, 0, 0, 0, 0, 1, 0x08, 0x06]);
            frame.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1]);
            frame.extend([0; 6]);
            frame.extend([10, 0, 0, 2]);
            use std::io::Write;
            (&f).write(&frame).expect("write frame")
        });
        assert_eq!(sent, 42);
        let j = ns.json("ip -j -s link show dev tap9");
        assert_eq!(j[0]["stats64"]["rx"]["packets"], 1, "{j}");
    }
}
