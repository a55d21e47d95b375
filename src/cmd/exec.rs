//! `netplumb exec NS CMD…`: a command inside a namespace, its exit status
//! passed through the way a shell reports it.

use std::os::unix::process::ExitStatusExt;

use miette::Report;

use crate::diag;

pub fn run(ns: &str, cmd: &[String]) -> Result<i32, Report> {
    let name = crate::model::NsName::new(ns).map_err(|e| diag::plain(e.to_string(), None))?;
    let dir = crate::apply::netns::NetnsDir::default();
    let file = dir.open(&name).map_err(|e| {
        diag::plain(
            format!("no netns '{ns}': {e}"),
            Some("list namespaces with `ip netns`, or check that you are in the same --sandbox"),
        )
    })?;
    let (prog, args) = cmd
        .split_first()
        .ok_or_else(|| diag::plain("exec needs a command", None))?;
    let status = match crate::apply::command_in(Some(&file), prog, args).status() {
        Ok(s) => s,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::NotFound => 127,
                std::io::ErrorKind::PermissionDenied => 126,
                _ => 126,
            };
            eprintln!("netplumb: cannot run {prog} in netns {ns}: {e}");
            return Ok(code);
        }
    };
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    })
}
