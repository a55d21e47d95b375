//! VNIs for the tunnels of a script: a deterministic hash of the topology
//! and the tunnel's identity, so every site computes the same VNI without
//! talking to the others, and an edit elsewhere in the script keeps it.

/// The smallest VNI netplumb picks: below it are the small numbers people
/// give by hand (`#{ vni: 100 }`), which an allocated one never takes.
pub const VXLAN_VNI_MIN: u32 = 0x1_0000;
pub const VXLAN_VNI_MAX: u32 = 0xFF_FFFF;

/// FNV-1a, 64 bits: stable across builds and machines (std's hasher is not).
fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The VNI of a tunnel of `topology` whose ends are `ends` (each "site
/// netns name"; sorted here, so the order the script names them in does
/// not matter).
pub fn vni_for(topology: &str, ends: &[String]) -> u32 {
    let mut ends: Vec<&str> = ends.iter().map(String::as_str).collect();
    ends.sort_unstable();
    let mut key = topology.as_bytes().to_vec();
    for e in ends {
        key.push(0);
        key.extend_from_slice(e.as_bytes());
    }
    let span = u64::from(VXLAN_VNI_MAX - VXLAN_VNI_MIN + 1);
    VXLAN_VNI_MIN + (fnv1a(key) % span) as u32
}
