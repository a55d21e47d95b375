//! Issue 11, the edit matrix: for each object kind, add it, change it and
//! remove it again between versions of one script (`up --name m` each
//! time), and after every `up` the kernel must equal a fresh `up` of that
//! version in a sandbox of its own; `check` says no drift, a second `up`
//! changes nothing, `down` leaves the sandbox as it was.

mod common;

use common::Sandbox;
use common::kstate::{assert_same, state};

/// What every version has: one namespace on a veth.
const BASE: &str = r#"
let a = netns("ma");
let v = veth("mv0", a, "eth0");
v.addr("10.85.0.1/24").up();
v.peer.addr("10.85.0.2/24").up();
"#;

struct Case {
    /// Shell run in every sandbox first (devices a script adopts).
    setup: &'static str,
    /// Declared in every version.
    common: &'static str,
    /// The object in its first form, and changed.
    with: &'static str,
    changed: &'static str,
}

fn version(c: &Case, extra: &str) -> String {
    format!("{BASE}{}\n{extra}\n", c.common)
}

fn sandbox(c: &Case) -> Sandbox {
    let sb = Sandbox::new();
    if !c.setup.is_empty() {
        sb.ok(c.setup);
    }
    sb
}

fn fresh(c: &Case, body: &str) -> String {
    let sb = sandbox(c);
    let s = sb.script("m.rhai", body);
    sb.np_ok(&["-q", "up", "--name", "m", &s]);
    state(&sb)
}

fn run(kind: &str, c: &Case) {
    let (base, with, changed) = (version(c, ""), version(c, c.with), version(c, c.changed));
    let sb = sandbox(c);
    let before = sb.snapshot();
    let s = sb.script("m.rhai", &base);
    sb.np_ok(&["-q", "up", "--name", "m", &s]);
    for (step, body) in [("add", &with), ("change", &changed), ("remove", &base)] {
        std::fs::write(&s, body).unwrap();
        let (prev, want) = (state(&sb), fresh(c, body));
        let out = sb.np_ok(&["up", "--name", "m", &s]);
        let what = format!("{kind}: {step}");
        // Going back to a default the kernel already has changes nothing.
        assert_eq!(
            out.contains("no changes"),
            prev == want,
            "{what}: `no changes` is wrong:\n{out}"
        );
        assert!(
            !out.contains("repaired"),
            "{what}: an edit is no repair:\n{out}"
        );
        assert_same(&state(&sb), &want, &what);
        let chk = sb.np_ok(&["check", "m"]);
        assert!(chk.contains("no drift"), "{what}: {chk}");
        let again = sb.np_ok(&["up", "--name", "m", &s]);
        assert!(again.contains("no changes"), "{what}, again:\n{again}");
    }
    sb.np_ok(&["-q", "down", "--name", "m"]);
    assert_eq!(sb.snapshot(), before, "{kind}: down");
}

macro_rules! case {
    ($name:ident, $setup:expr, $common:expr, $with:expr, $changed:expr) => {
        #[test]
        fn $name() {
            run(
                stringify!($name),
                &Case {
                    setup: $setup,
                    common: $common,
                    with: $with,
                    changed: $changed,
                },
            );
        }
    };
}

case!(netns, "", "", r#"netns("mb");"#, r#"netns("mc");"#);
case!(
    veth,
    "",
    "",
    r#"let w = veth("mw0", a, "w1"); w.up();"#,
    r#"let w = veth("mw0", a, "w2"); w.up();"#
);
case!(
    bridge,
    "",
    "",
    r#"let br = bridge("mbr0"); br.up();"#,
    r#"let br = a.bridge("mbr1"); br.up();"#
);
case!(
    address,
    "",
    "",
    r#"v.addr("10.85.1.1/24"); v.peer.addr("fd85::2/64");"#,
    r#"v.addr("10.85.2.1/24"); v.peer.addr("fd85::3/64");"#
);
case!(
    route,
    "",
    "",
    r#"a.route("10.86.0.0/16", "10.85.0.1"); a.route("default", "10.85.0.1");"#,
    r#"a.route("10.86.0.0/16", "10.85.0.9"); a.route("10.87.0.0/16", "10.85.0.1");"#
);
case!(
    sysctl,
    "",
    "",
    r#"a.sysctl("net.ipv4.conf.all.rp_filter", "1"); host().sysctl("net.ipv4.conf.all.rp_filter", "1");"#,
    r#"a.sysctl("net.ipv4.conf.all.rp_filter", "2"); host().sysctl("net.ipv4.conf.default.rp_filter", "2");"#
);
case!(
    dnat_mapping,
    "",
    "",
    r#"dnat(8090, "10.85.0.2:80");"#,
    r#"dnat(8090, "10.85.0.2:81"); dnat(#{ port: 8091, to: "10.85.0.2:80", proto: "udp" });"#
);
case!(
    link_mtu,
    "",
    r#"let m = veth("mm0", "mm1");"#,
    "m.mtu(1400);",
    "m.mtu(1300);"
);
case!(
    link_up,
    "",
    r#"let u = veth("mu0", a, "mu1");"#,
    "u.up(); u.peer.up();",
    "u.down();"
);
case!(
    link_master,
    "",
    r#"let b1 = bridge("mbr1"); let b2 = bridge("mbr2"); let p = veth("mp0", "mp1");"#,
    "b1.attach(p);",
    "b2.attach(p);"
);
case!(
    bridge_stp,
    "",
    r#"let sb = bridge("mst0");"#,
    "sb.stp(true);",
    "sb.stp(false);"
);
case!(
    link_rename,
    "",
    r#"let r = veth("mr0", "mr1");"#,
    r#"r.peer.rename("mr2");"#,
    r#"r.peer.rename("mr3");"#
);
case!(
    adopted_device,
    "ip link add md0 type veth peer name md0p",
    "",
    r#"host().link("md0").rename("md9").mtu(1400).up();"#,
    r#"host().link("md0").move_to(a).rename("md8");"#
);
