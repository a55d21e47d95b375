//! Routes and sysctls: one gateway per destination, sysctl keys and
//! values checked before they reach /proc.

use std::net::IpAddr;

use crate::model::{NsRef, RouteDest};
use crate::op::RouteSpec;
use crate::topo::{DeclError, Pos, RouteDecl, SysctlDecl, Topology};

impl Topology {
    pub fn add_route(
        &mut self,
        ns: NsRef,
        dest: RouteDest,
        via: IpAddr,
        pos: Pos,
    ) -> Result<(), DeclError> {
        self.check_ns(&ns)?;
        if let Some(x) = self
            .route_index
            .get(&(ns.clone(), dest))
            .map(|&i| &self.routes[i])
        {
            if x.route.via == via {
                return Ok(());
            }
            return Err(DeclError::RouteTaken {
                ns,
                dest,
                via: x.route.via,
                first: x.pos.clone(),
            });
        }
        self.check_room()?;
        self.route_index
            .insert((ns.clone(), dest), self.routes.len());
        self.routes.push(RouteDecl {
            ns,
            route: RouteSpec { dest, via },
            pos,
        });
        self.changed();
        Ok(())
    }

    /// A per-namespace sysctl. Keys are `net.*` only (anything else is the
    /// whole machine's), written with dots or slashes; the value is one
    /// line, not empty.
    pub fn add_sysctl(
        &mut self,
        ns: NsRef,
        key: &str,
        value: &str,
        pos: Pos,
    ) -> Result<(), DeclError> {
        let key = normalize_sysctl_key(key)?;
        let value = check_sysctl_value(&key, value)?;
        self.check_ns(&ns)?;
        self.check_room()?;
        self.push_sysctl(SysctlDecl {
            ns,
            key,
            value,
            pos,
        });
        Ok(())
    }

    /// Is a sysctl `key` declared in `ns`?
    pub(in crate::topo) fn has_sysctl(&self, ns: &NsRef, key: &str) -> bool {
        self.sysctl_keys.get(ns).is_some_and(|k| k.contains(key))
    }

    /// Is `key` declared in `ns` with this `value` (one declaration of
    /// several may have it)?
    pub fn declares_sysctl(&self, ns: &NsRef, key: &str, value: &str) -> bool {
        // The index answers the common miss (a namespace just declared
        // has none); the pass is for a key declared before.
        self.has_sysctl(ns, key)
            && self
                .sysctls
                .iter()
                .any(|s| &s.ns == ns && s.key == key && s.value == value)
    }

    pub(in crate::topo) fn push_sysctl(&mut self, s: SysctlDecl) {
        self.sysctl_keys
            .entry(s.ns.clone())
            .or_default()
            .insert(s.key.clone());
        self.sysctls.push(s);
        self.changed();
    }
}

fn normalize_sysctl_key(key: &str) -> Result<String, DeclError> {
    let ok = !key.is_empty()
        && !key.contains("..")
        && !key.starts_with(['.', '/'])
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'));
    if !ok {
        return Err(DeclError::SysctlName {
            key: key.to_string(),
        });
    }
    let key = key.replace('/', ".");
    if !key.starts_with("net.") {
        return Err(DeclError::SysctlGlobal { key });
    }
    Ok(key)
}

fn check_sysctl_value(key: &str, value: &str) -> Result<String, DeclError> {
    let v = value.trim();
    let why = if v.is_empty() {
        Some("empty")
    } else if v.chars().any(char::is_control) {
        Some("more than one line")
    } else if v.len() > 4096 {
        Some("longer than a sysctl takes")
    } else {
        None
    };
    match why {
        Some(why) => Err(DeclError::SysctlValue {
            key: key.to_string(),
            value: value.to_string(),
            why,
        }),
        None => Ok(v.to_string()),
    }
}
