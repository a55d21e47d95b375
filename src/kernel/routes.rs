//! Routes of every kind and policy rules against the state types: how a
//! declared route reads back (what `check` compares), and the recording
//! kernel's model of adding, replacing and deleting them.

use super::{KernelError, NsState, Route, RouteHop, Rule};
use crate::op::{RouteEx, RouteType, RuleGoal, RuleSpec};

/// The route with `want`'s key (table, destination, metric), if any.
pub fn find_key<'a>(st: &'a NsState, want: &RouteEx) -> Option<&'a Route> {
    let dest = want.dest.as_net();
    st.routes.iter().find(|r| {
        r.table == want.table
            && r.dest == dest
            && r.metric.unwrap_or(0) == want.kernel_metric()
            && r.proto != "kernel"
    })
}

fn index_of(st: &NsState, dev: &crate::model::IfName) -> Option<u32> {
    st.link(dev.as_str()).map(|l| l.index)
}

/// Is `have` the route `want` declares, as far as the script says?
pub fn is_as_declared(st: &NsState, want: &RouteEx, have: &Route) -> bool {
    let dev_ok = |d: &Option<crate::model::IfName>, oif: Option<u32>| match d {
        Some(d) => index_of(st, d).is_some_and(|i| Some(i) == oif),
        None => true,
    };
    have.kind == want.kind.as_str()
        && have.src == want.src
        && have.mtu == want.mtu
        && have.onlink == want.onlink
        && (!want.nexthops.is_empty() || (have.via == want.via && dev_ok(&want.dev, have.oif)))
        && have.nexthops.len() == want.nexthops.len()
        && have
            .nexthops
            .iter()
            .zip(&want.nexthops)
            .all(|(h, w)| h.via == w.via && h.weight == w.weight && dev_ok(&w.dev, h.oif))
}

fn enetunreach() -> KernelError {
    KernelError::errno(libc::ENETUNREACH, "Network is unreachable")
}

/// The path a gateway takes: the device given, or the one on its subnet.
fn resolve(
    st: &NsState,
    via: Option<std::net::IpAddr>,
    dev: &Option<crate::model::IfName>,
    onlink: bool,
) -> Result<Option<u32>, KernelError> {
    let oif = match dev {
        Some(d) => Some(
            index_of(st, d).ok_or_else(|| KernelError::errno(libc::ENODEV, "No such device"))?,
        ),
        None => None,
    };
    match via {
        Some(v) if !onlink => {
            let on = st
                .addrs
                .iter()
                .find(|a| a.cidr.trunc().contains(&v) && oif.is_none_or(|o| o == a.index));
            match on {
                Some(a) => Ok(Some(a.index)),
                None => Err(enetunreach()),
            }
        }
        _ => Ok(oif),
    }
}

/// The route as the kernel would hold it (the recording kernel's model).
pub fn as_read(st: &NsState, r: &RouteEx) -> Result<Route, KernelError> {
    let mut out = Route {
        table: r.table,
        dest: r.dest.as_net(),
        via: r.via,
        kind: r.kind.as_str().to_string(),
        proto: "boot".into(),
        scope: if r.kind == RouteType::Unicast && r.via.is_none() && r.nexthops.is_empty() {
            "link".into()
        } else {
            "global".into()
        },
        src: r.src,
        metric: (r.kernel_metric() != 0).then_some(r.kernel_metric()),
        onlink: r.onlink,
        mtu: r.mtu,
        ..Route::default()
    };
    if r.kind == RouteType::Unicast {
        if r.nexthops.is_empty() {
            out.oif = resolve(st, r.via, &r.dev, r.onlink)?;
        }
        for h in &r.nexthops {
            out.nexthops.push(RouteHop {
                via: h.via,
                oif: resolve(st, h.via, &h.dev, false)?,
                weight: h.weight,
            });
        }
    }
    Ok(out)
}

pub fn put(st: &mut NsState, r: &RouteEx, replace: bool) -> Result<(), KernelError> {
    let new = as_read(st, r)?;
    let dest = r.dest.as_net();
    let key = |x: &Route| {
        x.table == r.table && x.dest == dest && x.metric.unwrap_or(0) == r.kernel_metric()
    };
    if st.routes.iter().any(key) && !replace {
        return Err(KernelError::errno(libc::EEXIST, "File exists"));
    }
    st.routes.retain(|x| !key(x));
    st.routes.push(new);
    Ok(())
}

pub fn delete(st: &mut NsState, r: &RouteEx) -> Result<(), KernelError> {
    let dest = r.dest.as_net();
    let before = st.routes.len();
    st.routes.retain(|x| {
        !(x.table == r.table && x.dest == dest && x.metric.unwrap_or(0) == r.kernel_metric())
    });
    if st.routes.len() == before {
        return Err(KernelError::errno(libc::ESRCH, "No such process"));
    }
    Ok(())
}

/// A declared rule as `ip rule` reads it back.
pub fn rule_as_read(r: &RuleSpec) -> Rule {
    Rule {
        v6: r.v6,
        priority: r.priority,
        from: r.from,
        to: r.to,
        iif: r.iif.as_ref().map(|i| i.to_string()),
        oif: r.oif.as_ref().map(|o| o.to_string()),
        fwmark: r.fwmark,
        action: match r.goal {
            RuleGoal::Table(t) => format!("table {t}"),
            RuleGoal::Blackhole => "blackhole".into(),
            RuleGoal::Unreachable => "unreachable".into(),
            RuleGoal::Prohibit => "prohibit".into(),
        },
    }
}

pub fn has_rule(st: &NsState, r: &RuleSpec) -> bool {
    let want = rule_as_read(r);
    st.rules.contains(&want)
}

pub fn add_rule(st: &mut NsState, r: &RuleSpec) -> Result<(), KernelError> {
    if has_rule(st, r) {
        return Err(KernelError::errno(libc::EEXIST, "File exists"));
    }
    st.rules.push(rule_as_read(r));
    Ok(())
}

pub fn del_rule(st: &mut NsState, r: &RuleSpec) -> Result<(), KernelError> {
    let want = rule_as_read(r);
    match st.rules.iter().position(|x| *x == want) {
        Some(i) => {
            st.rules.remove(i);
            Ok(())
        }
        None => Err(KernelError::errno(
            libc::ENOENT,
            "No such file or directory",
        )),
    }
}
