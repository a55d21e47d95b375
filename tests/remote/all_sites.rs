//! `--all-sites` over simulated machines (issue 19, acceptance 3 and 4):
//! three machines, the driver in the test's sandbox, `NETPLUMB_SSH` the
//! stand-in that enters the named machine.

use std::process::{Output, Stdio};

use crate::common::machines::{Machine, machines, ssh_script};
use crate::common::{BIN, Sandbox, kstate, text};

/// Everything a user could check on a machine: its namespaces, per
/// namespace links, addresses, routes and nft ruleset, and netplumb's
/// records (not the lock files any run leaves).
fn snap(sb: &Sandbox, m: &Machine) -> String {
    m.ok(
        sb,
        "for ns in '' $(ip netns list | cut -d' ' -f1 | sort); do \
           if [ -z \"$ns\" ]; then p=''; echo '== host'; else p=\"-n $ns\"; echo \"== $ns\"; fi; \
           ip $p -d -br link | sed 's/  */ /g' | cut -d' ' -f1,2,4 | sort; \
           ip $p -br addr | sed 's/  */ /g' | cut -d' ' -f1,3- | sort; \
           ip $p route | sort; ip $p -6 route | grep -v '^fe80' | sort; \
           if [ -z \"$ns\" ]; then nft list ruleset 2>/dev/null; \
           else ip netns exec $ns nft list ruleset 2>/dev/null; fi; \
         done; echo '== records'; find /run/netplumb -type f ! -name '*.lock' | sort",
    )
}

/// [`snap`] once it equals `want`, or after 10 s: a deleted namespace's
/// devices (a veth's peer in the host) go with it a moment later, as the
/// kernel cleans the namespace up in the background.
fn settled(sb: &Sandbox, m: &Machine, want: &str) -> String {
    let t0 = std::time::Instant::now();
    loop {
        let now = snap(sb, m);
        if now == want || t0.elapsed().as_secs() >= 10 {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

const SITES: &str = r#"let east = site("east", #{ underlay: "192.0.2.1" });
let west = site("west", #{ underlay: "192.0.2.2" });
let north = site("north", #{ underlay: "192.0.2.3", ssh: "root@north" });
import "lib/lan" as lan;
let e = lan::pair(east, "e", 1);
let w = lan::pair(west, "w", 2);
let n = lan::pair(north, "n", 3);
stretch(e, w, n);
"#;

const LAN: &str = r#"// On site s: namespaces a and b with a veth between them, and a on the
// site's bridge lan0 (which the script stretches over every site).
fn pair(s, tag, i) {
  let a = s.netns(`${tag}a`);
  let b = s.netns(`${tag}b`);
  let v = a.veth("eth0", b, "eth0");
  v.addr(`10.${i}.0.1/24`).up();
  v.peer.addr(`10.${i}.0.2/24`).up();
  let br = s.bridge("lan0");
  br.up();
  let l = a.veth("eth1", s.host(), `${tag}a-lan`);
  l.addr(`10.99.0.${i}/24`).up();
  br.attach(l.peer);
  l.peer.up();
  br
}
"#;

/// Three machines, the ssh stand-in, and the script (with its module in
/// lib/) in the sandbox's scratch directory.
fn three(sb: &Sandbox) -> (Vec<Machine>, String, String) {
    let ms = machines(sb, &["east", "west", "north"]);
    let ssh = ssh_script(sb, &ms);
    std::fs::create_dir_all(sb.dir.path().join("lib")).expect("lib dir");
    sb.script("lib/lan.rhai", LAN);
    let file = sb.script("three.rhai", SITES);
    (ms, ssh, file)
}

fn driver(sb: &Sandbox, ssh: &str, args: &[&str]) -> Output {
    sb.cmd(BIN)
        .env("NETPLUMB_SSH", ssh)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("netplumb")
}

#[test]
fn up_all_sites_builds_every_site_with_prefixed_output() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(
        &sb,
        &ssh,
        &["-v", "up", &file, "--all-sites", "--set", "unused=1"],
    );
    let out = text(&o.stdout);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    // What each site was asked to run (-v), --set passed along.
    let north = format!(
        "netplumb: [north] {ssh} root@north netplumb -v up - --site north --name three --hold --set unused=1\n"
    );
    assert!(err.contains(&north), "{err}");
    assert!(err.contains("[west] READY (holding)"), "{err}");
    for (m, tag, i) in [(&ms[0], "e", 1), (&ms[1], "w", 2), (&ms[2], "n", 3)] {
        let name = &m.name;
        assert!(out.contains(&format!("[{name}] + netns {tag}a\n")), "{out}");
        assert!(
            out.contains(&format!("[{name}] topology 'three': ")),
            "{out}"
        );
        let a = m.ok(&sb, &format!("ip -n {tag}a -br addr show dev eth0"));
        assert!(a.contains(&format!("10.{i}.0.1/24")), "{name}: {a}");
        m.ok(
            &sb,
            &format!("ip netns exec {tag}a ping -c1 -W2 10.{i}.0.2"),
        );
        // Only its own part: no other site's namespaces.
        let nss = m.ok(&sb, "ip netns list | cut -d' ' -f1 | sort | tr '\\n' ' '");
        assert_eq!(nss, format!("{tag}a {tag}b "), "{name}");
    }
    // The stretched bridge joins the three machines: every pair reaches.
    for (m, tag) in [(&ms[0], "e"), (&ms[1], "w"), (&ms[2], "n")] {
        for i in 1..=3 {
            m.ok(
                &sb,
                &format!("ip netns exec {tag}a ping -c1 -W5 10.99.0.{i} >/dev/null"),
            );
        }
    }
    assert!(
        out.contains("topology 'three': up on all 3 sites (east, west, north)"),
        "{out}"
    );
    // Again: every site is up to date.
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    for m in &ms {
        let want = format!("[{}] topology 'three': no changes", m.name);
        assert!(out.contains(&want), "{out}");
    }
    // The driver's own machine is untouched.
    assert_eq!(sb.ok("ip netns list"), "");
}

#[test]
fn a_failure_on_one_site_leaves_none_of_them_changed() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    // A foreign device holds the bridge's name on north.
    ms[2].ok(&sb, "ip link add lan0 type veth peer name lan0-p");
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    // The report, as one line (miette wraps it).
    let one = err
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        one.contains(
            "site north failed: netns host already has lan0, and it is a veth, not a bridge"
        ),
        "{err}"
    );
    assert!(one.contains("; east, west rolled back"), "{err}");
    // north's own report, prefixed; east and west built their part, held
    // it, and were told to roll back.
    assert!(
        err.contains("[north]   × netns host already has lan0"),
        "{err}"
    );
    for m in ["east", "west"] {
        let said = format!("[{m}] netplumb: ABORT: the changes are rolled back");
        assert!(err.contains(&said), "{err}");
    }
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(
            &settled(&sb, m, b),
            b,
            &format!("{} after the failed up", m.name),
        );
    }
}

#[test]
fn a_vni_refused_on_one_site_leaves_none_of_them_changed() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    // The stretch's VNI, as plan gives it; a foreign vxlan on north holds it.
    let plan = sb.np_ok(&["plan", &file]);
    let vni = plan
        .split_whitespace()
        .skip_while(|w| *w != "vxlan")
        .nth(2)
        .expect("a vxlan id in the plan")
        .to_string();
    ms[2].ok(
        &sb,
        &format!("ip link add vxforeign type vxlan id {vni} dstport 4789 local 192.0.2.3"),
    );
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    let one = err
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(one.contains("site north failed: "), "{err}");
    assert!(one.contains(&vni) && one.contains("vxforeign"), "{err}");
    assert!(one.contains("; east, west rolled back"), "{err}");
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(
            &settled(&sb, m, b),
            b,
            &format!("{} after the refused VNI", m.name),
        );
    }
}

#[test]
fn down_all_sites_leaves_all_three_as_before() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_ne!(snap(&sb, &ms[1]), before[1]);
    let o = driver(&sb, &ssh, &["down", &file, "--all-sites"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    for m in &ms {
        assert!(
            out.contains(&format!("[{}] topology 'three': removed ", m.name)),
            "{out}"
        );
    }
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(
            &settled(&sb, m, b),
            b,
            &format!("{} after down --all-sites", m.name),
        );
    }
    // --name names the topology; the script still names the sites. And
    // NETPLUMB_SSH is split on whitespace (a command with its options).
    let sh_ssh = format!("sh  {ssh}");
    let o = driver(
        &sb,
        &sh_ssh,
        &["up", &file, "--all-sites", "--name", "other"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = driver(
        &sb,
        &sh_ssh,
        &["down", "--name", "other", &file, "--all-sites"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    for (m, b) in ms.iter().zip(&before) {
        kstate::assert_same(
            &settled(&sb, m, b),
            b,
            &format!("{} after down --name", m.name),
        );
    }
}

#[test]
fn down_all_sites_names_the_site_that_failed() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // west cannot be reached any more.
    let ssh2 = sb.script(
        "ssh-no-west",
        &format!(
            "#!/bin/sh\ncase \"$1\" in west|*@west) echo 'ssh: connect to host west: No route to host' >&2; exit 255 ;; esac\nexec {ssh} \"$@\"\n"
        ),
    );
    sb.ok(&format!("chmod +x {ssh2}"));
    let o = driver(&sb, &ssh2, &["down", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    // (miette wraps the report: compare it as one line)
    let one: Vec<&str> = err.split_whitespace().filter(|w| *w != "│").collect();
    let want = "site west failed: ssh: connect to host west: No route to host; down succeeded on east, north";
    assert!(one.join(" ").contains(want), "{err}");
    assert_eq!(ms[0].ok(&sb, "ip netns list"), "");
    assert_ne!(ms[1].ok(&sb, "ip netns list"), "");
}

#[test]
fn ping_all_all_sites_runs_on_every_site_and_fails_when_one_does() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = driver(&sb, &ssh, &["ping-all", &file, "--all-sites"]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    for m in &ms {
        assert!(
            out.contains(&format!("[{}] ping-all: topology three: ", m.name)),
            "{out}"
        );
    }
    // Each site pings the other sites' addresses too, across the stretch.
    let east: String = out
        .lines()
        .filter(|l| l.starts_with("[east] "))
        .collect::<Vec<_>>()
        .join("\n");
    for want in [
        "eth1@west",
        "eth1@north",
        "10.99.0.2",
        "10.99.0.3",
        "10.2.0.1",
    ] {
        assert!(east.contains(want), "{want}: {east}");
    }
    // wa's leg on lan0 down, on west: east and north no longer reach it.
    ms[1].ok(&sb, "ip -n wa link set eth1 down");
    let o = driver(&sb, &ssh, &["ping-all", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.contains("site east failed: "), "{err}");
    assert!(err.contains("site north failed: "), "{err}");
    ms[1].ok(&sb, "ip -n wa link set eth1 up");
    // A link down on north: its ping-all fails, and so does the whole.
    ms[2].ok(&sb, "ip -n na link set eth0 down");
    let o = driver(&sb, &ssh, &["ping-all", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{}{err}", text(&o.stdout));
    assert!(err.contains("site north failed: "), "{err}");
    assert!(err.contains("ping-all succeeded on east, west"), "{err}");
}

#[test]
fn a_driver_killed_while_sites_hold_leaves_them_as_before() {
    let sb = Sandbox::new();
    let (ms, ssh, file) = three(&sb);
    let before: Vec<String> = ms.iter().map(|m| snap(&sb, m)).collect();
    // north never answers: east and west build their part and hold.
    let hang = sb.script(
        "ssh-north-hangs",
        &format!("#!/bin/sh\ncase \"$1\" in *north) exec sleep 20 ;; esac\nexec {ssh} \"$@\"\n"),
    );
    sb.ok(&format!("chmod +x {hang}"));
    let mut d = sb
        .cmd(BIN)
        .env("NETPLUMB_SSH", &hang)
        .args(["up", &file, "--all-sites"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("driver");
    let t0 = std::time::Instant::now();
    while !ms[1].ok(&sb, "ip netns list").contains("wb") {
        assert!(t0.elapsed().as_secs() < 20, "west never built its part");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    d.kill().expect("kill driver");
    let _ = d.wait();
    // The held sites see EOF where COMMIT would come: they roll back.
    for (m, b) in ms.iter().zip(&before).take(2) {
        kstate::assert_same(
            &settled(&sb, m, b),
            b,
            &format!("{} after the driver died", m.name),
        );
    }
}

#[test]
fn all_sites_of_a_script_without_sites_or_with_site_is_refused() {
    let sb = Sandbox::new();
    let file = sb.script("plain.rhai", "netns(\"pa\");\n");
    // No machine: an ssh that is called at all fails the test.
    let ssh = sb.script("no-ssh", "#!/bin/sh\necho called >&2\nexit 99\n");
    sb.ok(&format!("chmod +x {ssh}"));
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--all-sites: plain.rhai declares no site(): nothing to run elsewhere"),
        "{err}"
    );
    assert!(!err.contains("called"), "{err}");
    assert_eq!(sb.ok("ip netns list"), "");
    let o = driver(&sb, &ssh, &["up", &file, "--all-sites", "--site", "east"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}
