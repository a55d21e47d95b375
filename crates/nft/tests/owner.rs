//! Table flags owner and persist (for a future `netplumb watch`): what a
//! second process can and cannot do. Each test in its own netns.

mod common;

use common::*;
use netplumb_nft::{NatTable, NftError, NftSocket, TableFlags};

fn owned(persist: bool) -> NatTable {
    NatTable {
        name: "np".into(),
        rules: vec![dnat(1, 8080, "172.17.0.3", Some(80))],
        userdata: b"netplumb:t".to_vec(),
        flags: TableFlags {
            owner: true,
            persist,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    let mut it = r
        .trim()
        .split(['.', '-'])
        .map(|x| x.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}

/// The kernel releases an owned table when the owner's socket is closed for
/// good; a child forked meanwhile by a parallel test holds the descriptor
/// until it execs (CLOEXEC), so allow it a moment.
fn released(s: &mut NftSocket, want: impl Fn(Option<&netplumb_nft::TableInfo>) -> bool) -> bool {
    for _ in 0..100 {
        if want(s.table_info("np").expect("info").as_ref()) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

fn eperm(r: Result<impl std::fmt::Debug, NftError>) {
    match r {
        Err(NftError::Kernel { errno, .. }) => assert_eq!(errno, libc::EPERM),
        other => panic!("expected EPERM, got {other:?}"),
    }
}

#[test]
fn persist_support_is_detected_without_leaving_anything() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        assert_eq!(s.supports_persist().expect("probe"), kernel_at_least(6, 9));
        assert_eq!(ns.ruleset_text(), "");
    });
}

#[test]
fn an_owned_table_refuses_everyone_else_and_dies_with_its_socket() {
    in_netns(|ns| {
        let mut a = NftSocket::open().expect("open a");
        let h = a.create_table(&owned(false)).expect("create");
        let mut b = NftSocket::open().expect("open b");
        let info = b.table_info("np").expect("info").expect("exists");
        assert!(info.flags.owner && !info.flags.persist, "{info:?}");
        assert!(info.owner.is_some());
        eperm(b.delete_table("np"));
        eperm(b.replace_table(&owned(false)));
        eperm(b.replace_table_handle(&owned(false), h));
        // nft is refused too, and `flush ruleset` passes it by
        let (ok, _, err) = ns.nft(&["delete", "table", "inet", "np"], None);
        assert!(!ok && err.contains("Operation not permitted"), "{err}");
        let (ok, _, err) = ns.nft(&["flush", "ruleset"], None);
        assert!(ok, "{err}");
        assert!(ns.ruleset_text().contains("table inet np"));
        // the owner itself may replace it (the new table is owned by it too)
        let h2 = a
            .replace_table_handle(&owned(false), h)
            .expect("owner replaces");
        assert_ne!(h, h2);
        drop(a);
        assert!(
            released(&mut b, |i| i.is_none()),
            "the owned table outlived its owner"
        );
    });
}

#[test]
fn a_persistent_table_outlives_its_owner_and_can_be_claimed() {
    if !kernel_at_least(6, 9) {
        return;
    }
    in_netns(|ns| {
        let mut a = NftSocket::open().expect("open a");
        let h = a.create_table(&owned(true)).expect("create");
        drop(a);
        let mut b = NftSocket::open().expect("open b");
        assert!(
            released(&mut b, |i| i.is_some_and(|i| !i.flags.owner)),
            "the persistent table lost or kept its owner"
        );
        let info = b.table_info("np").expect("info").expect("still there");
        assert_eq!(info.handle, h);
        assert!(info.flags.persist && !info.flags.owner, "{info:?}");
        assert!(ns.ruleset_text().contains("8080 : 172.17.0.3 . 80"));
        // an orphan can be claimed in place: same handle, same contents
        b.claim_table("np", h).expect("claim");
        let info = b.table_info("np").expect("info").expect("there");
        assert_eq!(info.handle, h);
        assert!(info.flags.owner && info.flags.persist, "{info:?}");
        let mut c = NftSocket::open().expect("open c");
        eperm(c.delete_table("np"));
        eperm(c.claim_table("np", h));
        drop(b);
        assert!(released(&mut c, |i| i.is_some_and(|i| !i.flags.owner)));
        // or replaced by whoever comes next
        let h3 = c
            .replace_table_handle(&owned(true), h)
            .expect("replace orphan");
        let info = c.table_info("np").expect("info").expect("there");
        assert!(info.handle == h3 && info.flags.owner, "{info:?}");
    });
}
