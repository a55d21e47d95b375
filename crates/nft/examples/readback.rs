//! Prints every table of the current network namespace read back as typed
//! rules, plus what could not be expressed (run under `unshare --net` after
//! making some tables with nft or iptables-nft).
use netplumb_nft::NftSocket;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut s = NftSocket::open()?;
    for t in s.list_tables()? {
        println!(
            "== {} {} (handle {}, marker {:?})",
            t.family,
            t.name,
            t.handle,
            t.marker()
        );
        if let Some(rb) = s.read_table_in(t.family, &t.name)? {
            for r in &rb.table.rules {
                println!("  rule: {r:?}");
            }
            for u in &rb.unrecognized {
                println!("  not expressible: {u}");
            }
        }
    }
    Ok(())
}
