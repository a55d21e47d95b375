//! Run a shell command inside a namespace: `setns` in the child between fork
//! and exec, so netplumb's own threads never move.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// Run `line` with `sh -c` inside the namespace. A command still running
/// after `timeout` is killed with its whole process group, so a script's
/// `exec("sleep 1000")` cannot hang a run.
pub fn run(ns: Option<&File>, line: &str, timeout: Duration) -> Result<ExecOutput, KernelError> {
    let mut child = command_in(ns, "sh", &["-c".to_string(), line.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| KernelError::from(e).context("cannot run sh"))?;
    let read = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().map_err(KernelError::from)? {
            break Some(Ok(st));
        }
        // Ctrl-C in the REPL reaches netplumb, not the command's own
        // process group: stop the command for it.
        let stop = crate::interrupt::raised();
        if stop || Instant::now() >= deadline {
            // SAFETY: plain kill(2) of the child's own process group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            break if stop { Some(Err(())) } else { None };
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    let status = match status {
        Some(Ok(st)) => i64::from(st.code().unwrap_or(-1)),
        Some(Err(())) => {
            stderr.push_str("netplumb: interrupted\n");
            -1
        }
        None => {
            stderr.push_str(&format!(
                "netplumb: killed after {} s (exec timeout)\n",
                timeout.as_secs_f64()
            ));
            -1
        }
    };
    Ok(ExecOutput {
        status,
        stdout,
        stderr,
    })
}
