//! The link functions, each registered once with its reference text:
//! veth pairs, bridges, a link's properties and the calls that set it up.

use rhai::NativeCallContext;

use super::api::{
    LinkHandle, NsHandle, R, add_bridge, add_veth, bad, declare, ifname, no_site, refused,
    with_link,
};
use super::registry::Reg;
use super::{SharedRunner, lock};
use crate::model::{Cidr, NsRef};

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.engine().register_type_with_name::<LinkHandle>("Link");
    reg.section("Links");
    register_pairs(reg, runner);
    super::kinds::register_links(reg, runner);
    register_properties(reg, runner);
    register_settings(reg, runner);
    super::kinds::register_shape(reg, runner);
    register_placement(reg, runner);
}

/// `to_string` of a link (listed under Utilities).
pub fn register_conversions(reg: &mut Reg, runner: &SharedRunner) {
    reg.section("Utilities");
    let rn = runner.clone();
    reg.func("to_string", &["value: Link"], "string", super::TO_STRING)
        .set(move |l: &mut LinkHandle| {
            let mut r = lock(&rn);
            super::api::enter_link(&mut r, l.id);
            match r.topo.link(l.id) {
                Ok(d) => format!("link {}:{}", d.ns, d.name),
                Err(_) => "link (stale)".to_string(),
            }
        });
}

/// veth pairs and bridges.
fn register_pairs(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.func(
        "veth",
        &["name: string", "peer: string"],
        "Link",
        r#"A veth pair with both ends in the host (`ip link add name type veth peer
name peer`). Returns the `name` end; the other end is `.peer`.

Errors: invalid names (15 bytes at most), two equal names, or a name
already declared in the host.

```rhai
let v = veth("veth0", "foo-veth0");
v.peer.move_to(foo);
```"#,
    )
    .set(move |ctx: NativeCallContext, a: &str, b: &str| {
        no_site(&rn);
        add_veth(&ctx, &rn, NsRef::Host, a, NsRef::Host, b)
    });
    let rn = runner.clone();
    reg.func(
        "veth",
        &["name: string", "ns: Netns", "peer: string"],
        "Link",
        r#"A veth pair with end `name` in the host and end `peer` directly inside
namespace `ns` (`ip link add name type veth peer name peer netns ns`).

Errors: as `veth(name, peer)`; `peer` already declared in `ns`.

```rhai
let w = veth("veth1", foo, "eth0");
w.peer.addr("172.18.0.21/16").up();
```"#,
    )
    .set(
        move |ctx: NativeCallContext, a: &str, ns: NsHandle, b: &str| {
            no_site(&rn);
            add_veth(&ctx, &rn, NsRef::Host, a, ns.ns, b)
        },
    );
    let rn = runner.clone();
    reg.method(
        "veth",
        "ns: Netns",
        &["name: string", "other: Netns", "peer: string"],
        "Link",
        r#"A veth pair between two namespaces: end `name` in `ns`, end `peer` in
`other`. Returns the `name` end.

```rhai
let x = foo.veth("a0", bar, "b0");   // foons:a0 <-> bar:b0
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, a: &str, other: NsHandle, b: &str| {
            if this.site != other.site {
                // Across sites: a VXLAN pair (issue 19).
                return super::cross::veth(&ctx, &rn, this, a, &other, b, &rhai::Map::new());
            }
            add_veth(&ctx, &rn, this.at(&rn), a, other.ns, b)
        },
    );
    let rn = runner.clone();
    reg.method(
        "veth",
        "ns: Netns",
        &["name: string", "peer: string"],
        "Link",
        r#"A veth pair with both ends inside `ns`.

```rhai
foo.veth("d0", "d1");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, a: &str, b: &str| {
            add_veth(&ctx, &rn, this.at(&rn), a, this.at(&rn), b)
        },
    );
    let rn = runner.clone();
    reg.func(
        "bridge",
        &["name: string"],
        "Link",
        r#"A bridge in the host (`ip link add name type bridge`). Declaring the same
bridge twice gives the same handle; an existing bridge of that name is
adopted.

Errors: an invalid name; the name already declared as a veth in the host.

```rhai
let br = bridge("foobr0");
br.addr("172.18.0.1/16").up();
```"#,
    )
    .set(move |ctx: NativeCallContext, name: &str| {
        no_site(&rn);
        add_bridge(&ctx, &rn, NsRef::Host, name)
    });
    super::knobs::register_bridge(reg, runner);
    let rn = runner.clone();
    reg.method(
        "bridge",
        "ns: Netns",
        &["name: string"],
        "Link",
        r#"A bridge inside namespace `ns` (a "switch" namespace).

```rhai
let sw = netns("sw1");
let br = sw.bridge("br0");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, name: &str| {
            add_bridge(&ctx, &rn, this.at(&rn), name)
        },
    );
}

/// `.peer`, `.name`, `.ns`.
fn register_properties(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.getter(
        "peer",
        "link: Link",
        "Link",
        r#"The other end of a veth pair.

Errors: the link is not a veth end.

```rhai
v.peer.addr("172.18.0.20/16").up();
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<LinkHandle> {
            let mut r = lock(&rn);
            super::api::enter_link(&mut r, l.id);
            if let Some(id) = r.sites.xpeer(l.id) {
                return Ok(LinkHandle { id });
            }
            let id = r.topo.peer(l.id).map_err(|e| refused(&ctx, e))?;
            Ok(LinkHandle { id })
        },
    );
    let rn = runner.clone();
    reg.getter(
        "name",
        "link: Link",
        "string",
        r#"The link's name (its current name, after any `rename`).

```rhai
print(v.name);            // veth0
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<String> {
            with_link(&ctx, &rn, l, |_, d| d.name.to_string())
        },
    );
    let rn = runner.clone();
    reg.getter(
        "ns",
        "link: Link",
        "Netns",
        r#"The namespace the link is in (after any `move_to`).

```rhai
print(v.peer.ns.name);    // foons
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<NsHandle> {
            {
                let site = {
                    let r = lock(&rn);
                    r.sites.site_of_link(&r.topo, l.id).flatten()
                };
                let ns = with_link(&ctx, &rn, l, |_, d| d.ns.clone())?;
                Ok(NsHandle { ns, site })
            }
        },
    );
}

/// Addresses, up/down, MTU, STP.
fn register_settings(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.method(
        "addr",
        "link: Link",
        &["cidr: string"],
        "Link",
        r#"Add an IPv4 or IPv6 address with its prefix length (`ip addr add cidr dev
link`). Returns the link, so calls chain. Adding the same address to the
same link twice is harmless.

Errors: not an address with a prefix (`"172.18.0.1"` lacks `/16`); the
address already on another link of the same namespace.

```rhai
v.addr("172.18.0.21/16").addr("fd00::21/64").up();
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle, cidr: &str| -> R<LinkHandle> {
            let cidr = Cidr::parse(cidr).map_err(|e| bad(&ctx, e))?;
            let id = l.at(&rn);
            declare(&ctx, &rn, |t, pos| t.add_addr(id, cidr, pos))?;
            Ok(l.clone())
        },
    );
    for (name, on, doc) in [
        (
            "up",
            true,
            "Set the link up. Returns the link.\n\n```rhai\nbr.up();\n```",
        ),
        (
            "down",
            false,
            "Set the link down. Returns the link.\n\n```rhai\nv.down();\n```",
        ),
    ] {
        let rn = runner.clone();
        reg.method(name, "link: Link", &[], "Link", doc).set(
            move |ctx: NativeCallContext, l: &mut LinkHandle| -> R<LinkHandle> {
                let id = l.at(&rn);
                declare(&ctx, &rn, |t, pos| t.set_up(id, on, pos))?;
                Ok(l.clone())
            },
        );
    }
    let rn = runner.clone();
    reg.method(
        "mtu",
        "link: Link",
        &["n: int"],
        "Link",
        r#"Set the MTU. Returns the link.

Errors: `n` outside 68–65535.

```rhai
v.mtu(1400);
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle, mtu: i64| -> R<LinkHandle> {
            let id = l.at(&rn);
            declare(&ctx, &rn, |t, pos| t.set_mtu(id, mtu, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    reg.method(
        "stp",
        "link: Link",
        &["on: bool"],
        "Link",
        r#"Turn the spanning tree protocol of a bridge on or off (`brctl stp br off`).

Errors: the link is a veth end.

```rhai
br.stp(false);
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle, on: bool| -> R<LinkHandle> {
            let id = l.at(&rn);
            declare(&ctx, &rn, |t, pos| t.set_stp(id, on, pos))?;
            Ok(l.clone())
        },
    );
}

/// Bridge ports, moving and renaming.
fn register_placement(reg: &mut Reg, runner: &SharedRunner) {
    let rn = runner.clone();
    reg.method(
        "attach",
        "bridge: Link",
        &["port: Link"],
        "Link",
        r#"Make `port` a port of the bridge (`brctl addif bridge port`, `ip link set
port master bridge`). Returns the bridge.

Errors: called on a veth end; `port` in another namespace than the
bridge; attaching a bridge to itself; a 1024th port (a Linux bridge takes
at most 1023: refused at this line, before anything is made).

```rhai
br.attach(v);             // v is the host end of a veth
```"#,
    )
    .set(
        move |ctx: NativeCallContext, br: &mut LinkHandle, port: LinkHandle| -> R<LinkHandle> {
            let (b, p) = (br.at(&rn), port.id);
            super::cross::same_site(&ctx, &rn, p, "attach() a link on another site")?;
            declare(&ctx, &rn, |t, pos| t.attach(b, p, pos))?;
            Ok(br.clone())
        },
    );
    let rn = runner.clone();
    reg.method(
        "move_to",
        "link: Link",
        &["ns: Netns"],
        "Link",
        r#"Move the link into namespace `ns` (`ip link set dev netns ns`). Returns
the link.

Errors: `ns` already has a link of that name; the link is already attached
to a bridge (move it first, then attach).

```rhai
v.peer.move_to(foo);
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle, ns: NsHandle| -> R<LinkHandle> {
            let id = l.at(&rn);
            if lock(&rn).sites.active() != ns.site.as_ref() {
                return Err(super::fail(
                    &ctx,
                    "move_to() a namespace on another site: a link stays on its site (a veth across sites is ns.veth(name, other, peer))",
                ));
            }
            declare(&ctx, &rn, |t, pos| t.move_to(id, ns.ns, pos))?;
            Ok(l.clone())
        },
    );
    let rn = runner.clone();
    reg.method(
        "rename",
        "link: Link",
        &["name: string"],
        "Link",
        r#"Rename the link (`ip link set dev old name new`). Returns the link.

Errors: an invalid name; the namespace already has a link of that name.

```rhai
v.peer.rename("eth0");
```"#,
    )
    .set(
        move |ctx: NativeCallContext, l: &mut LinkHandle, name: &str| -> R<LinkHandle> {
            let name = ifname(&ctx, name)?;
            let id = l.at(&rn);
            declare(&ctx, &rn, |t, pos| t.rename(id, name, pos))?;
            Ok(l.clone())
        },
    );
}
