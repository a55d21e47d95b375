//! Run a shell command inside a namespace: `setns` in the child between fork
//! and exec, so netplumb's own threads never move.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::kernel::{ExecOutput, KernelError};

pub fn command_in(ns: Option<&File>, program: &str, args: &[String]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args);
    if let Some(f) = ns {
        let fd = f.as_raw_fd();
        // SAFETY: setns(2) is async-signal-safe; the fd stays open in the
        // parent until the child has exec'd.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

pub fn run(ns: Option<&File>, line: &str) -> Result<ExecOutput, KernelError> {
    let out = command_in(ns, "sh", &["-c".to_string(), line.to_string()])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| KernelError::from(e).context("cannot run sh"))?;
    Ok(ExecOutput {
        status: i64::from(out.status.code().unwrap_or(-1)),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
