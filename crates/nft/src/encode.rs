//! A tiny netlink TLV writer. Length overflows are recorded, never panicked on:
//! a nested attribute's length field is a u16, so an oversized nest would
//! silently wrap and the kernel would parse garbage.

use crate::sys::*;

pub const NLA_MAX: usize = u16::MAX as usize;

#[derive(Default)]
pub struct Buf {
    pub data: Vec<u8>,
    overflow: Option<String>,
}

#[inline]
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Buf {
    pub fn with_capacity(n: usize) -> Self {
        Buf {
            data: Vec::with_capacity(n),
            overflow: None,
        }
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// First size overflow seen, if any; must be checked before sending.
    pub fn overflow(&self) -> Option<&str> {
        self.overflow.as_deref()
    }

    fn pad(&mut self) {
        let n = align4(self.data.len());
        self.data.resize(n, 0);
    }

    /// nlmsghdr + nfgenmsg; returns the message start for `end_msg`.
    pub fn begin_msg(&mut self, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
        let start = self.data.len();
        self.data.extend_from_slice(&0u32.to_ne_bytes());
        self.data.extend_from_slice(&ty.to_ne_bytes());
        self.data.extend_from_slice(&flags.to_ne_bytes());
        self.data.extend_from_slice(&seq.to_ne_bytes());
        self.data.extend_from_slice(&0u32.to_ne_bytes());
        self.data.push(family);
        self.data.push(0); // NFNETLINK_V0
        self.data.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    pub fn end_msg(&mut self, start: usize) {
        self.pad();
        let len = self.data.len() - start;
        match u32::try_from(len) {
            Ok(l) => self.data[start..start + 4].copy_from_slice(&l.to_ne_bytes()),
            Err(_) => self.note_overflow(format!("netlink message of {len} bytes")),
        }
    }

    fn note_overflow(&mut self, what: String) {
        if self.overflow.is_none() {
            self.overflow = Some(what);
        }
    }

    pub fn attr(&mut self, ty: u16, payload: &[u8]) {
        let len = 4 + payload.len();
        if len > NLA_MAX {
            self.note_overflow(format!("attribute {ty} of {len} bytes"));
            return;
        }
        self.data.extend_from_slice(&(len as u16).to_ne_bytes());
        self.data.extend_from_slice(&ty.to_ne_bytes());
        self.data.extend_from_slice(payload);
        self.pad();
    }

    pub fn str(&mut self, ty: u16, s: &str) {
        let len = 4 + s.len() + 1;
        if len > NLA_MAX {
            self.note_overflow(format!("string attribute {ty} of {len} bytes"));
            return;
        }
        self.data.extend_from_slice(&(len as u16).to_ne_bytes());
        self.data.extend_from_slice(&ty.to_ne_bytes());
        self.data.extend_from_slice(s.as_bytes());
        self.data.push(0);
        self.pad();
    }

    pub fn u32be(&mut self, ty: u16, v: u32) {
        self.attr(ty, &v.to_be_bytes());
    }

    pub fn nest(&mut self, ty: u16) -> usize {
        let start = self.data.len();
        self.data.extend_from_slice(&0u16.to_ne_bytes());
        self.data
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    pub fn end_nest(&mut self, start: usize) {
        let len = self.data.len() - start;
        if len > NLA_MAX {
            self.note_overflow(format!("nested attribute of {len} bytes"));
            return;
        }
        self.data[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
    }

    /// A nested attribute whose contents are already encoded.
    pub fn nested_raw(&mut self, ty: u16, inner: &[u8]) {
        let n = self.nest(ty);
        self.data.extend_from_slice(inner);
        self.pad();
        self.end_nest(n);
    }

    /// NFTA_DATA_VALUE wrapped in `ty`, the kernel's struct nft_data shape.
    pub fn data_value(&mut self, ty: u16, value: &[u8]) {
        let n = self.nest(ty);
        self.attr(NFTA_DATA_VALUE, value);
        self.end_nest(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_attribute_is_recorded_not_panicked() {
        let mut b = Buf::default();
        let m = b.begin_msg(1, 0, 1, 0, 0);
        let n = b.nest(3);
        for _ in 0..20_000 {
            b.attr(1, &[0u8; 4]);
        }
        b.end_nest(n);
        b.end_msg(m);
        assert!(b.overflow().is_some());
        let mut b = Buf::default();
        b.attr(1, &vec![0u8; 70_000]);
        assert!(b.overflow().is_some());
    }

    #[test]
    fn layout() {
        let mut b = Buf::default();
        let m = b.begin_msg(0x0a00, NLM_F_REQUEST, 7, NFPROTO_INET, 0);
        b.str(NFTA_TABLE_NAME, "np");
        b.end_msg(m);
        assert_eq!(b.len(), 20 + 8);
        assert_eq!(&b.data[0..4], &28u32.to_ne_bytes());
        assert_eq!(&b.data[20..27], &[7, 0, 1, 0, b'n', b'p', 0]);
    }
}
