//! Kernel knobs as options of the objects they belong to, never silent
//! defaults (issue 14): `bridge(name, #{ mcast_snooping: false })` and
//! `netns(name, #{ ipv6: false })`. Each option is the kernel's default
//! when left out, so dropping it from a script puts the default back.

use rhai::{EvalAltResult, Map, NativeCallContext};

use super::api::{LinkHandle, NsHandle, add_bridge, declare, netns};
use super::registry::Reg;
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

const NETNS_OPTS: &str = r#"`netns(name)` with kernel settings of the namespace as options, each left
at the kernel's default when not given (so dropping an option from a
script puts the default back at the next `up`):

| option | default | what it sets |
|---|---|---|
| `ipv6` | `true` | `false`: `net.ipv6.conf.all.disable_ipv6` and `net.ipv6.conf.default.disable_ipv6` to 1 — no IPv6 on any device there, no link-local addresses, no duplicate address detection to wait for |

In a namespace the run makes, the settings are written right after it is
made, before any link is made in it or moved into it. They are recorded
like `ns.sysctl()` settings (the value before is restored when the option
goes). IPv6 off makes namespaces cheaper to tear down (see bench/README.md).

Errors: an unknown option (the message lists the accepted ones); a value
that is not `true` or `false`.

```rhai
let ns = netns("bns1", #{ ipv6: false });
```"#;

const BRIDGE_OPTS: &str = r#"`bridge(name)` with bridge settings as options, each the kernel's default
when not given (dropping an option at the next `up` puts the default back):

| option | default | what it sets |
|---|---|---|
| `mcast_snooping` | `true` | IGMP/MLD snooping (`ip link set name type bridge mcast_snooping 0`); `false` before any port joins, so ports cost no multicast bookkeeping |
| `stp` | `false` | the same as `link.stp(on)` |

Read back with `ip -d link show name` (`mcast_snooping 0`). Errors: an
unknown option (the message lists the accepted ones); a value that is not
`true` or `false`.

```rhai
let br = bridge("foobr0", #{ mcast_snooping: false });
br.addr("172.18.0.1/16").up();
```"#;

/// `netns(name, opts)`, registered next to `netns(name)`.
pub fn register_netns(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.func("netns", &["name: string", "opts: map"], "Netns", NETNS_OPTS)
        .set(
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
                            if t.declares_sysctl(&ns, key, "1") {
                                return Ok(());
                            }
                            t.add_sysctl(ns, key, "1", pos)
                        })?;
                    }
                }
                Ok(h)
            },
        );
}

/// `bridge(name, opts)` / `ns.bridge(name, opts)`: one entry (one doc).
pub fn register_bridge(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.func(
        "bridge",
        &["name: string", "opts: map"],
        "Link",
        BRIDGE_OPTS,
    )
    .set(move |ctx: NativeCallContext, name: &str, opts: Map| {
        super::api::no_site(&rn);
        bridge_with(&ctx, &rn, NsRef::Host, name, &opts)
    });
    let rn = runner.clone();
    reg.method(
        "bridge",
        "ns: Netns",
        &["name: string", "opts: map"],
        "Link",
        BRIDGE_OPTS,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str, opts: Map| {
            bridge_with(&ctx, &rn, this.at(&rn), name, &opts)
        },
    );
}
