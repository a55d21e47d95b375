//! Run a shell command inside a namespace: setns (and, for a named
//! namespace, its /etc/netns files, like `ip netns exec`) in the child
//! between fork and exec, so netplumb's own threads never move.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::kernel::{ExecOutput, KernelError};
use crate::proc::{NsTarget, exit_code};

/// A command that runs in `ns` as `ip netns exec` would run it (see
/// [`crate::proc::ns_command`]).
pub fn command_in(ns: Option<NsTarget<'_>>, program: &str, args: &[String]) -> Command {
    crate::proc::ns_command(ns, program, args)
}

/// A pipe read without blocking, until EOF.
struct Drain {
    fd: Option<Box<dyn ReadFd>>,
    buf: Vec<u8>,
}

trait ReadFd: Read + AsRawFd + Send {}
impl ReadFd for ChildStdout {}
impl ReadFd for ChildStderr {}

impl Drain {
    fn new(r: Option<Box<dyn ReadFd>>) -> Self {
        if let Some(r) = &r {
            // SAFETY: fcntl on a pipe descriptor we own.
            unsafe {
                let fl = libc::fcntl(r.as_raw_fd(), libc::F_GETFL);
                libc::fcntl(r.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
            }
        }
        Self {
            fd: r,
            buf: Vec::new(),
        }
    }

    /// Read what is there now; drop the pipe at EOF.
    fn pull(&mut self) {
        let Some(r) = &mut self.fd else { return };
        let mut chunk = [0u8; 16384];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.fd = None;
                    return;
                }
            }
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// Wait up to `wait` for data or EOF on any open pipe.
fn poll_pipes(pipes: &[&Drain], wait: Duration) {
    let mut fds: Vec<libc::pollfd> = pipes
        .iter()
        .filter_map(|d| d.fd.as_ref())
        .map(|r| libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    if fds.is_empty() {
        std::thread::sleep(wait);
        return;
    }
    let ms = wait.as_millis().clamp(0, i32::MAX as u128) as i32;
    // SAFETY: fds is a valid pollfd array of its length.
    unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
}

enum End {
    Done,
    TimedOut,
    Interrupted,
}

/// Run `line` with `sh -c` inside the namespace, collecting its output
/// until the command has exited and its output is closed, or `timeout`.
/// At the deadline the whole process group is killed — also when `sh`
/// itself has exited but something it left running in the background
/// still holds the output — and reading stops there, so neither
/// `exec("sleep 1000")` nor `exec("sleep 1000 &")` can hang a run.
pub fn run_in(
    ns: Option<NsTarget<'_>>,
    line: &str,
    timeout: Duration,
) -> Result<ExecOutput, KernelError> {
    let mut child = command_in(ns, "sh", &["-c".to_string(), line.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| KernelError::from(e).context("cannot run sh"))?;
    let pgid = child.id() as i32;
    let mut out = Drain::new(child.stdout.take().map(|o| Box::new(o) as Box<dyn ReadFd>));
    let mut err = Drain::new(child.stderr.take().map(|e| Box::new(e) as Box<dyn ReadFd>));
    let deadline = Instant::now() + timeout;
    let mut status = None;
    let end = loop {
        out.pull();
        err.pull();
        if status.is_none() {
            status = child.try_wait().map_err(KernelError::from)?;
        }
        let open = out.fd.is_some() || err.fd.is_some();
        if status.is_some() && !open {
            break End::Done;
        }
        // Ctrl-C in the REPL reaches netplumb, not the command's own
        // process group: stop the command for it.
        if crate::interrupt::raised() {
            break End::Interrupted;
        }
        let now = Instant::now();
        if now >= deadline {
            break End::TimedOut;
        }
        // Output wakes us at once; the exit of `sh` is seen within 10 ms.
        poll_pipes(
            &[&out, &err],
            (deadline - now).min(Duration::from_millis(10)),
        );
    };
    if !matches!(end, End::Done) {
        // SAFETY: kill(2) of the process group the child leads. While any
        // member lives the group id cannot be handed to another process.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        if status.is_none() {
            let _ = child.kill();
            status = child.wait().ok();
        }
        // What the killed processes wrote before dying; a process that left
        // the group may keep the pipe open, so read once and stop.
        out.pull();
        err.pull();
    }
    let stdout = out.text();
    let mut stderr = err.text();
    let status = match end {
        End::Done => status.map(|s| i64::from(exit_code(s))).unwrap_or(-1),
        End::Interrupted => {
            stderr.push_str("netplumb: interrupted\n");
            -1
        }
        End::TimedOut => {
            let why = if status.is_some() {
                ": processes it left in the background still held its output"
            } else {
                ""
            };
            stderr.push_str(&format!(
                "netplumb: killed after {} s (exec timeout){why}\n",
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
