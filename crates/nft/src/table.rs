//! Tables by identity: their handle, flags and marker, and replacing or
//! deleting exactly the table the caller made — never a namesake.

use serde::{Deserialize, Serialize};

use crate::batch::{Batch, Previous};
use crate::error::{Mismatch, NftError};
use crate::model::NatTable;
use crate::parse::{attr, attr_be32, attr_be64, attr_str};
use crate::socket::{Msg, NftSocket, unwrap_userdata};
use crate::sys::*;
use crate::validate::check_object_name;

/// An nftables address family (`nft list tables` prints it before the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// `inet`: IPv4 and IPv6 together (netplumb's own tables).
    Inet,
    /// `ip`: IPv4 only (iptables-nft's tables).
    Ip,
    /// `ip6`: IPv6 only (ip6tables-nft's tables).
    Ip6,
    /// `arp`.
    Arp,
    /// `bridge`.
    Bridge,
    /// `netdev`: per-device ingress/egress.
    Netdev,
}

impl Family {
    /// The family as nft names it (`"inet"`, `"ip"` …).
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Arp => "arp",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }

    pub(crate) fn nfproto(self) -> u8 {
        match self {
            Family::Inet => NFPROTO_INET,
            Family::Ip => NFPROTO_IPV4,
            Family::Ip6 => NFPROTO_IPV6,
            Family::Arp => NFPROTO_ARP,
            Family::Bridge => NFPROTO_BRIDGE,
            Family::Netdev => NFPROTO_NETDEV,
        }
    }

    pub(crate) fn from_nfproto(n: u8) -> Option<Family> {
        [
            Family::Inet,
            Family::Ip,
            Family::Ip6,
            Family::Arp,
            Family::Bridge,
            Family::Netdev,
        ]
        .into_iter()
        .find(|f| f.nfproto() == n)
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A table's flags (`NFT_TABLE_F_*`).
///
/// `owner` ties the table to the socket that created it: while that socket
/// is open, every other socket's change or delete is refused with EPERM, and
/// `nft flush ruleset` leaves it alone; when the socket closes, the kernel
/// deletes the table — unless `persist` is also set (kernel ≥ 6.9), in which
/// case the table stays, without an owner, until a new socket claims it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
pub struct TableFlags {
    /// `NFT_TABLE_F_DORMANT`: the table's base chains are not hooked.
    pub dormant: bool,
    /// `NFT_TABLE_F_OWNER`: only the creating socket may change the table.
    pub owner: bool,
    /// `NFT_TABLE_F_PERSIST`: the owned table outlives its owner's socket.
    pub persist: bool,
}

impl TableFlags {
    /// The kernel's bit mask.
    pub fn bits(self) -> u32 {
        (if self.dormant { NFT_TABLE_F_DORMANT } else { 0 })
            | (if self.owner { NFT_TABLE_F_OWNER } else { 0 })
            | (if self.persist { NFT_TABLE_F_PERSIST } else { 0 })
    }

    /// From the kernel's bit mask (unknown bits are dropped).
    pub fn from_bits(b: u32) -> Self {
        TableFlags {
            dormant: b & NFT_TABLE_F_DORMANT != 0,
            owner: b & NFT_TABLE_F_OWNER != 0,
            persist: b & NFT_TABLE_F_PERSIST != 0,
        }
    }
}

/// What the kernel says about one table: enough to tell whose it is.
///
/// A table is netplumb's when [`TableInfo::marker`] returns the marker the
/// caller stored in [`NatTable::userdata`]. Any other table with the same
/// name — made by `nft`, by iptables, or by this crate for someone else — is
/// foreign and must be left alone. The `handle` is the table's identity: it
/// is never reused within a network namespace, so a record of it tells the
/// caller's table apart from a namesake made later.
///
/// ```no_run
/// use netplumb_nft::NftSocket;
/// let mut s = NftSocket::open()?;
/// if let Some(info) = s.table_info("netplumb-lab")? {
///     let ours = info.marker().is_some_and(|m| m.starts_with(b"netplumb:lab:"));
///     if ours {
///         s.delete_table_handle("netplumb-lab", info.handle)?;
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableInfo {
    /// The table's family.
    pub family: Family,
    /// The table's name.
    pub name: String,
    /// The kernel's handle: unique in the namespace, never reused.
    pub handle: u64,
    /// The table's flags.
    pub flags: TableFlags,
    /// The netlink port id of the owning socket, when `flags.owner`.
    pub owner: Option<u32>,
    /// The number of chains, sets and other objects in the table.
    pub uses: u32,
    /// The raw userdata as the kernel stores it (nftnl TLVs).
    pub raw_userdata: Vec<u8>,
}

impl TableInfo {
    /// The caller's userdata when the table was written by this crate (the
    /// bytes given as [`NatTable::userdata`]); `None` for a table written by
    /// anything else. netplumb stores its marker here.
    pub fn marker(&self) -> Option<&[u8]> {
        unwrap_userdata(&self.raw_userdata)
    }

    pub(crate) fn from_msg(m: &Msg) -> Option<TableInfo> {
        let a = &m.attrs;
        Some(TableInfo {
            family: Family::from_nfproto(m.family)?,
            name: attr_str(a, NFTA_TABLE_NAME)?,
            handle: attr_be64(a, NFTA_TABLE_HANDLE)?,
            flags: TableFlags::from_bits(attr_be32(a, NFTA_TABLE_FLAGS).unwrap_or(0)),
            owner: attr_be32(a, NFTA_TABLE_OWNER),
            uses: attr_be32(a, NFTA_TABLE_USE).unwrap_or(0),
            raw_userdata: attr(a, NFTA_TABLE_USERDATA).unwrap_or_default().to_vec(),
        })
    }
}

impl NftSocket {
    /// Handle, flags and userdata of table `inet name`; `None` when there is none.
    pub fn table_info(&mut self, name: &str) -> Result<Option<TableInfo>, NftError> {
        self.table_info_in(Family::Inet, name)
    }

    /// [`NftSocket::table_info`] for a table of any family.
    pub fn table_info_in(
        &mut self,
        family: Family,
        name: &str,
    ) -> Result<Option<TableInfo>, NftError> {
        check_object_name("table", name)?;
        Ok(self
            .get_table(family.nfproto(), name)?
            .as_ref()
            .and_then(TableInfo::from_msg))
    }

    /// Every table in the namespace, of every family, in kernel order.
    pub fn list_tables(&mut self) -> Result<Vec<TableInfo>, NftError> {
        let msgs = self.dump(NFT_MSG_GETTABLE, 0, &[], "list tables")?;
        Ok(msgs.iter().filter_map(TableInfo::from_msg).collect())
    }

    /// Validates `t` and creates table `inet t.name`; refused (and nothing
    /// changed) when a table of that name exists, whoever made it. Returns the
    /// new table's handle.
    pub fn create_table(&mut self, t: &NatTable) -> Result<u64, NftError> {
        t.validate()?;
        self.replace(t, Previous::Absent)
            .map_err(|e| identity_error(e, &t.name, None))
    }

    /// Validates `t` and replaces the table whose handle is `previous` with
    /// it, in one transaction. Refused, with nothing changed, unless table
    /// `inet t.name` is exactly that table: if it was deleted, or deleted and
    /// made again by someone else, since the caller recorded the handle, the
    /// whole transaction fails instead of touching theirs. Returns the new
    /// table's handle.
    pub fn replace_table_handle(&mut self, t: &NatTable, previous: u64) -> Result<u64, NftError> {
        t.validate()?;
        // The kernel finds a table by handle alone; checking that the handle
        // carries this name first means a wrong handle (a damaged record) can
        // never delete another table. Handles are never reused, so the check
        // cannot go stale: if the table goes meanwhile the delete fails.
        self.expect_handle(&t.name, previous)?;
        self.replace(t, Previous::Handle(previous))
            .map_err(|e| identity_error(e, &t.name, Some(previous)))
    }

    /// [`NftSocket::replace_table_handle`] without reading the table first:
    /// lets tests show that the kernel itself refuses a stale handle.
    #[doc(hidden)]
    pub fn replace_table_handle_unchecked(
        &mut self,
        t: &NatTable,
        previous: u64,
    ) -> Result<u64, NftError> {
        self.replace(t, Previous::Handle(previous))
            .map_err(|e| identity_error(e, &t.name, Some(previous)))
    }

    /// Deletes table `inet name` if, and only if, it is the table with
    /// `handle`. `Ok(false)` when no table has that name (or it went
    /// meanwhile); an error, with nothing deleted, when another table has it.
    pub fn delete_table_handle(&mut self, name: &str, handle: u64) -> Result<bool, NftError> {
        match self.expect_handle(name, handle) {
            Err(NftError::Identity {
                mismatch: Mismatch::Gone { .. },
                ..
            }) => return Ok(false),
            r => r?,
        }
        let mut b = Batch::new(self.seq, 256);
        b.del_table_handle(handle);
        let b = b.finish();
        self.seq = b.next_seq();
        match self.run_batch(b) {
            Ok(_) => Ok(true),
            Err(NftError::Kernel {
                errno: libc::ENOENT,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether this kernel keeps an owned table after its owner's socket
    /// closes (`NFT_TABLE_F_PERSIST`, Linux ≥ 6.9). Asks the kernel with a
    /// transaction that always fails, so nothing is ever created.
    pub fn supports_persist(&mut self) -> Result<bool, NftError> {
        let probe = format!("netplumb-probe-{}", std::process::id());
        let mut b = Batch::new(self.seq, 512);
        b.create_table(&probe, NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST, &[]);
        let first = b.create_seq();
        // deleting a handle that cannot exist aborts the transaction
        b.del_table_handle(u64::MAX);
        let b = b.finish();
        self.seq = b.next_seq();
        let (_, errors) = self.run_batch_raw(&b)?;
        Ok(!errors
            .iter()
            .any(|e| Some(e.seq) == first && e.errno == libc::EOPNOTSUPP))
    }

    /// Makes this socket the owner of table `inet name` (which must be the
    /// table with `handle`), keeping its contents: for a persistent table
    /// whose owner went away. Refused with EPERM while another socket owns it.
    pub fn claim_table(&mut self, name: &str, handle: u64) -> Result<(), NftError> {
        self.expect_handle(name, handle)?;
        let mut b = Batch::new(self.seq, 256);
        b.update_table_flags(name, NFT_TABLE_F_OWNER | NFT_TABLE_F_PERSIST);
        let b = b.finish();
        self.seq = b.next_seq();
        self.run_batch(b).map(|_| ())
    }

    fn expect_handle(&mut self, name: &str, handle: u64) -> Result<(), NftError> {
        let mismatch = match self.table_info(name)? {
            Some(i) if i.handle == handle => return Ok(()),
            Some(i) => Mismatch::Other {
                expected: handle,
                present: i.handle,
            },
            None => Mismatch::Gone { expected: handle },
        };
        Err(NftError::Identity {
            table: name.to_string(),
            mismatch,
        })
    }
}

/// Turns the kernel's answer to a refused identity check into words.
fn identity_error(e: NftError, name: &str, expected: Option<u64>) -> NftError {
    let mismatch = match (&e, expected) {
        (NftError::Kernel { errno, op, .. }, _)
            if *errno == libc::EEXIST && op.starts_with("create table") =>
        {
            Mismatch::Exists
        }
        (NftError::Kernel { errno, op, .. }, Some(h))
            if *errno == libc::ENOENT && op.starts_with("delete table inet handle") =>
        {
            Mismatch::Gone { expected: h }
        }
        _ => return e,
    };
    NftError::Identity {
        table: name.to_string(),
        mismatch,
    }
}
