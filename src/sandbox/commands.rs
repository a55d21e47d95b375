//! `sandbox start`, `stop`, `list` and `shell`.

use super::*;

pub struct Ctx {
    pub quiet: bool,
    pub json: bool,
}

pub fn run(c: &SandboxCmd, cx: &Ctx) -> Result<i32, SandboxError> {
    match c {
        SandboxCmd::Start { world } => start(world, cx),
        SandboxCmd::Stop { world } => stop(world, cx),
        SandboxCmd::List => list(cx),
        SandboxCmd::Shell { world } => shell(world, cx),
        // `early` never returns for the holder.
        SandboxCmd::Hold { world } => Err(SandboxError::Holder {
            world: world.clone(),
            err: "hold runs only at start".into(),
        }),
    }
}

pub(super) fn start(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    check_world(world)?;
    let reg = Registry::open()?;
    reg.lock()?;
    if let Some(old) = reg.read(world)? {
        if old.holder().is_some() {
            return Err(SandboxError::Running {
                world: world.into(),
                pid: old.pid,
                age: old.age(),
            });
        }
        reg.remove(world);
    }
    use std::os::unix::process::CommandExt;
    let herr = |err: String| SandboxError::Holder {
        world: world.into(),
        err,
    };
    let mut child = Command::new("/proc/self/exe")
        .arg0("netplumb")
        .args([OsStr::new("sandbox"), OsStr::new("hold"), OsStr::new(world)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .current_dir("/")
        .env_remove("NETPLUMB_SANDBOX")
        .spawn()
        .map_err(|x| herr(x.to_string()))?;
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        // EOF once the first holder exited and PID 1 said ready (or died).
        let _ = so.read_to_string(&mut out);
    }
    let _ = child.wait();
    let mut pid = None;
    let mut ready = false;
    for l in out.lines() {
        if let Some(x) = l.strip_prefix("error: ") {
            return Err(herr(x.to_string()));
        }
        if let Some(p) = l.strip_prefix("pid ") {
            pid = p.trim().parse::<i32>().ok();
        }
        ready |= l == "ready";
    }
    let (Some(pid), true) = (pid, ready) else {
        return Err(herr(format!("it said {:?}", out.trim())));
    };
    let fd = pidfd_open(pid).ok_or_else(|| herr("it died at once".into()))?;
    let (_, start_ticks) = proc_stat(pid).ok_or_else(|| herr("it died at once".into()))?;
    let entry = Entry {
        world: world.into(),
        pid,
        start_ticks,
        boot_id: boot_id(),
        started: now_unix(),
    };
    if !reg.create(&entry)? {
        pidfd_signal(&fd, libc::SIGKILL);
        return Err(SandboxError::Running {
            world: world.into(),
            pid,
            age: "0s".into(),
        });
    }
    if cx.json {
        println!("{}", serde_json::json!({ "world": world, "pid": pid }));
    } else if !cx.quiet {
        println!("sandbox world '{world}' started (holder pid {pid})");
        println!("  netplumb --sandbox={world} up FILE.rhai   # any command, inside it");
        println!("  netplumb sandbox shell {world}            # a shell inside it");
        println!("  netplumb sandbox stop {world}             # end it and everything in it");
    }
    Ok(0)
}

pub(super) fn stop(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    check_world(world)?;
    let reg = Registry::open()?;
    reg.lock()?;
    let entry = reg
        .read(world)?
        .ok_or_else(|| SandboxError::NoWorld(world.into()))?;
    let Some(fd) = entry.holder() else {
        reg.remove(world);
        if !cx.quiet {
            println!("sandbox world '{world}' was not running (its holder had died); forgot it");
        }
        return Ok(0);
    };
    let t0 = Instant::now();
    // The holder asks everything to end and waits up to 3 s; then the
    // kernel kills the rest. The pidfd turns readable only once every
    // process of the world's PID namespace is gone.
    pidfd_signal(&fd, libc::SIGTERM);
    if !pidfd_wait(&fd, Duration::from_secs(6)) {
        pidfd_signal(&fd, libc::SIGKILL);
        if !pidfd_wait(&fd, Duration::from_secs(5)) {
            return Err(SandboxError::Stuck {
                world: world.into(),
                pid: entry.pid,
            });
        }
    }
    reg.remove(world);
    if !cx.quiet {
        println!(
            "sandbox world '{world}' stopped in {:.2?}, with everything in it",
            t0.elapsed()
        );
    }
    Ok(0)
}

pub(super) fn list(cx: &Ctx) -> Result<i32, SandboxError> {
    let reg = Registry::open()?;
    reg.lock()?;
    let mut rows = Vec::new();
    for w in reg.worlds()? {
        let Some(entry) = reg.read(&w)? else { continue };
        if entry.holder().is_some() {
            rows.push(entry);
        } else {
            reg.remove(&w);
            if !cx.quiet && !cx.json {
                eprintln!(
                    "forgot sandbox world '{w}': its holder (pid {}) is gone",
                    entry.pid
                );
            }
        }
    }
    if cx.json {
        let v: Vec<_> = rows
            .iter()
            .map(|e| {
                serde_json::json!({
                    "world": e.world,
                    "pid": e.pid,
                    "started": e.started,
                    "age_s": now_unix().saturating_sub(e.started),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(0);
    }
    if rows.is_empty() {
        if !cx.quiet {
            println!("no sandbox worlds running");
        }
        return Ok(0);
    }
    let wide = rows.iter().map(|e| e.world.len()).max().unwrap_or(5).max(5);
    println!("{:<wide$}  {:>8}  AGE", "WORLD", "PID");
    for e in &rows {
        println!("{:<wide$}  {:>8}  {}", e.world, e.pid, e.age());
    }
    Ok(0)
}

/// Already inside the world (`early` entered it): become the user's shell.
pub(super) fn shell(world: &str, cx: &Ctx) -> Result<i32, SandboxError> {
    use std::os::unix::process::CommandExt;
    let shell = std::env::var_os("SHELL")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "/bin/sh".into());
    if !cx.quiet && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        eprintln!(
            "inside sandbox world '{world}' (exit to leave it running; `netplumb sandbox stop {world}` ends it)"
        );
    }
    let err = Command::new(&shell).exec();
    Err(SandboxError::Shell {
        shell: String::from_utf8_lossy(shell.as_bytes()).into_owned(),
        err: err.to_string(),
    })
}
