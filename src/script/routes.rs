//! `ns.route(dest, #{ via, dev, metric, src, table, onlink, type, mtu,
//! nexthops })` and `ns.rule(#{ from, to, iif, oif, fwmark, table, type,
//! priority, v6 })`: options read here, the kernel's rules kept by the model.

use std::net::IpAddr;

use ipnet::IpNet;
use rhai::{Dynamic, EvalAltResult, Map, NativeCallContext};

mod docs;

use super::api::{NsHandle, bad, declare, ifname};
use super::registry::Reg;
use super::{SharedRunner, fail};
use crate::model::{IfName, NsRef, RouteDest, parse_ip};
use crate::op::{Hop, RouteEx, RouteType, RuleGoal, RuleSpec, TABLE_MAIN};
use docs::{ROUTE, RULE};

type R<T> = Result<T, Box<EvalAltResult>>;

fn check_keys(ctx: &NativeCallContext, what: &str, opts: &Map, known: &[&str]) -> R<()> {
    match opts.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(fail(
            ctx,
            format!("unknown {what} option '{k}': expected {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn text(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<String> {
    if let Ok(i) = v.as_int() {
        return Ok(i.to_string());
    }
    v.clone()
        .into_string()
        .map_err(|_| fail(ctx, format!("{what} is a string")))
}

fn num(ctx: &NativeCallContext, what: &str, v: &Dynamic, lo: i64, hi: i64) -> R<u32> {
    let n = match v.as_int() {
        Ok(n) => n,
        Err(_) => {
            let s = text(ctx, what, v)?;
            let parsed = match s.strip_prefix("0x") {
                Some(h) => i64::from_str_radix(h, 16).ok(),
                None => s.parse().ok(),
            };
            parsed.ok_or_else(|| fail(ctx, format!("{what} {s:?} is not a number")))?
        }
    };
    if !(lo..=hi).contains(&n) {
        return Err(fail(
            ctx,
            format!("{what} {n} is out of range ({lo} to {hi})"),
        ));
    }
    Ok(n as u32)
}

fn ip(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<IpAddr> {
    let s = text(ctx, what, v)?;
    parse_ip(&s).map_err(|e| bad(ctx, e))
}

/// A device by name, or a link handle (its name where the script puts it).
fn dev(ctx: &NativeCallContext, rn: &SharedRunner, v: &Dynamic) -> R<IfName> {
    if let Some(h) = v.clone().try_cast::<super::api::LinkHandle>() {
        let r = super::lock(rn);
        let l = r.topo.link(h.id).map_err(|e| super::api::refused(ctx, e))?;
        return Ok(l.name.clone());
    }
    let s = text(ctx, "dev", v)?;
    ifname(ctx, &s)
}

/// A routing table by number or by name (main, default, or a name from
/// /etc/iproute2/rt_tables).
fn table(ctx: &NativeCallContext, v: &Dynamic) -> R<u32> {
    if v.as_int().is_ok() {
        return num(ctx, "route table", v, 1, u32::MAX as i64);
    }
    let s = text(ctx, "route table", v)?;
    match s.as_str() {
        "main" => return Ok(TABLE_MAIN),
        "default" => return Ok(253),
        "local" => return Ok(255),
        _ => {}
    }
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    for path in ["/etc/iproute2/rt_tables", "/usr/share/iproute2/rt_tables"] {
        let Ok(t) = std::fs::read_to_string(path) else {
            continue;
        };
        for line in t.lines() {
            let mut w = line.split_whitespace();
            if let (Some(n), Some(name)) = (w.next(), w.next())
                && name == s
                && let Ok(n) = n.parse()
            {
                return Ok(n);
            }
        }
    }
    Err(fail(
        ctx,
        format!(
            "no routing table named {s:?} (use a number, main, or a name from /etc/iproute2/rt_tables)"
        ),
    ))
}

fn route(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, dest: &str, o: Map) -> R<()> {
    check_keys(
        ctx,
        "route",
        &o,
        &[
            "via", "dev", "metric", "src", "table", "onlink", "type", "mtu", "nexthops",
        ],
    )?;
    let via = o.get("via").map(|v| ip(ctx, "via", v)).transpose()?;
    let mut nexthops = Vec::new();
    if let Some(v) = o.get("nexthops") {
        let arr = v
            .clone()
            .into_array()
            .map_err(|_| fail(ctx, "nexthops is an array of #{ via, dev, weight }"))?;
        for h in arr {
            let h = h
                .try_cast::<Map>()
                .ok_or_else(|| fail(ctx, "each next hop is a map #{ via, dev, weight }"))?;
            check_keys(ctx, "next hop", &h, &["via", "dev", "weight"])?;
            nexthops.push(Hop {
                via: h.get("via").map(|v| ip(ctx, "via", v)).transpose()?,
                dev: h.get("dev").map(|v| dev(ctx, rn, v)).transpose()?,
                weight: match h.get("weight") {
                    Some(w) => num(ctx, "next hop weight", w, 1, 256)? as u16,
                    None => 1,
                },
            });
        }
        if nexthops.is_empty() {
            return Err(fail(ctx, "nexthops is empty: give at least one next hop"));
        }
    }
    let src = o.get("src").map(|v| ip(ctx, "src", v)).transpose()?;
    let family = via
        .or(nexthops.iter().find_map(|h| h.via))
        .or(src)
        .unwrap_or(if dest.contains(':') {
            IpAddr::from([0u16; 8])
        } else {
            IpAddr::from([0u8; 4])
        });
    let dest = RouteDest::parse(dest, &family).map_err(|e| bad(ctx, e))?;
    let kind = match o.get("type") {
        None => RouteType::Unicast,
        Some(v) => {
            let t = text(ctx, "route type", v)?;
            RouteType::parse(&t).ok_or_else(|| {
                fail(
                    ctx,
                    format!(
                        "unknown route type {t:?} (unicast, blackhole, unreachable or prohibit)"
                    ),
                )
            })?
        }
    };
    let r = RouteEx {
        dest,
        via,
        dev: o.get("dev").map(|v| dev(ctx, rn, v)).transpose()?,
        metric: o
            .get("metric")
            .map(|v| num(ctx, "route metric", v, 0, u32::MAX as i64))
            .transpose()?,
        src,
        table: o
            .get("table")
            .map(|v| table(ctx, v))
            .transpose()?
            .unwrap_or(TABLE_MAIN),
        onlink: match o.get("onlink") {
            None => false,
            Some(v) => v
                .as_bool()
                .map_err(|_| fail(ctx, "onlink is true or false"))?,
        },
        kind,
        mtu: o
            .get("mtu")
            .map(|v| num(ctx, "route mtu", v, 68, 65535))
            .transpose()?,
        nexthops,
    };
    declare(ctx, rn, |t, pos| t.add_route_ex(ns, r, pos))
}

fn net(ctx: &NativeCallContext, what: &str, v: &Dynamic) -> R<IpNet> {
    let s = text(ctx, what, v)?;
    let n: IpNet = match s.parse() {
        Ok(n) => n,
        Err(_) => {
            let a = parse_ip(&s).map_err(|e| bad(ctx, e))?;
            IpNet::from(a)
        }
    };
    Ok(n.trunc())
}

fn rule(ctx: &NativeCallContext, rn: &SharedRunner, ns: NsRef, o: Map) -> R<()> {
    check_keys(
        ctx,
        "rule",
        &o,
        &[
            "from", "to", "iif", "oif", "fwmark", "table", "type", "priority", "v6",
        ],
    )?;
    let from = o.get("from").map(|v| net(ctx, "from", v)).transpose()?;
    let to = o.get("to").map(|v| net(ctx, "to", v)).transpose()?;
    let v6 = match (from.or(to), o.get("v6")) {
        (Some(n), _) => n.addr().is_ipv6(),
        (None, Some(v)) => v.as_bool().map_err(|_| fail(ctx, "v6 is true or false"))?,
        (None, None) => false,
    };
    let priority = match o.get("priority") {
        Some(v) => num(ctx, "rule priority", v, 1, 32765)?,
        None => {
            return Err(fail(
                ctx,
                "a rule needs a priority (1 to 32765): rules are tried in its order",
            ));
        }
    };
    let goal = match (o.get("type"), o.get("table")) {
        (Some(_), Some(_)) => return Err(fail(ctx, "a rule takes a table or a type, not both")),
        (None, Some(t)) => RuleGoal::Table(table(ctx, t)?),
        (Some(t), None) => match text(ctx, "rule type", t)?.as_str() {
            "blackhole" => RuleGoal::Blackhole,
            "unreachable" => RuleGoal::Unreachable,
            "prohibit" => RuleGoal::Prohibit,
            other => {
                return Err(fail(
                    ctx,
                    format!(
                        "unknown rule type {other:?} (blackhole, unreachable or prohibit; or give a table)"
                    ),
                ));
            }
        },
        (None, None) => return Err(fail(ctx, "a rule needs a table (or a type)")),
    };
    let r = RuleSpec {
        v6,
        from,
        to,
        iif: o.get("iif").map(|v| dev(ctx, rn, v)).transpose()?,
        oif: o.get("oif").map(|v| dev(ctx, rn, v)).transpose()?,
        fwmark: o
            .get("fwmark")
            .map(|v| num(ctx, "fwmark", v, 0, u32::MAX as i64))
            .transpose()?,
        priority,
        goal,
    };
    declare(ctx, rn, |t, pos| t.add_rule(ns, r, pos))
}

/// `ns.route(dest, opts)` and `ns.rule(opts)` (under Routes and sysctls,
/// after `ns.route(dest, via)`).
pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.method(
        "route",
        "ns: Netns",
        &["dest: string", "opts: map"],
        "()",
        ROUTE,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, dest: &str, opts: Map| {
            route(&ctx, &rn, this.at(&rn), dest, opts)
        },
    );
    let rn = runner.clone();
    reg.method("rule", "ns: Netns", &["opts: map"], "()", RULE)
        .set(
            move |ctx: NativeCallContext, this: &mut NsHandle, opts: Map| {
                rule(&ctx, &rn, this.at(&rn), opts)
            },
        );
}
