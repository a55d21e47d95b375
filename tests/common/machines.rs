//! Several "machines" on this one, for the sites tests (issue 19): inside
//! the test's own sandbox, each machine is a network namespace with its own
//! mount namespace and its own /run (so its own /run/netns and netplumb
//! records), held by an `unshare … sleep` process. The machines are joined
//! by an underlay bridge `ul0` in the sandbox's namespace, machine `i`
//! (from 1) having `eth0` with 192.0.2.i/24. `ssh_script()` writes a
//! stand-in for ssh that enters the named machine: `NETPLUMB_SSH=that`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use super::{BIN, Sandbox, text};

pub struct Machine {
    pub name: String,
    /// The underlay address other machines reach this one on.
    pub underlay: String,
    pid: u32,
    holder: Child,
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// Start one machine per name, joined by `ul0` (MTU 1500).
pub fn machines(sb: &Sandbox, names: &[&str]) -> Vec<Machine> {
    sb.ok("ip link add ul0 type bridge && ip link set ul0 up");
    let mut out = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut holder = sb
            .cmd("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
            ])
            .arg(
                "mount -t tmpfs none /run && mkdir -p /run/netns /run/netplumb && \
                 mount -t sysfs none /sys 2>/dev/null; ip link set lo up && \
                 echo $$ && exec sleep 3600",
            )
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("machine start");
        // The pid as the sandbox sees it (unshare's child shell, in the
        // sandbox's pid namespace, which is the test's).
        let pid: u32 = line.trim().parse().expect("machine pid");
        let n = i + 1;
        let underlay = format!("192.0.2.{n}");
        sb.ok(&format!(
            "ip link add ul-{name} type veth peer name eth0 netns /proc/{pid}/ns/net && \
             ip link set ul-{name} master ul0 up"
        ));
        let m = Machine {
            name: name.to_string(),
            underlay: underlay.clone(),
            pid,
            holder,
        };
        let o = m.sh(
            sb,
            &format!("ip addr add {underlay}/24 dev eth0 && ip link set eth0 up"),
        );
        assert!(o.status.success(), "machine {name}: {}", text(&o.stderr));
        out.push(m);
    }
    // The underlay answers before the tests build on it.
    for m in &out {
        for other in &out {
            if other.name != m.name {
                let o = m.sh(sb, &format!("ping -c1 -W5 {} >/dev/null", other.underlay));
                assert!(o.status.success(), "underlay {} → {}", m.name, other.name);
            }
        }
    }
    out
}

impl Machine {
    /// A command inside this machine (nested in the sandbox).
    pub fn cmd(&self, sb: &Sandbox, prog: &str) -> Command {
        let mut c = sb.cmd("nsenter");
        c.args(["-t", &self.pid.to_string(), "-n", "-m", "--", prog]);
        c
    }

    pub fn sh(&self, sb: &Sandbox, script: &str) -> Output {
        self.cmd(sb, "sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("nsenter")
    }

    /// A shell snippet that must succeed; its stdout.
    pub fn ok(&self, sb: &Sandbox, script: &str) -> String {
        let o = self.sh(sb, script);
        assert!(
            o.status.success(),
            "{}: `{script}` failed: {}{}",
            self.name,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// netplumb on this machine.
    pub fn np(&self, sb: &Sandbox, args: &[&str]) -> Output {
        self.cmd(sb, BIN)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("netplumb")
    }

    pub fn np_ok(&self, sb: &Sandbox, args: &[&str]) -> String {
        let o = self.np(sb, args);
        assert!(
            o.status.success(),
            "{}: netplumb {args:?} failed:\n{}{}",
            self.name,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }
}

/// A stand-in for ssh: `SCRIPT TARGET CMD…` runs CMD in the machine named
/// TARGET (`root@east` and `east` both name `east`), `netplumb` being this
/// build's binary. Returns the script's path, for `NETPLUMB_SSH`.
pub fn ssh_script(sb: &Sandbox, machines: &[Machine]) -> String {
    let mut cases = String::new();
    for m in machines {
        cases.push_str(&format!("  {n}|*@{n}) pid={p} ;;\n", n = m.name, p = m.pid));
    }
    let body = format!(
        "#!/bin/sh\n\
         target=$1; shift\n\
         case \"$target\" in\n{cases}  *) echo \"ssh: no machine $target\" >&2; exit 255 ;;\n\
         esac\n\
         [ \"$1\" = netplumb ] && {{ shift; set -- {BIN} \"$@\"; }}\n\
         exec nsenter -t \"$pid\" -n -m -- \"$@\"\n"
    );
    let p = sb.script("fake-ssh", &body);
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod fake-ssh");
    p
}
