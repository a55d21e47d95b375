//! 10,000 DNAT mappings (tcp 20000+j -> 172.18.x.y:80): replace_table over
//! netlink vs `nft -f` of the rendered equivalent, same table, same run.
//! Run inside a private netns: bench/nft/run.sh.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use netplumb_nft::{DnatMapping, L4Proto, NatRule, NatTable, NftSocket, render};

fn table(n: usize) -> NatTable {
    let rules = (0..n)
        .map(|j| {
            NatRule::Dnat(DnatMapping {
                proto: L4Proto::Tcp,
                daddr: None,
                iif: None,
                ports: (20000 + j as u16, 20000 + j as u16),
                to_addr: format!("172.18.{}.{}", j / 250, j % 250 + 1)
                    .parse()
                    .expect("addr"),
                to_port: Some(80),
                tag: j,
            })
        })
        .collect();
    NatTable {
        name: "bench".into(),
        rules,
        userdata: b"bench".to_vec(),
        ..Default::default()
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let reps: usize = args.get(2).map_or(Ok(7), |s| s.parse())?;
    let t = table(n);
    let script = render(&t);
    let path = std::env::temp_dir().join(format!("dnat_bench_{}.nft", std::process::id()));
    std::fs::File::create(&path)?.write_all(script.as_bytes())?;
    let mut sock = NftSocket::open()?;
    sock.replace_table(&t)?; // warm-up: both measurements replace an existing table
    let (mut native, mut nft) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        // includes building the batch from the NatTable, like a real `up`
        let t0 = Instant::now();
        sock.replace_table(&t)?;
        native.push(t0.elapsed());
        let t0 = Instant::now();
        let st = Command::new("nft").arg("-f").arg(&path).status()?;
        nft.push(t0.elapsed());
        if !st.success() {
            return Err("nft -f failed".into());
        }
    }
    let sum = sock.table_summary("bench")?.ok_or("table vanished")?;
    let elems: usize = sum.maps.iter().map(|m| m.len()).sum();
    std::fs::remove_file(&path)?;
    sock.delete_table("bench")?;
    let fmt = |v: &[Duration]| {
        v.iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "{n} mappings -> {} map(s), {elems} elements, {} rules",
        sum.maps.len(),
        sum.rules().len()
    );
    println!("replace_table (netlink) ms: {}", fmt(&native));
    println!("nft -f (same map)       ms: {}", fmt(&nft));
    let (a, b) = (median(native), median(nft));
    println!(
        "median: netlink {:.1} ms, nft -f {:.1} ms, nft/netlink = {:.1}x",
        ms(a),
        ms(b),
        b.as_secs_f64() / a.as_secs_f64()
    );
    Ok(())
}
