//! Classic pcap (one link type, one interface): a 24-byte file header, then
//! a 16-byte record header before each packet. Written in this machine's
//! byte order, which the magic number tells readers.

use std::io::{self, Write};

const MAGIC_MICRO: u32 = 0xa1b2_c3d4;
const MAGIC_NANO: u32 = 0xa1b2_3c4d;

pub struct PcapWriter<W: Write> {
    out: W,
    nano: bool,
    snaplen: u32,
}

impl<W: Write> PcapWriter<W> {
    pub fn new(mut out: W, linktype: u16, snaplen: u32, nano: bool) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&(if nano { MAGIC_NANO } else { MAGIC_MICRO }).to_ne_bytes());
        h.extend_from_slice(&2u16.to_ne_bytes());
        h.extend_from_slice(&4u16.to_ne_bytes());
        h.extend_from_slice(&0i32.to_ne_bytes()); // thiszone: UTC
        h.extend_from_slice(&0u32.to_ne_bytes()); // sigfigs
        h.extend_from_slice(&snaplen.to_ne_bytes());
        h.extend_from_slice(&u32::from(linktype).to_ne_bytes());
        out.write_all(&h)?;
        Ok(Self { out, nano, snaplen })
    }

    pub fn packet(&mut self, ts_ns: u64, data: &[u8], orig_len: u32) -> io::Result<()> {
        let data = &data[..data.len().min(self.snaplen as usize)];
        let secs = (ts_ns / 1_000_000_000) as u32;
        let frac = (ts_ns % 1_000_000_000) as u32;
        let frac = if self.nano { frac } else { frac / 1000 };
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&secs.to_ne_bytes());
        h[4..8].copy_from_slice(&frac.to_ne_bytes());
        h[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
        h[12..16].copy_from_slice(&orig_len.to_ne_bytes());
        self.out.write_all(&h)?;
        self.out.write_all(data)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new(), 1, 262_144, false).unwrap();
        w.packet(1_700_000_000_123_456_789, &[0xaa; 60], 60)
            .unwrap();
        let b = w.out;
        assert_eq!(b.len(), 24 + 16 + 60);
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), MAGIC_MICRO);
        assert_eq!(u32::from_ne_bytes(b[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_ne_bytes(b[24..28].try_into().unwrap()),
            1_700_000_000
        );
        assert_eq!(u32::from_ne_bytes(b[28..32].try_into().unwrap()), 123_456);
    }

    #[test]
    fn nanosecond_magic_keeps_nanoseconds_and_snaplen_cuts() {
        let mut w = PcapWriter::new(Vec::new(), 1, 10, true).unwrap();
        w.packet(5_000_000_007, &[1; 60], 60).unwrap();
        let b = w.out;
        assert_eq!(u32::from_ne_bytes(b[0..4].try_into().unwrap()), MAGIC_NANO);
        assert_eq!(u32::from_ne_bytes(b[28..32].try_into().unwrap()), 7);
        assert_eq!(u32::from_ne_bytes(b[32..36].try_into().unwrap()), 10);
        assert_eq!(u32::from_ne_bytes(b[36..40].try_into().unwrap()), 60);
        assert_eq!(b.len(), 24 + 16 + 10);
    }
}
