//! Prints the rendered script for a sample table, applies it in the current
//! netns (run under `unshare --net`), and prints what `table_summary` reads back.
use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable, NftSocket, render};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let m = DnatMapping {
        proto: L4Proto::Tcp,
        daddr: None,
        iif: None,
        ports: (80, 80),
        to_addr: "172.17.0.3".parse()?,
        to_port: None,
        tag: 0,
    };
    let t = NatTable {
        name: "lab".into(),
        rules: vec![
            NatRule::Masquerade {
                src: "172.18.0.0/16".parse()?,
                oif: None,
                tag: 1,
            },
            NatRule::Dnat(DnatMapping {
                ports: (10050, 10050),
                tag: 2,
                ..m.clone()
            }),
            NatRule::Dnat(DnatMapping {
                daddr: Some("10.18.103.2".parse()?),
                proto: L4Proto::Udp,
                tag: 3,
                ..m.clone()
            }),
            NatRule::Dnat(DnatMapping {
                ports: (30000, 30100),
                to_addr: "172.17.0.9".parse()?,
                tag: 4,
                ..m.clone()
            }),
        ],
        userdata: b"hash".to_vec(),
        ..Default::default()
    };
    print!("{}", render(&t));
    let mut s = NftSocket::open()?;
    s.replace_table(&t)?;
    println!("{:#?}", s.table_summary("lab")?);
    Ok(())
}
