//! Random loss (issue 16 item 4): `numgen random mod 100 < N drop` at one
//! interface's ingress, in the topology's inet table.

mod common;

use common::net::*;
use common::*;
use netplumb_nft::{NatTable, NftError, NftSocket, RandomLoss, render};

fn lossy(iface: &str, percent: u8) -> NatTable {
    NatTable {
        name: "np".into(),
        rules: vec![dnat(1, 8080, "172.17.0.3", Some(80))],
        loss: vec![RandomLoss {
            iface: iface.into(),
            percent,
            tag: 7,
        }],
        ..Default::default()
    }
}

#[test]
fn render_netlink_and_read_back_agree() {
    let t = lossy("lo", 20);
    let t2 = t.clone();
    let (ours, text, rb) = in_netns(move |ns| {
        let mut s = NftSocket::open().expect("open");
        s.replace_table(&t2).expect("replace");
        (
            ns.ruleset_json(),
            ns.ruleset_text(),
            s.read_table("np").expect("read").expect("exists"),
        )
    });
    let script = render(&t);
    let theirs = in_netns(move |ns| {
        let (ok, _, err) = ns.nft(&["-f", "-"], Some(&script));
        assert!(ok, "{err}\n{script}");
        ns.ruleset_json()
    });
    assert_eq!(ours, theirs, "{text}");
    assert!(
        text.contains("type filter hook ingress device \"lo\" priority filter; policy accept;")
            && text.contains("numgen random mod 100 < 20 drop"),
        "{text}"
    );
    assert_eq!(rb.unrecognized, Vec::<String>::new());
    assert_eq!(rb.table, t.normalized());
}

/// Pings lost out of 500 sent 2 ms apart.
fn lost(from: &Ns, to: &str) -> u32 {
    let out = from.ok(&format!("ping -i 0.002 -c 500 -q -W 1 {to} || true"));
    let received: u32 = out
        .split(',')
        .find_map(|p| p.trim().strip_suffix(" received")?.parse().ok())
        .unwrap_or_else(|| panic!("no ping summary in {out}"));
    500 - received
}

#[test]
fn twenty_percent_loss_drops_a_fifth_of_the_pings() {
    let (a, b) = (Ns::new(), Ns::new());
    veth(&a, "a0", &b, "b0");
    a.ok("ip addr add 10.9.0.1/24 dev a0");
    b.ok("ip addr add 10.9.0.2/24 dev b0");
    assert!(
        within(std::time::Duration::from_secs(5), || a
            .sh("ping -c1 -W1 10.9.0.2")
            .0)
        .is_some(),
        "no path"
    );
    let before = lost(&a, "10.9.0.2");
    assert!(before <= 5, "{before} of 500 lost without any loss rule");
    b.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&lossy("b0", 20))
            .expect("replace")
    });
    let n = lost(&a, "10.9.0.2");
    eprintln!("20 % loss: {n} of 500 pings lost");
    assert!((75..=125).contains(&n), "{n} of 500 lost, want 100 ± 25");
    b.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&NatTable {
                name: "np".into(),
                ..Default::default()
            })
            .expect("replace")
    });
    let after = lost(&a, "10.9.0.2");
    assert!(after <= 5, "{after} of 500 lost after the loss rule went");
}

/// Recent kernels (this 6.18 does) keep a device hook by name until the
/// interface appears; older ones refuse the chain with ENOENT, which the
/// error then names by the loss rule's tag.
#[test]
fn loss_on_an_interface_made_later() {
    let (a, b) = (Ns::new(), Ns::new());
    let made = b.with(|| {
        NftSocket::open()
            .expect("open")
            .replace_table(&lossy("b0", 20))
    });
    match made {
        Err(NftError::Kernel { errno, tag, op, .. }) => {
            assert_eq!((errno, tag), (libc::ENOENT, Some(7)), "{op}");
            assert!(op.contains("loss_b0"), "{op}");
            return;
        }
        Err(e) => panic!("{e}"),
        Ok(()) => {}
    }
    veth(&a, "a0", &b, "b0");
    a.ok("ip addr add 10.9.0.1/24 dev a0");
    b.ok("ip addr add 10.9.0.2/24 dev b0");
    assert!(
        within(std::time::Duration::from_secs(5), || a
            .sh("ping -c1 -W1 10.9.0.2")
            .0)
        .is_some(),
        "no path"
    );
    let n = lost(&a, "10.9.0.2");
    eprintln!("loss chain made before its device: {n} of 500 lost");
    assert!((75..=125).contains(&n), "{n} of 500 lost, want 100 ± 25");
}
