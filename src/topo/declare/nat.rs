//! NAT rules: a DNAT key held by one mapping only (the clash names both
//! lines), forwarding switched on where NAT happens.

use netplumb_nft::{DnatMapping, NatRule};

use crate::model::NsRef;
use crate::topo::{DeclError, NatDecl, Pos, SysctlDecl, Topology};

impl Topology {
    /// A NAT rule; `make` gets the rule's tag (its index, for errors). A
    /// DNAT mapping whose key another mapping already holds is refused
    /// naming both lines; the same mapping twice is one mapping. NAT needs
    /// forwarding where it happens: it is switched on there too.
    pub fn add_nat(
        &mut self,
        ns: NsRef,
        make: impl FnOnce(usize) -> NatRule,
        pos: Pos,
    ) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        self.check_room()?;
        let tag = self.nat.len();
        let rule = make(tag);
        let v6 = match &rule {
            NatRule::Masquerade { src, .. } | NatRule::Snat { src, .. } => src.addr().is_ipv6(),
            NatRule::Dnat(m) => m.to_addr.is_ipv6(),
            NatRule::Hairpin { subnet, .. } => subnet.addr().is_ipv6(),
            NatRule::LocalhostMasquerade { .. } => false,
        };
        if let NatRule::Dnat(m) = &rule
            && self.claim_dnat(&ns, m)?
        {
            return Ok(());
        }
        self.nat.push(NatDecl {
            ns: ns.clone(),
            rule,
            pos: pos.clone(),
            hairpin: true,
            force: false,
        });
        let key = if v6 {
            "net.ipv6.conf.all.forwarding"
        } else {
            "net.ipv4.ip_forward"
        };
        if !self.has_sysctl(&ns, key) {
            self.push_sysctl(SysctlDecl {
                ns,
                key: key.into(),
                value: "1".into(),
                pos,
            });
        }
        self.changed();
        Ok(())
    }

    /// Turn hairpin off for the last declared mapping (`hairpin: false`).
    pub fn no_hairpin_last(&mut self) {
        if let Some(d) = self.nat.last_mut() {
            d.hairpin = false;
            self.changed();
        }
    }

    /// Publish the last declared mapping over a listening socket (`force: true`).
    pub fn force_last(&mut self) {
        if let Some(d) = self.nat.last_mut() {
            d.force = true;
            self.changed();
        }
    }

    /// Enter `m` in the DNAT index. Ok(true): exactly this mapping is
    /// already there (nothing to add).
    fn claim_dnat(&mut self, ns: &NsRef, m: &DnatMapping) -> Result<bool, DeclError> {
        let key = (
            ns.clone(),
            m.to_addr.is_ipv6(),
            m.proto as u8,
            m.daddr,
            m.iif.clone(),
        );
        let (lo, hi) = m.ports;
        let index = self.dnat_index.entry(key).or_default();
        let clash = index
            .range(..=hi)
            .next_back()
            .filter(|(start, (end, _))| **start <= hi && *end >= lo)
            .map(|(_, (_, tag))| *tag);
        if let Some(tag) = clash {
            let first = &self.nat[tag];
            if let NatRule::Dnat(f) = &first.rule {
                if netplumb_nft::same_destination(f, m) {
                    return Ok(true);
                }
                return Err(DeclError::DnatClash {
                    msg: netplumb_nft::clash_message(f, m),
                    first: first.pos.clone(),
                });
            }
        }
        index.insert(lo, (hi, m.tag));
        Ok(false)
    }
}
