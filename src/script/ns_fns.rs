//! The namespace functions, each registered once with its reference text:
//! `netns`, `host`, `ns.name`, `ns.link`, routes, sysctls, `exec`, `ping`.

use rhai::{Map, NativeCallContext};

use super::SharedRunner;
use super::api::{
    EXEC_TIMEOUT_S, LinkHandle, NsHandle, R, declare, exec_result, exec_with, ifname, ping, route,
    sysctl,
};
use super::registry::Reg;
use crate::model::NsRef;

const SYSCTL: &str = r#"Set a sysctl inside the namespace (`ip netns exec ns sysctl -w
key=value`); `value` is a string or an integer. `down` restores the old
value.

Errors: a key that is not a sysctl name (letters, digits, `.`, `_`, `-`,
`/`; no `..`).

```rhai
r.sysctl("net.ipv4.ip_forward", "1");
r.sysctl("net.ipv6.conf.all.forwarding", 1);
```"#;

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.engine().register_type_with_name::<NsHandle>("Netns");
    reg.section("Namespaces");

    let rn = runner.clone();
    reg.func(
        "netns",
        &["name: string"],
        "Netns",
        r#"Declare the network namespace `name` (`ip netns add name`) and bring its
`lo` up. Idempotent: calling it twice, or for a namespace that already
exists on the machine, gives the same namespace (an existing one is adopted:
`down` leaves it).

Errors: an invalid name (empty, `/`, whitespace, longer than 255 bytes).

```rhai
let foo = netns("foons");
```"#,
    )
    .set(move |ctx: NativeCallContext, name: &str| -> R<NsHandle> {
        super::api::netns(&ctx, &rn, name)
    });
    super::knobs::register_netns(reg, runner);

    reg.func(
        "host",
        &[],
        "Netns",
        r#"The namespace netplumb itself runs in (the machine's, or the sandbox's).
Use it to call namespace methods on the host: `host().route(...)`,
`host().sysctl(...)`, `host().exec(...)`.

```rhai
host().sysctl("net.ipv4.ip_forward", 1);
```"#,
    )
    .set(|| NsHandle::new(NsRef::Host));

    reg.getter(
        "name",
        "ns: Netns",
        "string",
        r#"The namespace's name; `""` for `host()`.

```rhai
print(foo.name);          // foons
```"#,
    )
    .set(|n: &mut NsHandle| match &n.ns {
        NsRef::Host => String::new(),
        NsRef::Named(x) => x.to_string(),
    });

    let rn = runner.clone();
    reg.method(
        "link",
        "ns: Netns",
        &["name: string"],
        "Link",
        r#"A handle on a device that already exists in the namespace (`lo`, `eth0`,
a bridge made by someone else), to add addresses or set it up. netplumb
adopts it: `down` undoes only what the script changed on it.

Errors: an invalid interface name. A link the script already declared
under that name (a veth end, a bridge) gives the same handle.

```rhai
foo.link("lo").addr("10.255.0.1/32");
host().link("eth0").addr("192.168.1.10/24");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str| -> R<LinkHandle> {
            let name = ifname(&ctx, name)?;
            let ns = this.at(&rn);
            let id = declare(&ctx, &rn, |t, pos| t.adopt_link(ns, name, pos))?;
            Ok(LinkHandle { id })
        },
    );
}

/// Routes and sysctls inside a namespace.
pub fn register_settings(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Routes and sysctls");
    let rn = runner.clone();
    reg.method(
        "route",
        "ns: Netns",
        &["dest: string", "via: string"],
        "()",
        r#"Add a route in namespace `ns` (`host()` for the host): `dest` is
`"default"` or a prefix (`"10.9.0.0/16"`), `via` the gateway address. The
family of `"default"` follows `via`: `route("default", "fd00::1")` is the
IPv6 default route. Declaring the same route twice is harmless.

Errors: a prefix with host bits set (`10.9.0.1/16`: did you mean
`10.9.0.0/16`?); `dest` and `via` of different families; another gateway
already declared for the same destination; a gateway not on any of the
namespace's subnets (found when applying).

```rhai
foo.route("default", "172.18.0.1");
foo.route("10.9.0.0/16", "172.18.0.1");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, dest: &str, via: &str| {
            route(&ctx, &rn, this.at(&rn), dest, via)
        },
    );
    super::routes::register(reg, runner);
    let rn = runner.clone();
    reg.method(
        "sysctl",
        "ns: Netns",
        &["key: string", "value: string"],
        "()",
        SYSCTL,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, key: &str, value: &str| {
            sysctl(&ctx, &rn, this.at(&rn), key, value)
        },
    );
    let rn = runner.clone();
    reg.method(
        "sysctl",
        "ns: Netns",
        &["key: string", "value: int"],
        "()",
        SYSCTL,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, key: &str, value: i64| {
            sysctl(&ctx, &rn, this.at(&rn), key, &value.to_string())
        },
    );
}

/// `exec` and `ping` inside a namespace.
pub fn register_exec(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Inside the topology: exec and ping");
    let rn = runner.clone();
    reg.method(
        "exec",
        "ns: Netns",
        &["cmd: string"],
        "map",
        r#"Converge what is declared so far, then run `cmd` with `sh -c` inside the
namespace. Returns `#{ status, stdout, stderr }`. A command still running
after 60 seconds is killed (status -1, and stderr says so). In `plan`
nothing runs and the result is `#{ status: 0, stdout: "", stderr: "" }`.

Errors: the command cannot be started; converging fails.

```rhai
let out = foo.exec("ip -br addr");
print(out.stdout);
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: &str| {
            exec_result(&ctx, &rn, &this.at(&rn), cmd, EXEC_TIMEOUT_S)
        },
    );
    let rn = runner.clone();
    reg.method(
        "exec",
        "ns: Netns",
        &["cmd: string", "opts: map"],
        "map",
        r#"`exec` with options: `#{ timeout: 5 }` kills the command after that many
seconds (a number, fractions allowed) instead of 60.

Errors: an unknown option; a timeout that is not a number.

```rhai
let out = foo.exec("sleep 100", #{ timeout: 0.5 });
if out.status == -1 { print("killed"); }
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: &str, opts: Map| -> R<Map> {
            exec_with(&ctx, &rn, &this.at(&rn), cmd, &opts)
        },
    );
    let rn = runner.clone();
    reg.method(
        "ping",
        "ns: Netns",
        &["addr: string"],
        "bool",
        r#"Converge what is declared so far, then send one ICMP (or ICMPv6) echo from
inside the namespace with a one-second timeout: `true` when it is
answered. Always `true` in `plan`.

Errors: `addr` is not an address; converging fails.

```rhai
if !foo.ping("172.18.0.1") { throw "foons cannot reach its gateway"; }
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, addr: &str| {
            ping(&ctx, &rn, &this.at(&rn), addr)
        },
    );
}

/// `to_string` / `to_debug` of a namespace (listed under Utilities).
pub fn register_conversions(reg: &mut Reg) {
    reg.section("Utilities");
    reg.func("to_string", &["value: Netns"], "string", super::TO_STRING)
        .set(|n: &mut NsHandle| format!("netns {}", n.ns));
    reg.func("to_debug", &["value: Netns"], "string", super::TO_STRING)
        .set(|n: &mut NsHandle| format!("netns {}", n.ns));
}
