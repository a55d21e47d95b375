//! Running one netplumb command on several sites at once, over ssh
//! (`$NETPLUMB_SSH`, default `ssh`): every line a site prints comes out
//! here prefixed with `[site] ` (its stdout on stdout, its stderr on
//! stderr). With a bundle and two phases, each site holds its changes
//! (`up - --hold`) until all of them said READY: then all get COMMIT; once
//! one fails, the others get ABORT and roll back.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

/// A machine a script's site is brought up on.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The site's name in the script.
    pub name: String,
    /// The ssh target (`root@east`).
    pub ssh: String,
}

/// How one site's command ended.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub name: String,
    /// Its exit status (None: killed, or never started).
    pub code: Option<i32>,
    /// It said READY (two phases only).
    pub ready: bool,
    /// What it said last on stderr: why it failed.
    pub last_err: Vec<String>,
}

/// How many of a site's last stderr lines are kept for the report.
const KEEP: usize = 60;

/// The ssh command: `$NETPLUMB_SSH` split on whitespace, else `ssh`.
pub fn ssh_words() -> Vec<String> {
    let words: Vec<String> = std::env::var("NETPLUMB_SSH")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if words.is_empty() {
        vec!["ssh".into()]
    } else {
        words
    }
}

/// The full argv for `netplumb ARGS` on `t`. ssh joins its arguments into
/// one command line for the remote shell: each is quoted, but only when it
/// needs it (a stand-in for ssh that passes argv through sees them plain).
pub fn argv(ssh: &[String], t: &Target, args: &[String]) -> Vec<String> {
    let mut v = ssh.to_vec();
    v.push(t.ssh.clone());
    v.push("netplumb".into());
    v.extend(args.iter().map(|a| crate::plan::shell_quote(a)));
    v
}

enum Event {
    Line {
        site: usize,
        err: bool,
        text: String,
    },
    Ready(usize),
    Exit(usize, Option<i32>),
}

/// What the driver tells the held sites.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Verdict {
    Commit,
    Abort,
}

/// Run `netplumb args_of(target)` on every target in parallel. With
/// `bundle`, it is written to each one's stdin; with `two_phase` too, each
/// is expected to say READY and wait for COMMIT/ABORT.
pub fn run(
    ssh: &[String],
    targets: &[Target],
    args_of: impl Fn(&Target) -> Vec<String>,
    bundle: Option<&[u8]>,
    two_phase: bool,
    verbose: bool,
) -> Vec<Outcome> {
    let (tx, rx) = mpsc::channel::<Event>();
    let mut verdicts = Vec::new();
    let mut out: Vec<Outcome> = targets
        .iter()
        .map(|t| Outcome {
            name: t.name.clone(),
            ..Outcome::default()
        })
        .collect();
    for (i, t) in targets.iter().enumerate() {
        let words = argv(ssh, t, &args_of(t));
        if verbose {
            eprintln!("netplumb: [{}] {}", t.name, words.join(" "));
        }
        let (vtx, vrx) = mpsc::channel::<Verdict>();
        verdicts.push(vtx);
        start(
            i,
            &words,
            bundle.map(<[u8]>::to_vec),
            two_phase,
            vrx,
            tx.clone(),
        );
    }
    drop(tx);
    let n = targets.len();
    let mut exited = 0;
    let mut decided: Option<Verdict> = None;
    let tell = |v: Verdict, decided: &mut Option<Verdict>| {
        if decided.is_none() {
            *decided = Some(v);
            for s in &verdicts {
                // A site already gone has no one reading.
                let _ = s.send(v);
            }
        }
    };
    while exited < n {
        let Ok(ev) = rx.recv() else { break };
        match ev {
            Event::Line { site, err, text } => {
                let line = format!("[{}] {text}\n", out[site].name);
                if err {
                    let keep = &mut out[site].last_err;
                    keep.push(text);
                    if keep.len() > KEEP {
                        keep.remove(0);
                    }
                    let _ = std::io::stderr().lock().write_all(line.as_bytes());
                } else {
                    crate::out::write(&line);
                }
            }
            Event::Ready(site) => {
                if verbose {
                    eprintln!("[{}] READY (holding)", out[site].name);
                }
                out[site].ready = true;
                if out.iter().all(|o| o.ready) {
                    tell(Verdict::Commit, &mut decided);
                }
            }
            Event::Exit(site, code) => {
                exited += 1;
                out[site].code = code;
                let failed = code != Some(0) || (two_phase && !out[site].ready);
                if two_phase && failed {
                    tell(Verdict::Abort, &mut decided);
                }
            }
        }
    }
    out
}

/// One site: the child, a thread writing its stdin (the bundle, then the
/// verdict) and one per output stream; Exit once both streams ended.
fn start(
    i: usize,
    words: &[String],
    bundle: Option<Vec<u8>>,
    two_phase: bool,
    verdict: mpsc::Receiver<Verdict>,
    tx: mpsc::Sender<Event>,
) {
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .stdin(if bundle.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let text = format!("cannot run {}: {e}", words[0]);
            let _ = tx.send(Event::Line {
                site: i,
                err: true,
                text,
            });
            let _ = tx.send(Event::Exit(i, None));
            return;
        }
    };
    if let (Some(mut stdin), Some(b)) = (child.stdin.take(), bundle) {
        thread::spawn(move || {
            // A site that died early closed its end: its exit says why.
            if stdin.write_all(&b).and_then(|_| stdin.flush()).is_err() {
                return;
            }
            if two_phase && let Ok(v) = verdict.recv() {
                let line: &[u8] = match v {
                    Verdict::Commit => b"COMMIT\n",
                    Verdict::Abort => b"ABORT\n",
                };
                let _ = stdin.write_all(line);
            }
            // Dropping stdin: EOF, which a held site takes as ABORT.
        });
    }
    let err_reader = child.stderr.take().map(|e| {
        let tx = tx.clone();
        thread::spawn(move || {
            for text in BufReader::new(e).lines().map_while(Result::ok) {
                let _ = tx.send(Event::Line {
                    site: i,
                    err: true,
                    text,
                });
            }
        })
    });
    let stdout = child.stdout.take();
    thread::spawn(move || {
        if let Some(o) = stdout {
            let mut ready = false;
            for text in BufReader::new(o).lines().map_while(Result::ok) {
                if two_phase && !ready && text == "READY" {
                    ready = true;
                    let _ = tx.send(Event::Ready(i));
                } else {
                    let _ = tx.send(Event::Line {
                        site: i,
                        err: false,
                        text,
                    });
                }
            }
        }
        if let Some(h) = err_reader {
            let _ = h.join();
        }
        let code = child.wait().ok().and_then(|s| s.code());
        let _ = tx.send(Event::Exit(i, code));
    });
}

/// Names as a list: "east, west".
pub fn names<'a>(it: impl IntoIterator<Item = &'a Outcome>) -> String {
    it.into_iter()
        .map(|o| o.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a site failed, from its last stderr lines: the message of its
/// last error report (`× …` and its `│` continuation lines, then its
/// help), else its last lines.
pub fn why(o: &Outcome) -> String {
    let lines: Vec<&str> = o
        .last_err
        .iter()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .collect();
    let head = |l: &str| {
        l.strip_prefix('×')
            .or_else(|| l.strip_prefix("Error:"))
            .or_else(|| l.strip_prefix("error:"))
            .map(|m| m.trim_start_matches([' ', '×']).trim().to_string())
    };
    let Some(i) = lines.iter().rposition(|l| head(l).is_some()) else {
        return match (lines.len(), o.code) {
            (0, Some(c)) => format!("exited with status {c}"),
            (0, None) => "killed, or ssh could not run".to_string(),
            (n, _) => lines[n.saturating_sub(3)..].join(" / "),
        };
    };
    let mut msg = head(lines[i]).unwrap_or_default();
    for l in &lines[i + 1..] {
        let Some(c) = l.strip_prefix('│') else {
            break;
        };
        let c = c.trim();
        if c.starts_with("at ") || c.starts_with("called from ") {
            msg.push_str(&format!(" ({c})"));
        } else {
            msg.push(' ');
            msg.push_str(c);
        }
    }
    if let Some(h) = lines[i..].iter().find(|l| l.starts_with("help:")) {
        msg.push_str(&format!(" ({h})"));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_needs_quoting_is_quoted() {
        let t = Target {
            name: "east".into(),
            ssh: "root@east".into(),
        };
        let args = ["up", "-", "--set", "msg=a b", "--name", "lab"].map(String::from);
        let v = argv(&["ssh".into(), "-T".into()], &t, &args);
        assert_eq!(
            v,
            [
                "ssh",
                "-T",
                "root@east",
                "netplumb",
                "up",
                "-",
                "--set",
                "'msg=a b'",
                "--name",
                "lab"
            ]
        );
    }

    /// A stand-in for ssh and the far side's `up - --hold`: reads the
    /// bundle, fails on the target named `bad*`, else says READY and exits
    /// as the verdict says (0 for COMMIT, 3 otherwise).
    const FAKE: &str = r#"t=$1; shift
while read -r l; do [ "$l" = "@@ end" ] && break; done
case $t in *@bad*) echo "Error:   × $t refuses" >&2; exit 1 ;; *@slow*) sleep 0.3 ;; esac
echo READY
read -r v
[ "$v" = COMMIT ] && exit 0
echo "rolled back" >&2
exit 3"#;

    fn fan(names: &[&str]) -> Vec<Outcome> {
        let ssh = ["sh", "-c", FAKE, "fake-ssh"].map(String::from);
        let targets: Vec<Target> = names
            .iter()
            .map(|n| Target {
                name: n.to_string(),
                ssh: format!("root@{n}"),
            })
            .collect();
        let b = super::super::bundle::Bundle::of("x.rhai", "1", &[]).unwrap();
        run(
            &ssh,
            &targets,
            |t| vec!["up".into(), "--site".into(), t.name.clone()],
            Some(&b.encode()),
            true,
            false,
        )
    }

    #[test]
    fn all_ready_then_all_commit() {
        let res = fan(&["east", "slow-west", "north"]);
        for r in &res {
            assert_eq!(r.code, Some(0), "{r:?}");
            assert!(r.ready);
        }
    }

    #[test]
    fn one_failure_aborts_the_others_even_the_slow_one() {
        let res = fan(&["east", "bad-west", "slow-north"]);
        assert_eq!(res[1].code, Some(1));
        assert!(!res[1].ready);
        assert_eq!(why(&res[1]), "root@bad-west refuses");
        for i in [0, 2] {
            assert_eq!(res[i].code, Some(3), "{:?}", res[i]);
            assert_eq!(res[i].last_err, ["rolled back"]);
        }
    }

    #[test]
    fn the_reason_is_the_error_report() {
        let o = Outcome {
            name: "west".into(),
            code: Some(1),
            last_err: [
                "netplumb: note: noise",
                "  × netns host already has brn, and it is a veth, not a",
                "  │ bridge",
                "  │   at lib/lan.rhai:8:5",
                "   ╭─[lib/lan.rhai:8:5]",
                " 8 │   s.bridge(`br${tag}`);",
                "   ╰────",
                "  help: pick another name",
            ]
            .map(String::from)
            .to_vec(),
            ..Outcome::default()
        };
        assert_eq!(
            why(&o),
            "netns host already has brn, and it is a veth, not a bridge \
             (at lib/lan.rhai:8:5) (help: pick another name)"
        );
        let none = Outcome {
            code: Some(2),
            ..Outcome::default()
        };
        assert_eq!(why(&none), "exited with status 2");
    }
}
