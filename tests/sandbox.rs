//! Lasting sandbox worlds: `sandbox start`, `--sandbox=WORLD` commands,
//! `sandbox shell`, `sandbox stop`, `sandbox list`, as the unprivileged
//! user nobody and as root. Every test has a registry of its own (its own
//! XDG_RUNTIME_DIR), so they run in parallel. A world is its own network
//! namespace: the tests check that the machine's own namespace never sees
//! what was built inside, and that after `stop` no process of the world is
//! left (read from /proc by namespace, not from netplumb's word).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::tempdir::TempDir;
use common::{BIN, root, script_path, text};

/// Who runs netplumb, with a registry directory of its own. The holders it
/// started are killed when it drops, so a failing test leaves no world.
struct User {
    nobody: bool,
    xdg: TempDir,
    holders: std::cell::RefCell<Vec<i32>>,
}

impl Drop for User {
    fn drop(&mut self) {
        for pid in self.holders.borrow().iter() {
            let p = pid.to_string();
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            if cmd.starts_with(b"netplumb\0sandbox\0hold\0") && state(&p) != Some('Z') {
                // SIGKILL of a PID namespace's first process ends them all.
                let _ = Command::new("kill").args(["-KILL", &p]).status();
            }
        }
    }
}

impl User {
    fn new(nobody: bool) -> Self {
        let xdg = TempDir::new();
        if nobody {
            std::os::unix::fs::chown(xdg.path(), Some(65534), Some(65534)).unwrap();
        }
        std::fs::set_permissions(xdg.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        Self {
            nobody,
            xdg,
            holders: Default::default(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = if self.nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
                .arg(BIN);
            c
        } else {
            Command::new(BIN)
        };
        c.args(args)
            .env("XDG_RUNTIME_DIR", self.xdg.path())
            .env_remove("NETPLUMB_SANDBOX")
            .env_remove("NETPLUMB_STATE_DIR")
            .current_dir(root())
            .stdin(Stdio::null());
        c
    }

    fn np(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("netplumb")
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.np(args);
        assert!(
            o.status.success(),
            "netplumb {args:?} failed:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn registry(&self) -> PathBuf {
        self.xdg.path().join("netplumb/sandbox")
    }

    /// `sandbox start WORLD`; the holder's pid it reports.
    fn start(&self, world: &str) -> i32 {
        let out = self.ok(&["sandbox", "start", world]);
        let want = format!("sandbox world '{world}' started (holder pid ");
        let rest = out
            .lines()
            .find_map(|l| l.strip_prefix(&want))
            .unwrap_or_else(|| panic!("{out}"));
        let pid = rest.trim_end_matches(')').parse().expect("pid");
        self.holders.borrow_mut().push(pid);
        pid
    }
}

fn ns(pid: &str, kind: &str) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()
}

fn state(pid: &str) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

/// Every process whose PID or network namespace is one of the world's,
/// as (pid, state, command line).
fn world_processes(pidns: &Path, netns: &Path) -> Vec<(String, char, String)> {
    let mut out = Vec::new();
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let p = d.file_name().to_string_lossy().into_owned();
        if !p.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let inside =
            ns(&p, "pid").as_deref() == Some(pidns) || ns(&p, "net").as_deref() == Some(netns);
        if inside {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .unwrap_or_default();
            out.push((p.clone(), state(&p).unwrap_or('?'), cmd));
        }
    }
    out
}

fn wait_exit(c: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(st) = c.try_wait().unwrap() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The whole life of a world, with the four commands of the README.
fn lifecycle(u: &User) {
    let seed = script_path("scripts/seed.rhai");
    let holder = u.start("w").to_string();
    let me = std::process::id().to_string();
    // The holder keeps namespaces of its own: network, PID, mount, and a
    // user namespace exactly when not root.
    for kind in ["net", "pid", "mnt"] {
        assert_ne!(ns(&holder, kind), ns(&me, kind), "{kind} namespace shared");
    }
    assert_eq!(ns(&holder, "user") != ns(&me, "user"), u.nobody);
    let status = std::fs::read_to_string(format!("/proc/{holder}/status")).unwrap();
    let uid = if u.nobody { "65534" } else { "0" };
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some(uid)),
        "{status}"
    );
    let pidns = ns(&holder, "pid").unwrap();
    let netns = ns(&holder, "net").unwrap();

    // Whether seed's own single ping got through right after carrier is
    // seed's business; ping-all below is the reachability check.
    let up = u.ok(&["--sandbox=w", "up", &seed]);
    assert!(
        up.contains("topology 'seed': 6 created, 4 changed, 0 removed"),
        "{up}"
    );
    let again = u.ok(&["--sandbox=w", "up", &seed]);
    assert!(again.contains("no changes"), "{again}");
    let show = u.ok(&["--sandbox=w", "show"]);
    assert!(
        show.contains("foobr0") && show.contains("netns foons"),
        "{show}"
    );
    // A fresh bridge port under load may miss an echo ("carrier up is not
    // ready"); the world itself is what this checks, so allow retries.
    let mut pa = u.np(&["--sandbox=w", "ping-all"]);
    for _ in 0..2 {
        if pa.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
        pa = u.np(&["--sandbox=w", "ping-all"]);
    }
    assert!(
        pa.status.success() && text(&pa.stdout).contains("every pair that should reach does"),
        "{}{}",
        text(&pa.stdout),
        text(&pa.stderr)
    );
    // Nothing of it on the machine: not the bridge, not the namespace.
    let o = Command::new("ip")
        .args(["link", "show", "foobr0"])
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "foobr0 leaked into the machine's namespace"
    );
    assert!(!Path::new("/run/netns/foons").exists());

    // Processes left behind: a background child of `exec`, one that made
    // a session of its own, and a netplumb still running inside.
    u.ok(&[
        "--sandbox=w",
        "exec",
        "foons",
        "--",
        "sh",
        "-c",
        "sleep 1000 >/dev/null 2>&1 &",
    ]);
    u.ok(&[
        "--sandbox=w",
        "exec",
        "foons",
        "--",
        "setsid",
        "sh",
        "-c",
        "sleep 1001 >/dev/null 2>&1 &",
    ]);
    let mut running = u
        .cmd(&["--sandbox=w", "exec", "foons", "--", "sleep", "1002"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let count_sleeps = || {
        world_processes(&pidns, &netns)
            .iter()
            .filter(|(_, _, c)| c.starts_with("sleep 100"))
            .count()
    };
    while count_sleeps() < 3 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(count_sleeps(), 3, "{:?}", world_processes(&pidns, &netns));

    let down = u.ok(&["--sandbox=w", "down", &seed]);
    assert!(down.contains("topology 'seed': removed"), "{down}");
    let stop = u.ok(&["sandbox", "stop", "w"]);
    assert!(stop.contains("sandbox world 'w' stopped"), "{stop}");

    // Nothing of the world is left. The holder may linger as a zombie for
    // its parent to reap (PID 1 of some containers never does); a zombie
    // has already let go of every namespace.
    let left: Vec<_> = world_processes(&pidns, &netns)
        .into_iter()
        .filter(|(p, st, _)| !(*p == holder && *st == 'Z'))
        .collect();
    assert!(left.is_empty(), "left in the world: {left:?}");
    assert!(matches!(state(&holder), None | Some('Z')));
    let st = wait_exit(&mut running, Duration::from_secs(5))
        .expect("the netplumb running inside outlived its world");
    assert!(!st.success());
    assert!(!u.registry().join("w.json").exists());
    assert_eq!(u.ok(&["sandbox", "list"]), "no sandbox worlds running\n");
    let o = u.np(&["--sandbox=w", "show"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no sandbox world 'w'"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_world_lasts_across_commands_as_an_unprivileged_user() {
    lifecycle(&User::new(true));
}

#[test]
fn a_world_lasts_across_commands_as_root() {
    lifecycle(&User::new(false));
}

#[test]
fn shell_runs_inside_the_world_and_passes_its_status() {
    let u = User::new(true);
    let holder = u.start("sh1").to_string();
    let mut c = u
        .cmd(&["sandbox", "shell", "sh1"])
        .env("SHELL", "/bin/sh")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(
            b"readlink /proc/self/ns/net; echo $NETPLUMB_SANDBOX; id -u; \
              tr '\\0' ' ' < /proc/1/cmdline; echo; exit 3\n",
        )
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    let net = ns(&holder, "net").unwrap();
    assert_eq!(lines[0], net.to_str().unwrap());
    assert_eq!(lines[1], "sh1");
    // Root inside its own user namespace, nobody outside.
    assert_eq!(lines[2], "0");
    // The world's own /proc: PID 1 there is the holder.
    assert_eq!(lines[3].trim(), "netplumb sandbox hold sh1");
    u.ok(&["sandbox", "stop", "sh1"]);
}

#[test]
fn capture_works_inside_a_world_without_root() {
    let u = User::new(true);
    u.start("cap");
    u.ok(&["--sandbox=cap", "up", &script_path("scripts/seed.rhai")]);
    let mut c = u
        .cmd(&["--sandbox=cap", "capture", "foons:eth0", "--duration", "4s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(c.stderr.take().unwrap());
    let mut first = String::new();
    err.read_line(&mut first).unwrap();
    assert_eq!(first, "capturing on foons:eth0\n");
    u.ok(&[
        "--sandbox=cap",
        "exec",
        "foons",
        "--",
        "ping",
        "-c",
        "1",
        "172.18.0.1",
    ]);
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    let out = text(&o.stdout);
    // ping(8)'s echoes are 98 bytes (seed's own probe, which may still
    // sit in the ARP queue, is 50).
    let icmp: Vec<&str> = out
        .lines()
        .filter(|l| l.contains(" ICMP ") && l.contains(" 98 "))
        .collect();
    assert_eq!(icmp.len(), 2, "{out}");
    assert!(
        icmp[0].contains("foons:eth0 out")
            && icmp[0].contains("ICMP 172.18.0.20 > 172.18.0.1 echo request")
    );
    assert!(
        icmp[1].contains("foons:eth0 in")
            && icmp[1].contains("ICMP 172.18.0.1 > 172.18.0.20 echo reply")
    );
    u.ok(&["sandbox", "stop", "cap"]);
}

#[test]
fn a_reused_pid_is_never_taken_for_a_holder() {
    let u = User::new(false);
    u.ok(&["sandbox", "list"]);
    // An unrelated live process under the pid a dead holder had.
    let mut other = Command::new("sleep").arg("60").spawn().unwrap();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let entry = format!(
        r#"{{"world":"ghost","pid":{},"start_ticks":1,"boot_id":"{}","started":0}}"#,
        other.id(),
        boot.trim()
    );
    let plant = || std::fs::write(u.registry().join("ghost.json"), &entry).unwrap();

    plant();
    let o = u.np(&["--sandbox=ghost", "show"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no sandbox world 'ghost'"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        !u.registry().join("ghost.json").exists(),
        "stale entry kept"
    );

    plant();
    let out = u.ok(&["sandbox", "stop", "ghost"]);
    assert!(out.contains("was not running"), "{out}");

    plant();
    let o = u.np(&["sandbox", "list"]);
    assert!(
        text(&o.stderr).contains("forgot sandbox world 'ghost'"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(text(&o.stdout), "no sandbox worlds running\n");

    plant();
    u.start("ghost");
    u.ok(&["sandbox", "stop", "ghost"]);
    assert!(
        other.try_wait().unwrap().is_none(),
        "an unrelated process was signalled"
    );
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn the_registry_is_private_and_follows_no_symlink() {
    let u = User::new(true);
    let pid = u.start("r");
    let dir = std::fs::metadata(u.registry()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    assert_eq!(dir.uid(), 65534);
    let f = std::fs::symlink_metadata(u.registry().join("r.json")).unwrap();
    assert!(f.is_file());
    assert_eq!(f.mode() & 0o777, 0o600);
    assert_eq!(f.uid(), 65534);
    let list = u.ok(&["sandbox", "list"]);
    let row: Vec<&str> = list.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..2], ["r", pid.to_string().as_str()], "{list}");
    assert!(row[2].ends_with('s'), "{list}");
    u.ok(&["sandbox", "stop", "r"]);

    let v = User::new(false);
    let elsewhere = TempDir::new();
    std::os::unix::fs::symlink(elsewhere.path(), v.xdg.path().join("netplumb")).unwrap();
    let o = v.np(&["sandbox", "start", "s"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("a symlink?"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[test]
fn usage_and_conflicts() {
    let u = User::new(true);
    let o = u.np(&["--sandbox=w", "sandbox", "list"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let o = u.np(&["sandbox", "start", "../x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("is not a sandbox world name"));
    let o = u.np(&["--sandbox=nope", "show"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("sandbox start nope"),
        "{}",
        text(&o.stderr)
    );
    u.start("twice");
    let o = u.np(&["sandbox", "start", "twice"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("already running"),
        "{}",
        text(&o.stderr)
    );
    // Plain --sandbox still means the one-command throwaway sandbox.
    let o = u.np(&["--sandbox", "up", &script_path("scripts/seed.rhai")]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("topology 'seed': 6 created, 4 changed, 0 removed"));
    // …and it did not land in the world.
    let show = u.ok(&["--sandbox=twice", "show"]);
    assert!(!show.contains("foons"), "{show}");
    u.ok(&["sandbox", "stop", "twice"]);
}
