//! Kernel knobs as options of the objects they belong to, never silent
//! defaults (issue 14): `bridge(name, #{ mcast_snooping: false })` and
//! `netns(name, #{ ipv6: false })`. Each option is the kernel's default
//! when left out, so dropping it from a script puts the default back.

use rhai::{Engine, EvalAltResult, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, add_bridge, declare, netns};
use super::{SharedRunner, fail};
use crate::model::NsRef;

type R<T> = Result<T, Box<EvalAltResult>>;

/// IPv6 off in a namespace: both keys, so that devices made there later
/// (`default`) and the ones already there (`all`) have none.
pub const IPV6_OFF: [&str; 2] = [
    "net.ipv6.conf.all.disable_ipv6",
    "net.ipv6.conf.default.disable_ipv6",
];

/// The options of `what`, each a bool among `known`; anything else is an
/// error naming what is accepted.
fn bools(
    ctx: &NativeCallContext,
    what: &str,
    opts: &Map,
    known: &[&str],
) -> R<Vec<(String, bool)>> {
    let mut out = Vec::new();
    for (k, v) in opts {
        if !known.contains(&k.as_str()) {
            return Err(fail(
                ctx,
                format!(
                    "{what}() has no option '{k}': it takes {}",
                    known.join(", ")
                ),
            ));
        }
        let Some(b) = v.clone().try_cast::<bool>() else {
            return Err(fail(
                ctx,
                format!(
                    "{what}() option '{k}' is true or false, not {}",
                    v.type_name()
                ),
            ));
        };
        out.push((k.to_string(), b));
    }
    Ok(out)
}

fn bridge_with(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: NsRef,
    name: &str,
    opts: &Map,
) -> R<LinkHandle> {
    let opts = bools(ctx, "bridge", opts, &["mcast_snooping", "stp"])?;
    let h = add_bridge(ctx, rn, ns, name)?;
    for (k, on) in opts {
        match k.as_str() {
            "stp" => declare(ctx, rn, |t, pos| t.set_stp(h.id, on, pos))?,
            _ => declare(ctx, rn, |t, pos| t.set_mcast_snooping(h.id, on, pos))?,
        }
    }
    Ok(h)
}

pub fn register(engine: &mut Engine, runner: &SharedRunner) {
    let rn = runner.clone();
    engine.register_fn(
        "netns",
        move |ctx: NativeCallContext, name: &str, opts: Map| -> R<NsHandle> {
            let opts = bools(&ctx, "netns", &opts, &["ipv6"])?;
            let h = netns(&ctx, &rn, name)?;
            for (_, on) in opts {
                if on {
                    continue;
                }
                for key in IPV6_OFF {
                    let ns = h.ns.clone();
                    declare(&ctx, &rn, |t, pos| {
                        let already = t.sysctls().iter().any(|s| {
                            s.ns == ns && s.key.as_str() == key && s.value.as_str() == "1"
                        });
                        if already {
                            return Ok(());
                        }
                        t.add_sysctl(ns, key, "1", pos)
                    })?;
                }
            }
            Ok(h)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "bridge",
        move |ctx: NativeCallContext, name: &str, opts: Map| {
            bridge_with(&ctx, &rn, NsRef::Host, name, &opts)
        },
    );
    let rn = runner.clone();
    engine.register_fn(
        "bridge",
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, opts: Map| {
            bridge_with(&ctx, &rn, this.ns.clone(), name, &opts)
        },
    );
}
