//! 10,000 deny rules of one shape (ip saddr . tcp dport) and 10,000 DNAT
//! mappings: replace_table and read_table times, and `nft -f` of the same
//! filter rules rendered. Run inside a private netns: bench/nft/run.sh filter.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use netplumb_nft::{
    DnatMapping, Endpoint, FilterMatch, FilterProto, FilterRule, L4Proto, NatRule, NatTable,
    NftSocket, render,
};

fn table(n: usize) -> NatTable {
    let filter = (0..n)
        .map(|j| {
            FilterRule::Deny(FilterMatch {
                from: Some(Endpoint::Net(
                    format!("10.{}.{}.0/24", j / 250, j % 250)
                        .parse()
                        .expect("net"),
                )),
                to: None,
                proto: Some(FilterProto::Tcp),
                ports: Some((22, 22)),
                tag: j,
            })
        })
        .collect();
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
                tag: n + j,
            })
        })
        .collect();
    NatTable {
        name: "bench".into(),
        rules,
        filter,
        ..Default::default()
    }
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).map_or(Ok(10_000), |s| s.parse())?;
    let reps: usize = args.get(2).map_or(Ok(7), |s| s.parse())?;
    let t = table(n);
    let want = t.normalized();
    let path = std::env::temp_dir().join(format!("filter_bench_{}.nft", std::process::id()));
    std::fs::File::create(&path)?.write_all(render(&t).as_bytes())?;
    let mut sock = NftSocket::open()?;
    sock.replace_table(&t)?;
    let (mut replace, mut read, mut nft) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        let t0 = Instant::now();
        sock.replace_table(&t)?;
        replace.push(t0.elapsed());
        let t0 = Instant::now();
        let rb = sock.read_table("bench")?.ok_or("table vanished")?;
        read.push(t0.elapsed());
        if rb.table != want || !rb.unrecognized.is_empty() {
            return Err("read back differs".into());
        }
        let t0 = Instant::now();
        let st = Command::new("nft").arg("-f").arg(&path).status()?;
        nft.push(t0.elapsed());
        if !st.success() {
            return Err("nft -f failed".into());
        }
    }
    std::fs::remove_file(&path)?;
    let sum = sock.table_summary("bench")?.ok_or("table vanished")?;
    sock.delete_table("bench")?;
    println!(
        "{n} deny rules + {n} mappings -> {} sets/maps, {} rules",
        sum.maps.len(),
        sum.rules().len()
    );
    println!(
        "median ms: replace_table {:.1}, read_table {:.1}, nft -f {:.1}",
        median(replace),
        median(read),
        median(nft)
    );
    Ok(())
}
