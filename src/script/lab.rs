//! A lab's processes and its checks: `ns.daemon(cmd, #{ … })` declares a
//! long-lived process in a namespace; `assert_reach(from, target)` and
//! `assert_no_reach(from, target)` declare reachability checks run once
//! the topology is up.

use std::path::PathBuf;

use rhai::{Array, Dynamic, EvalAltResult, Map, NativeCallContext};

mod docs;

use super::api::NsHandle;
use super::registry::Reg;
use super::{SharedRunner, fail, lock, pos_of};
use crate::model::NsRef;
use crate::proc::{Argv, Ready};
use crate::run::{Assertion, Target};
use crate::topo::{DaemonDecl, FileDecl};

type R<T> = Result<T, Box<EvalAltResult>>;

/// A daemon as scripts see it: `p.name`.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonHandle {
    pub name: String,
    pub ns: NsRef,
}

const OPTIONS: &str = "name, ready, env, cwd, log";

fn argv_of(ctx: &NativeCallContext, cmd: &Dynamic) -> R<Argv> {
    let argv = if let Some(s) = cmd.read_lock::<rhai::ImmutableString>() {
        Argv::parse(s.as_str())
    } else if let Some(a) = cmd.read_lock::<Array>() {
        let words = a
            .iter()
            .map(|w| {
                w.read_lock::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                    .ok_or_else(|| fail(ctx, "daemon: every word of the command is a string"))
            })
            .collect::<R<Vec<String>>>()?;
        Argv::from_words(words)
    } else {
        return Err(fail(
            ctx,
            "daemon: the command is a string (split like a shell's words) or an array of words",
        ));
    };
    argv.map_err(|e| fail(ctx, format!("daemon: {e}")))
}

fn text(ctx: &NativeCallContext, opts: &Map, key: &str) -> R<Option<String>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) => v
            .read_lock::<rhai::ImmutableString>()
            .map(|s| Some(s.to_string()))
            .ok_or_else(|| fail(ctx, format!("daemon option {key} is a string"))),
    }
}

/// The program's file name: the default name of its daemon.
fn default_name(argv: &Argv) -> String {
    let prog = argv.program();
    let base = prog.rsplit('/').next().unwrap_or(prog);
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.@".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn daemon(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    ns: &NsRef,
    cmd: Dynamic,
    opts: Map,
) -> R<DaemonHandle> {
    if let Some(k) = opts
        .keys()
        .find(|k| !["name", "ready", "env", "cwd", "log"].contains(&k.as_str()))
    {
        return Err(fail(
            ctx,
            format!("unknown daemon option '{k}': expected {OPTIONS}"),
        ));
    }
    let argv = argv_of(ctx, &cmd)?;
    let name = text(ctx, &opts, "name")?.unwrap_or_else(|| default_name(&argv));
    if !crate::proc::cgroup::valid_name(&name) {
        return Err(fail(
            ctx,
            format!("'{name}' cannot name a daemon: use letters, digits, '-', '_', '.' or '@'"),
        ));
    }
    let ready = text(ctx, &opts, "ready")?;
    if let Some(r) = &ready {
        r.parse::<Ready>().map_err(|e| fail(ctx, e))?;
    }
    let mut env = Vec::new();
    if let Some(v) = opts.get("env") {
        let m = v
            .read_lock::<Map>()
            .ok_or_else(|| fail(ctx, "daemon option env is a map: #{ NAME: \"value\" }"))?;
        for (k, v) in m.iter() {
            if k.is_empty() || k.contains('=') {
                return Err(fail(
                    ctx,
                    format!("'{k}' cannot be an environment variable's name"),
                ));
            }
            env.push((k.to_string(), v.to_string()));
        }
    }
    let abs = |key: &str, p: Option<String>| -> R<Option<PathBuf>> {
        match p {
            Some(p) if !p.starts_with('/') => Err(fail(
                ctx,
                format!("daemon option {key} is an absolute path, not '{p}'"),
            )),
            p => Ok(p.map(PathBuf::from)),
        }
    };
    let cwd = abs("cwd", text(ctx, &opts, "cwd")?)?;
    let log = abs("log", text(ctx, &opts, "log")?)?;
    let decl = DaemonDecl {
        ns: ns.clone(),
        name: name.clone(),
        argv,
        env,
        cwd,
        log,
        ready,
        pos: pos_of(ctx),
    };
    let mut r = lock(rn);
    r.topo
        .add_daemon(decl)
        .map_err(|e| super::api::refused(ctx, e))?;
    Ok(DaemonHandle {
        name,
        ns: ns.clone(),
    })
}

fn assertion(
    ctx: &NativeCallContext,
    rn: &SharedRunner,
    from: &NsHandle,
    target: &str,
    reach: bool,
) -> R<()> {
    let target = Target::parse(target).map_err(|e| fail(ctx, e))?;
    from.at(rn);
    let mut r = lock(rn);
    if !r.sites.active_is_applied() {
        // Another site's namespace: that machine checks it (issue 19).
        return Ok(());
    }
    if let NsRef::Named(n) = &from.ns
        && !r.topo.has_ns(n)
    {
        return Err(fail(
            ctx,
            format!("netns {n} is not declared in this topology (any more)"),
        ));
    }
    r.asserts.push(Assertion {
        from: from.ns.clone(),
        target,
        reach,
        pos: pos_of(ctx),
    });
    Ok(())
}

fn file(ctx: &NativeCallContext, rn: &SharedRunner, ns: &NsRef, path: &str, text: &str) -> R<()> {
    let NsRef::Named(n) = ns else {
        return Err(fail(
            ctx,
            "the host's files are its own /etc: ns.file() is for a declared namespace",
        ));
    };
    crate::proc::EtcFile::new(n.as_str(), path).map_err(|e| fail(ctx, e))?;
    let decl = FileDecl {
        ns: n.clone(),
        path: path.to_string(),
        content: text.to_string(),
        pos: pos_of(ctx),
    };
    let mut r = lock(rn);
    r.topo
        .add_file(decl)
        .map_err(|e| super::api::refused(ctx, e))
}

/// `ns.hosts(#{ web: "172.30.0.2" })`: /etc/hosts with localhost and these.
fn hosts_text(ctx: &NativeCallContext, names: &Map) -> R<String> {
    let mut t = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (name, ip) in names.iter() {
        let ip = ip.to_string();
        let addr = crate::model::parse_ip(&ip).map_err(|e| fail(ctx, e))?;
        let ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c));
        if !ok {
            return Err(fail(ctx, format!("'{name}' is not a host name")));
        }
        t.push_str(&format!("{addr}\t{name}\n"));
    }
    Ok(t)
}

pub fn register(reg: &mut Reg, runner: &SharedRunner) {
    reg.engine()
        .register_type_with_name::<DaemonHandle>("Daemon");
    reg.section("Processes and reachability checks");
    let rn = runner.clone();
    reg.method(
        "daemon",
        "ns: Netns",
        &["cmd: string"],
        "Daemon",
        docs::DAEMON,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: Dynamic| {
            daemon(&ctx, &rn, &this.at(&rn), cmd, Map::new())
        },
    );
    let rn = runner.clone();
    reg.method(
        "daemon",
        "ns: Netns",
        &["cmd: string", "opts: map"],
        "Daemon",
        docs::DAEMON_OPTS,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, cmd: Dynamic, opts: Map| {
            daemon(&ctx, &rn, &this.at(&rn), cmd, opts)
        },
    );
    reg.getter("name", "daemon: Daemon", "string", docs::NAME)
        .set(|d: &mut DaemonHandle| d.name.clone());
    let rn = runner.clone();
    reg.method(
        "file",
        "ns: Netns",
        &["path: string", "text: string"],
        "()",
        docs::FILE,
    )
    .set(
        move |ctx: NativeCallContext, this: &mut NsHandle, path: &str, text: &str| {
            file(&ctx, &rn, &this.at(&rn), path, text)
        },
    );
    let rn = runner.clone();
    reg.method("hosts", "ns: Netns", &["names: map"], "()", docs::HOSTS)
        .set(
            move |ctx: NativeCallContext, this: &mut NsHandle, names: Map| -> R<()> {
                let text = hosts_text(&ctx, &names)?;
                file(&ctx, &rn, &this.at(&rn), "/etc/hosts", &text)
            },
        );
    let rn = runner.clone();
    reg.func(
        "assert_reach",
        &["from: Netns", "target: string"],
        "()",
        docs::ASSERT_REACH,
    )
    .set(
        move |ctx: NativeCallContext, from: NsHandle, target: &str| {
            assertion(&ctx, &rn, &from, target, true)
        },
    );
    let rn = runner.clone();
    reg.func(
        "assert_no_reach",
        &["from: Netns", "target: string"],
        "()",
        docs::ASSERT_NO_REACH,
    )
    .set(
        move |ctx: NativeCallContext, from: NsHandle, target: &str| {
            assertion(&ctx, &rn, &from, target, false)
        },
    );
    reg.section("Utilities");
    for name in ["to_string", "to_debug"] {
        reg.func(name, &["value: Daemon"], "string", super::TO_STRING)
            .set(|d: &mut DaemonHandle| format!("daemon {} in {}", d.name, d.ns));
    }
}
