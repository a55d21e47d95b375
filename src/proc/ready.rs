//! Waiting until a started process is ready: a socket bound in its
//! namespace, a file, or a fixed delay — bounded, and watching the process
//! so that one that died says so at once, with its exit status and the end
//! of its log.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};

use super::spawn::Daemon;
use super::stop::tree_outlives_leader;
use super::{ExitInfo, ProcError};

const TICK: Duration = Duration::from_millis(10);
/// Lines of the log an error quotes.
pub const TAIL_LINES: usize = 10;

/// What "ready" means for a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `tcp:80`: a TCP socket listening on that port in the namespace.
    Tcp(u16),
    /// `udp:53`: a UDP socket bound to that port in the namespace.
    Udp(u16),
    /// `file:/run/x.pid`: the file exists.
    File(PathBuf),
    /// `500ms`, `2s`, `1.5s`, `1m`: that long after the start, if alive.
    After(Duration),
}

impl Ready {
    /// In words, for errors: "TCP socket listening on port 80".
    pub fn describe(&self) -> String {
        match self {
            Ready::Tcp(p) => format!("TCP socket listening on port {p}"),
            Ready::Udp(p) => format!("UDP socket bound to port {p}"),
            Ready::File(p) => format!("file {}", p.display()),
            Ready::After(d) => format!("{} to pass", fmt_duration(*d)),
        }
    }
}

pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

impl std::fmt::Display for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Tcp(p) => write!(f, "tcp:{p}"),
            Ready::Udp(p) => write!(f, "udp:{p}"),
            Ready::File(p) => write!(f, "file:{}", p.display()),
            Ready::After(d) => f.write_str(&fmt_duration(*d)),
        }
    }
}

/// `500ms`, `2s`, `1.5s`, `1m`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        return None;
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let v: f64 = num.parse().ok()?;
    let secs = v * scale;
    (secs.is_finite() && secs <= 86_400.0).then(|| Duration::from_secs_f64(secs))
}

impl FromStr for Ready {
    type Err = ProcError;
    fn from_str(s: &str) -> Result<Self, ProcError> {
        let bad = |why: &'static str| ProcError::BadReady {
            text: s.to_string(),
            why,
        };
        let port = |p: &str| match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad("the port is a number from 1 to 65535")),
            Ok(p) => Ok(p),
        };
        if let Some(p) = s.strip_prefix("tcp:") {
            return Ok(Ready::Tcp(port(p)?));
        }
        if let Some(p) = s.strip_prefix("udp:") {
            return Ok(Ready::Udp(port(p)?));
        }
        if let Some(p) = s.strip_prefix("file:") {
            if !p.starts_with('/') {
                return Err(bad("file: needs an absolute path"));
            }
            return Ok(Ready::File(PathBuf::from(p)));
        }
        parse_duration(s).map(Ready::After).ok_or_else(|| {
            bad("expected tcp:PORT, udp:PORT, file:PATH or a duration like 500ms or 2s")
        })
    }
}

/// Is a socket bound to `port` in this /proc/net/{tcp,tcp6,udp,udp6} text?
/// TCP counts only listening sockets (state 0A).
pub fn socket_in_table(table: &str, port: u16, listening: bool) -> bool {
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (Some(local), Some(state)) = (f.get(1), f.get(3)) else {
            return false;
        };
        let p = local
            .rsplit_once(':')
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        p == Some(port) && (!listening || *state == "0A")
    })
}

/// Read on a thread that has joined the namespace: /proc/thread-self/net
/// shows that thread's network namespace.
fn socket_bound(proto: &str, port: u16) -> bool {
    let listening = proto == "tcp";
    [proto.to_string(), format!("{proto}6")].iter().any(|t| {
        std::fs::read_to_string(format!("/proc/thread-self/net/{t}"))
            .is_ok_and(|text| socket_in_table(&text, port, listening))
    })
}

/// The last `n` lines of a log file (at most its last 64 KiB are read).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0);
    }
    let skip = lines.len().saturating_sub(n);
    lines[skip..].iter().map(|l| l.to_string()).collect()
}

/// Wait until `daemon` is `ready` in namespace `ns` (None: netplumb's own),
/// for at most `timeout` (a duration condition waits its own length).
/// Returns how long it took. A leader that exits with status 0 while
/// others of its tree live on has daemonized itself: the wait goes on.
pub fn wait_ready(
    daemon: &mut Daemon,
    ready: &Ready,
    ns: Option<&File>,
    timeout: Duration,
) -> Result<Duration, ProcError> {
    let started = Instant::now();
    let deadline = match ready {
        Ready::After(d) => started + *d,
        _ => started + timeout,
    };
    let check = |d: &mut Daemon| -> Result<bool, ProcError> {
        let met = match ready {
            Ready::Tcp(p) => socket_bound("tcp", *p),
            Ready::Udp(p) => socket_bound("udp", *p),
            Ready::File(p) => p.exists(),
            Ready::After(_) => false,
        };
        if met {
            return Ok(true);
        }
        if let Some(exit) = d.try_wait()
            && !(exit == ExitInfo::Code(0) && tree_outlives_leader(d.identity()))
        {
            return Err(ProcError::Died {
                name: d.name().to_string(),
                awaited: ready.clone(),
                status: exit,
                log: d.log().to_path_buf(),
                log_tail: log_tail(d.log(), TAIL_LINES),
            });
        }
        Ok(false)
    };
    let poll = |d: &mut Daemon| -> Result<Duration, ProcError> {
        loop {
            if check(d)? {
                return Ok(started.elapsed());
            }
            // Ctrl-C in the REPL: stop waiting (the process keeps running;
            // the caller decides whether to stop it).
            if crate::interrupt::raised() {
                return Err(ProcError::Interrupted {
                    name: d.name().to_string(),
                    awaited: ready.clone(),
                });
            }
            let now = Instant::now();
            if now >= deadline {
                if let Ready::After(_) = ready {
                    return Ok(started.elapsed());
                }
                return Err(ProcError::NotReady {
                    name: d.name().to_string(),
                    awaited: ready.clone(),
                    after: timeout,
                });
            }
            std::thread::sleep(TICK.min(deadline - now));
        }
    };
    match (ready, ns) {
        (Ready::Tcp(_) | Ready::Udp(_), Some(ns)) => std::thread::scope(|s| {
            s.spawn(|| {
                setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                    .map_err(|e| ProcError::io("setns", e.into()))?;
                poll(daemon)
            })
            .join()
            .unwrap_or_else(|_| Err(ProcError::BadValue("readiness thread panicked".into())))
        }),
        _ => poll(daemon),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_print_back() {
        for (text, want) in [
            ("tcp:80", Ready::Tcp(80)),
            ("udp:53", Ready::Udp(53)),
            ("file:/run/x.pid", Ready::File("/run/x.pid".into())),
            ("500ms", Ready::After(Duration::from_millis(500))),
            ("2s", Ready::After(Duration::from_secs(2))),
            ("1.5s", Ready::After(Duration::from_millis(1500))),
            ("1m", Ready::After(Duration::from_secs(60))),
        ] {
            let got: Ready = text.parse().unwrap();
            assert_eq!(got, want, "{text}");
        }
        assert_eq!(Ready::Tcp(80).to_string(), "tcp:80");
        assert_eq!(
            Ready::After(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(Ready::After(Duration::from_secs(2)).to_string(), "2s");
        for bad in [
            "tcp:",
            "tcp:0",
            "tcp:65536",
            "tcp:http",
            "udp:-1",
            "file:",
            "file:x.pid",
            "5",
            "ms",
            "-1s",
            "1h",
            "",
            "1e3s",
        ] {
            assert!(bad.parse::<Ready>().is_err(), "{bad}");
        }
        assert_eq!(
            "tcp:x".parse::<Ready>().unwrap_err().to_string(),
            "bad ready condition 'tcp:x': the port is a number from 1 to 65535"
        );
    }

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A2C4 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 12346 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0035 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
";
    const UDP: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 00000000:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 999 2 0000000000000000 0
";

    #[test]
    fn socket_tables() {
        assert!(socket_in_table(TCP, 8080, true));
        // Port 80 appears only as the remote end, and 0xA2C4 is not
        // listening.
        assert!(!socket_in_table(TCP, 80, true));
        assert!(!socket_in_table(TCP, 0xA2C4, true));
        assert!(socket_in_table(TCP, 0xA2C4, false));
        assert!(socket_in_table(TCP6, 53, true));
        assert!(socket_in_table(UDP, 53, false));
        assert!(!socket_in_table(UDP, 54, false));
        assert!(!socket_in_table("", 53, false));
    }

    #[test]
    fn tail_of_a_log() {
        let dir = std::env::temp_dir().join(format!("np-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("log");
        let body: String = (1..=30).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, body).unwrap();
        let t = log_tail(&p, 3);
        assert_eq!(t, ["line 28", "line 29", "line 30"]);
        assert!(log_tail(&dir.join("none"), 3).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
