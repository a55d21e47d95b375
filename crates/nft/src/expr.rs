//! nf_tables expressions, encoded the way `nft` itself would emit them so
//! `nft list ruleset` reads them back as the natural syntax.

use std::net::IpAddr;

use crate::encode::Buf;
use crate::plan::{MapPlan, SrcKind, SrcPlan};
use crate::sys::*;

/// Port after a v4 address in a concatenation: the next 32-bit register.
const REG_PORT_V4: u32 = NFT_REG32_00 + 1;
/// After a 16-byte v6 address the port lands in REG32_04, dumped as "reg 2".
const REG_PORT_V6: u32 = NFT_REG32_00 + 4;

pub(crate) fn expr(b: &mut Buf, name: &str, body: impl FnOnce(&mut Buf)) {
    let e = b.nest(NFTA_LIST_ELEM);
    b.str(NFTA_EXPR_NAME, name);
    let d = b.nest(NFTA_EXPR_DATA);
    body(b);
    b.end_nest(d);
    b.end_nest(e);
}

pub(crate) fn meta(b: &mut Buf, key: u32) {
    expr(b, "meta", |b| {
        b.u32be(NFTA_META_KEY, key);
        b.u32be(NFTA_META_DREG, NFT_REG_1);
    });
}

pub(crate) fn cmp(b: &mut Buf, op: u32, data: &[u8]) {
    expr(b, "cmp", |b| {
        b.u32be(NFTA_CMP_SREG, NFT_REG_1);
        b.u32be(NFTA_CMP_OP, op);
        b.data_value(NFTA_CMP_DATA, data);
    });
}

pub(crate) fn payload(b: &mut Buf, base: u32, offset: u32, len: u32, dreg: u32) {
    expr(b, "payload", |b| {
        b.u32be(NFTA_PAYLOAD_DREG, dreg);
        b.u32be(NFTA_PAYLOAD_BASE, base);
        b.u32be(NFTA_PAYLOAD_OFFSET, offset);
        b.u32be(NFTA_PAYLOAD_LEN, len);
    });
}

pub(crate) fn bitwise_mask(b: &mut Buf, mask: &[u8]) {
    expr(b, "bitwise", |b| {
        b.u32be(NFTA_BITWISE_SREG, NFT_REG_1);
        b.u32be(NFTA_BITWISE_DREG, NFT_REG_1);
        b.u32be(NFTA_BITWISE_LEN, mask.len() as u32);
        b.data_value(NFTA_BITWISE_MASK, mask);
        b.data_value(NFTA_BITWISE_XOR, &vec![0u8; mask.len()]);
    });
}

pub(crate) fn nfproto(b: &mut Buf, v6: bool) {
    meta(b, NFT_META_NFPROTO);
    cmp(
        b,
        NFT_CMP_EQ,
        &[if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 }],
    );
}

pub(crate) fn ifname_bytes(name: &str) -> [u8; IFNAMSIZ] {
    let mut out = [0u8; IFNAMSIZ];
    let n = name.len().min(IFNAMSIZ - 1);
    out[..n].copy_from_slice(&name.as_bytes()[..n]);
    out
}

pub(crate) fn ifname(b: &mut Buf, key: u32, name: &str) {
    meta(b, key);
    cmp(b, NFT_CMP_EQ, &ifname_bytes(name));
}

pub(crate) fn addr_bytes(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// `ip saddr 10.0.0.0/16`: nft loads only the whole prefix bytes when the
/// prefix is byte aligned, else the full address through a mask.
pub(crate) fn prefix_match(b: &mut Buf, offset: u32, net: &ipnet::IpNet, op: u32) {
    let addr = addr_bytes(&net.network());
    let plen = net.prefix_len() as usize;
    if plen.is_multiple_of(8) {
        let n = plen / 8;
        payload(b, NFT_PAYLOAD_NETWORK_HEADER, offset, n as u32, NFT_REG_1);
        cmp(b, op, &addr[..n]);
    } else {
        payload(
            b,
            NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            addr.len() as u32,
            NFT_REG_1,
        );
        bitwise_mask(b, &addr_bytes(&net.netmask()));
        cmp(b, op, &addr);
    }
}

fn nat(b: &mut Buf, ty: u32, v6: bool, proto_reg: Option<u32>) {
    expr(b, "nat", |b| {
        b.u32be(NFTA_NAT_TYPE, ty);
        b.u32be(
            NFTA_NAT_FAMILY,
            if v6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 } as u32,
        );
        b.u32be(NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
        if let Some(r) = proto_reg {
            b.u32be(NFTA_NAT_REG_PROTO_MIN, r);
        }
    });
}

/// prerouting: `meta nfproto ipv4 [iifname X] meta l4proto tcp dnat ip to [ip daddr .] tcp dport map @m`
/// output: same without iifname; without a daddr key it only applies to
/// traffic for the host's own addresses (`fib daddr type local`), otherwise the
/// host's outgoing connections to any remote port 80 would be hijacked.
pub(crate) fn dnat_rule(b: &mut Buf, m: &MapPlan, set_id: u32, output: bool) {
    nfproto(b, m.v6);
    if let (false, Some(i)) = (output, &m.iif) {
        ifname(b, NFT_META_IIFNAME, i);
    }
    if output && !m.daddr {
        expr(b, "fib", |b| {
            b.u32be(NFTA_FIB_DREG, NFT_REG_1);
            b.u32be(NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
            b.u32be(NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
        });
        cmp(b, NFT_CMP_EQ, &RTN_LOCAL.to_ne_bytes());
    }
    // the kernel does not check the transport protocol for a payload load
    meta(b, NFT_META_L4PROTO);
    cmp(b, NFT_CMP_EQ, &[m.proto.number()]);
    let port_reg = if m.daddr {
        let (off, len) = if m.v6 { (24, 16) } else { (16, 4) };
        payload(b, NFT_PAYLOAD_NETWORK_HEADER, off, len, NFT_REG_1);
        if m.v6 { REG_PORT_V6 } else { REG_PORT_V4 }
    } else {
        NFT_REG_1
    };
    payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, port_reg);
    expr(b, "lookup", |b| {
        b.str(NFTA_LOOKUP_SET, &m.name);
        b.u32be(NFTA_LOOKUP_SREG, NFT_REG_1);
        b.u32be(NFTA_LOOKUP_DREG, NFT_REG_1);
        b.u32be(NFTA_LOOKUP_SET_ID, set_id);
    });
    let proto_reg = m
        .data_port
        .then_some(if m.v6 { REG_PORT_V6 } else { REG_PORT_V4 });
    nat(b, NFT_NAT_DNAT, m.v6, proto_reg);
}

/// `ct status dnat`: the connection's destination was rewritten.
pub(crate) fn ct_status_dnat(b: &mut Buf) {
    expr(b, "ct", |b| {
        b.u32be(NFTA_CT_DREG, NFT_REG_1);
        b.u32be(NFTA_CT_KEY, NFT_CT_STATUS);
    });
    // ct registers hold host-order values
    bitwise_mask(b, &IPS_DST_NAT.to_ne_bytes());
    cmp(b, NFT_CMP_NEQ, &[0; 4]);
}

/// postrouting, by kind:
/// `ip saddr S ip daddr != S [oifname X] masquerade | snat ip to A`,
/// `ip saddr S ip daddr S ct status dnat masquerade` (hairpin),
/// `oifname X ip saddr 127.0.0.0/8 ct status dnat masquerade` (localhost).
pub(crate) fn src_rule(b: &mut Buf, r: &SrcPlan) {
    let v6 = r.src.addr().is_ipv6();
    // nft's order: the family check right before the first address match
    if let (SrcKind::Localhost, Some(o)) = (r.kind, &r.oif) {
        ifname(b, NFT_META_OIFNAME, o);
    }
    nfproto(b, v6);
    let (s, d) = if v6 { (8, 24) } else { (12, 16) };
    prefix_match(b, s, &r.src, NFT_CMP_EQ);
    match r.kind {
        SrcKind::Masquerade | SrcKind::Snat(_) => {
            prefix_match(b, d, &r.src, NFT_CMP_NEQ);
            if let Some(o) = &r.oif {
                ifname(b, NFT_META_OIFNAME, o);
            }
        }
        SrcKind::Hairpin => {
            prefix_match(b, d, &r.src, NFT_CMP_EQ);
            ct_status_dnat(b);
        }
        SrcKind::Localhost => ct_status_dnat(b),
    }
    match r.kind {
        SrcKind::Snat(a) => {
            expr(b, "immediate", |b| {
                b.u32be(NFTA_IMMEDIATE_DREG, NFT_REG_1);
                b.data_value(NFTA_IMMEDIATE_DATA, &addr_bytes(&a));
            });
            nat(b, NFT_NAT_SNAT, v6, None);
        }
        _ => expr(b, "masq", |_| {}),
    }
}
