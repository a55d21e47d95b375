//! Tables by identity (issue 12): handles, markers, and a replace or delete
//! that never touches someone else's namesake. Each test in its own netns.

mod common;

use common::*;
use netplumb_nft::{Family, Mismatch, NatTable, NftError, NftSocket, TableFlags};

fn table(name: &str, marker: &[u8]) -> NatTable {
    NatTable {
        name: name.into(),
        rules: vec![dnat(1, 8080, "172.17.0.3", Some(80))],
        userdata: marker.to_vec(),
        ..Default::default()
    }
}

#[test]
fn table_info_reads_handle_flags_and_marker() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        assert_eq!(s.table_info("np").expect("info"), None);
        let h = s
            .create_table(&table("np", b"netplumb:lab:1"))
            .expect("create");
        let info = s.table_info("np").expect("info").expect("exists");
        assert_eq!(info.handle, h);
        assert_eq!(info.family, Family::Inet);
        assert_eq!(info.flags, TableFlags::default());
        assert_eq!(info.owner, None);
        assert_eq!(info.marker(), Some(&b"netplumb:lab:1"[..]));
        // nft's own handle for it is the same number
        let (ok, out, err) = ns.nft(&["-a", "list", "table", "inet", "np"], None);
        assert!(ok, "{err}");
        assert!(out.contains(&format!("# handle {h}")), "{out}");
        // a table made by nft, even with a comment, has no marker
        let (ok, _, err) = ns.nft(
            &[
                "add",
                "table",
                "inet",
                "foreign",
                "{ comment \"netplumb:lab:1\"; }",
            ],
            None,
        );
        assert!(ok, "{err}");
        let f = s.table_info("foreign").expect("info").expect("exists");
        assert_eq!(f.marker(), None);
        assert!(!f.raw_userdata.is_empty());
        let (ok, _, err) = ns.nft(&["add", "table", "ip", "nat"], None);
        assert!(ok, "{err}");
        let all: Vec<_> = s
            .list_tables()
            .expect("list")
            .into_iter()
            .map(|t| (t.family, t.name))
            .collect();
        assert_eq!(
            all,
            [
                (Family::Inet, "np".to_string()),
                (Family::Inet, "foreign".into()),
                (Family::Ip, "nat".into())
            ]
        );
    });
}

#[test]
fn create_refuses_a_namesake_and_leaves_it() {
    in_netns(|ns| {
        let (ok, _, err) = ns.nft(
            &["-f", "-"],
            Some("table inet np { chain theirs { type filter hook input priority 0; }; }"),
        );
        assert!(ok, "{err}");
        let mut s = NftSocket::open().expect("open");
        let e = s.create_table(&table("np", b"m")).expect_err("refused");
        assert!(
            matches!(
                e,
                NftError::Identity {
                    mismatch: Mismatch::Exists,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("already exists"), "{e}");
        let text = ns.ruleset_text();
        assert!(
            text.contains("chain theirs") && !text.contains("dnat"),
            "{text}"
        );
    });
}

#[test]
fn replace_by_handle_swaps_atomically_and_returns_the_new_handle() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        let h1 = s.create_table(&table("np", b"v1")).expect("create");
        let mut t2 = table("np", b"v2");
        t2.rules = vec![dnat(1, 9090, "172.17.0.4", None)];
        let h2 = s.replace_table_handle(&t2, h1).expect("replace");
        assert_ne!(h1, h2);
        let info = s.table_info("np").expect("info").expect("exists");
        assert_eq!((info.handle, info.marker()), (h2, Some(&b"v2"[..])));
        let text = ns.ruleset_text();
        assert!(
            text.contains("9090 : 172.17.0.4 . 9090") && !text.contains("8080"),
            "{text}"
        );
        // the old handle is now stale
        let e = s.replace_table_handle(&t2, h1).expect_err("stale");
        assert!(
            matches!(
                e,
                NftError::Identity {
                    mismatch: Mismatch::Other { expected, present },
                    ..
                } if expected == h1 && present == h2
            ),
            "{e:?}"
        );
    });
}

#[test]
fn a_table_swapped_behind_our_back_fails_the_whole_batch() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        let h = s.create_table(&table("np", b"ours")).expect("create");
        // someone deletes ours and makes their own under the name
        let (ok, _, err) = ns.nft(
            &["-f", "-"],
            Some(
                "delete table inet np\n\
                 table inet np { chain theirs { type filter hook input priority 0; }; }",
            ),
        );
        assert!(ok, "{err}");
        let before = ns.ruleset_json();
        // the kernel itself refuses (no read-before-write involved)
        let e = s
            .replace_table_handle_unchecked(&table("np", b"ours2"), h)
            .expect_err("kernel must refuse a stale handle");
        assert!(
            matches!(
                e,
                NftError::Identity {
                    mismatch: Mismatch::Gone { expected },
                    ..
                } if expected == h
            ),
            "{e:?}"
        );
        assert!(e.to_string().contains("nothing was changed"), "{e}");
        assert_eq!(ns.ruleset_json(), before);
        // and the checked variants refuse before sending anything
        assert!(matches!(
            s.replace_table_handle(&table("np", b"x"), h),
            Err(NftError::Identity {
                mismatch: Mismatch::Other { .. },
                ..
            })
        ));
        assert!(matches!(
            s.delete_table_handle("np", h),
            Err(NftError::Identity {
                mismatch: Mismatch::Other { .. },
                ..
            })
        ));
        assert_eq!(ns.ruleset_json(), before);
    });
}

#[test]
fn delete_by_handle_only_deletes_that_table() {
    in_netns(|ns| {
        let mut s = NftSocket::open().expect("open");
        let h = s.create_table(&table("np", b"m")).expect("create");
        let (ok, _, err) = ns.nft(&["add", "table", "inet", "other"], None);
        assert!(ok, "{err}");
        let other = s.table_info("other").expect("info").expect("exists").handle;
        // a record naming np with other's handle (a damaged or planted record)
        assert!(matches!(
            s.delete_table_handle("np", other),
            Err(NftError::Identity { .. })
        ));
        assert!(s.table_info("other").expect("info").is_some());
        assert!(s.delete_table_handle("np", h).expect("delete"));
        assert!(!s.delete_table_handle("np", h).expect("again"));
        let text = ns.ruleset_text();
        assert!(
            text.contains("table inet other") && !text.contains("inet np"),
            "{text}"
        );
    });
}
