//! A lab's ops as shell lines: a daemon as `ip netns exec NS setsid cmd &`
//! with its log, a per-namespace file as a here-document into
//! /etc/netns/NS.

use super::shell_quote;
use crate::model::{NsName, NsRef};

pub(super) fn file_lines(ns: &NsName, path: &str, content: &str) -> Vec<String> {
    let name = path.trim_start_matches("/etc/");
    let mut out = vec![
        format!("mkdir -p /etc/netns/{ns}"),
        format!(
            "cat > {} <<'NETPLUMB_EOF'",
            shell_quote(&format!("/etc/netns/{ns}/{name}"))
        ),
    ];
    out.extend(content.lines().map(str::to_string));
    out.push("NETPLUMB_EOF".to_string());
    out
}

pub(super) fn remove_file_line(ns: &NsName, path: &str) -> Vec<String> {
    vec![format!(
        "rm -f {}",
        shell_quote(&format!(
            "/etc/netns/{ns}/{}",
            path.trim_start_matches("/etc/")
        ))
    )]
}

/// `ip netns exec NS cmd … &`, with its environment, directory and log.
pub(super) fn daemon_lines(ns: &NsRef, d: &crate::op::DaemonStart) -> Vec<String> {
    let spec = &d.spec;
    let mut cmd = String::new();
    if let NsRef::Named(n) = ns {
        cmd.push_str(&format!("ip netns exec {n} "));
    }
    if !spec.env.is_empty() {
        cmd.push_str("env");
        for (k, v) in &spec.env {
            cmd.push(' ');
            cmd.push_str(&shell_quote(&format!("{k}={v}")));
        }
        cmd.push(' ');
    }
    cmd.push_str(&format!(
        "setsid {} </dev/null >>{} 2>&1 &",
        spec.argv,
        shell_quote(&spec.log.display().to_string())
    ));
    if let Some(dir) = &spec.cwd {
        cmd = format!("(cd {} && {cmd})", shell_quote(&dir.display().to_string()));
    }
    let mut out = vec![format!("mkdir -p {}", shell_quote(&parent(&spec.log))), cmd];
    if let Some(r) = &d.ready {
        out.push(format!("# daemon {} is ready once: {r}", spec.name));
    }
    out
}

fn parent(p: &std::path::Path) -> String {
    p.parent()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|| ".".into())
}
