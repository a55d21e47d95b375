//! `netplumb exec NS CMD…`: a command inside a namespace, its exit status
//! passed through the way a shell reports it.

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
    // Like `ip netns exec`: /etc/netns/NS files over /etc, sysfs of the
    // namespace; the exit status the way a shell reports it.
    let target = crate::proc::NsTarget {
        file: &file,
        name: Some(ns),
    };
    let command = crate::apply::command_in(Some(target), prog, args);
    Ok(crate::proc::run_foreground(command, prog))
}
