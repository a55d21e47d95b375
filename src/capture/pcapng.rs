//! pcapng (several interfaces in one file): a Section Header Block, one
//! Interface Description Block per interface (its name "NS:IF" in if_name,
//! nanosecond resolution in if_tsresol), then an Enhanced Packet Block per
//! packet naming its interface and its direction. Every block is padded to
//! 4 bytes and carries its length at both ends.

use std::io::{self, Write};

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
const OPT_END: u16 = 0;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
const EPB_FLAGS: u16 = 2;

pub struct Iface {
    pub name: String,
    pub linktype: u16,
}

pub struct PcapngWriter<W: Write> {
    out: W,
    snaplen: u32,
}

fn opt(body: &mut Vec<u8>, code: u16, val: &[u8]) {
    body.extend_from_slice(&code.to_ne_bytes());
    body.extend_from_slice(&(val.len() as u16).to_ne_bytes());
    body.extend_from_slice(val);
    pad(body);
}

fn pad(b: &mut Vec<u8>) {
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
}

fn block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let total = (12 + body.len()) as u32;
    let mut b = Vec::with_capacity(total as usize);
    b.extend_from_slice(&kind.to_ne_bytes());
    b.extend_from_slice(&total.to_ne_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&total.to_ne_bytes());
    out.write_all(&b)
}

impl<W: Write> PcapngWriter<W> {
    pub fn new(mut out: W, ifaces: &[Iface], snaplen: u32) -> io::Result<Self> {
        let mut shb = Vec::new();
        shb.extend_from_slice(&BYTE_ORDER_MAGIC.to_ne_bytes());
        shb.extend_from_slice(&1u16.to_ne_bytes());
        shb.extend_from_slice(&0u16.to_ne_bytes());
        // Section length unknown: the file is written as a stream.
        shb.extend_from_slice(&(-1i64).to_ne_bytes());
        let app = format!("netplumb {}", env!("CARGO_PKG_VERSION"));
        opt(&mut shb, SHB_USERAPPL, app.as_bytes());
        opt(&mut shb, OPT_END, &[]);
        block(&mut out, SHB, &shb)?;
        for i in ifaces {
            let mut idb = Vec::new();
            idb.extend_from_slice(&i.linktype.to_ne_bytes());
            idb.extend_from_slice(&0u16.to_ne_bytes());
            idb.extend_from_slice(&snaplen.to_ne_bytes());
            opt(&mut idb, IF_NAME, i.name.as_bytes());
            opt(&mut idb, IF_TSRESOL, &[9]);
            opt(&mut idb, OPT_END, &[]);
            block(&mut out, IDB, &idb)?;
        }
        Ok(Self { out, snaplen })
    }

    /// A packet seen on interface `iface` (its index in `new`'s list).
    pub fn packet(
        &mut self,
        iface: u32,
        ts_ns: u64,
        data: &[u8],
        orig_len: u32,
        outgoing: bool,
    ) -> io::Result<()> {
        let data = &data[..data.len().min(self.snaplen as usize)];
        let mut b = Vec::with_capacity(32 + data.len());
        b.extend_from_slice(&iface.to_ne_bytes());
        b.extend_from_slice(&((ts_ns >> 32) as u32).to_ne_bytes());
        b.extend_from_slice(&(ts_ns as u32).to_ne_bytes());
        b.extend_from_slice(&(data.len() as u32).to_ne_bytes());
        b.extend_from_slice(&orig_len.to_ne_bytes());
        b.extend_from_slice(data);
        pad(&mut b);
        // Direction in the low two bits: 01 inbound, 10 outbound.
        let flags: u32 = if outgoing { 2 } else { 1 };
        opt(&mut b, EPB_FLAGS, &flags.to_ne_bytes());
        opt(&mut b, OPT_END, &[]);
        block(&mut self.out, EPB, &b)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32at(b: &[u8], i: usize) -> u32 {
        u32::from_ne_bytes(b[i..i + 4].try_into().unwrap())
    }

    /// Walk the blocks by their lengths: every length is a multiple of 4
    /// and repeated at the block's end.
    fn blocks(b: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let len = u32at(b, i + 4) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(u32at(b, i + len - 4) as usize, len);
            out.push((u32at(b, i), &b[i + 8..i + len - 4]));
            i += len;
        }
        out
    }

    #[test]
    fn one_idb_per_interface_and_epbs_name_theirs() {
        let ifaces = [
            Iface {
                name: "a:eth0".into(),
                linktype: 1,
            },
            Iface {
                name: "host:br0".into(),
                linktype: 1,
            },
        ];
        let mut w = PcapngWriter::new(Vec::new(), &ifaces, 262_144).unwrap();
        w.packet(1, 0x1_0000_0002, &[7; 61], 61, true).unwrap();
        let b = w.out;
        let bl = blocks(&b);
        let kinds: Vec<u32> = bl.iter().map(|(k, _)| *k).collect();
        assert_eq!(kinds, [SHB, IDB, IDB, EPB]);
        // IDB options start after linktype, reserved, snaplen.
        let idb = bl[2].1;
        assert_eq!(u16::from_ne_bytes([idb[8], idb[9]]), IF_NAME);
        assert_eq!(u16::from_ne_bytes([idb[10], idb[11]]), 8);
        assert_eq!(&idb[12..20], b"host:br0");
        let epb = bl[3].1;
        assert_eq!(u32at(epb, 0), 1);
        assert_eq!(u32at(epb, 4), 1);
        assert_eq!(u32at(epb, 8), 2);
        assert_eq!(u32at(epb, 12), 61);
        // 61 bytes padded to 64, then the flags option: outbound.
        assert_eq!(u16::from_ne_bytes([epb[84], epb[85]]), EPB_FLAGS);
        assert_eq!(u32at(epb, 88), 2);
    }
}
