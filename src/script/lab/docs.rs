//! The reference text of the lab functions (registered in lab.rs).

/// ns.daemon(cmd)` → Daemon
pub const DAEMON: &str = r#"Declare a long-lived process in the namespace. `cmd` is a string, split
into words the way a shell splits them (quotes and backslashes; no
variables, globs or pipes: there is no shell unless you write `sh -c`), or
an array of words. Its name is its program's file name.

`up` starts it once the namespace's links are ready and after every other
change of the run (so the addresses, routes and NAT it uses are there), in
a session of its own, with stdin from /dev/null and stdout and stderr
appended to a log under the state directory. The process is recorded in
the topology's ledger — pid, start time, boot, and its cgroup where a
writable cgroup v2 allows one — *before* it runs the command, so `down`
finds it even after `up` was killed with `kill -9`. It outlives the `up`
that started it.

On the next `up`: unchanged and still running (the same pid and start
time, in the namespace it was started in), it is left alone; its command
or options changed, it is stopped and started again; it died, it is
started again and reported as repaired (`check` reports it as drift); no
longer declared, it is stopped. `down` stops it and its whole tree
(SIGTERM, three seconds, then SIGKILL; its cgroup's `cgroup.kill` where it
has one) before removing the namespaces. A pid that another process holds
now is never signalled. In `plan` nothing starts: the line shown is an
`ip netns exec NS setsid cmd … &`.

Errors: the namespace is not declared; another daemon of the topology has
that name; an empty command or unbalanced quotes. When `up` runs it: the
program is not found or cannot be executed (named with the script line).

```rhai
let app = netns("app");
app.daemon("python3 -m http.server 80");
```"#;

/// ns.daemon(cmd, opts)` → Daemon
pub const DAEMON_OPTS: &str = r#"`daemon` with options, all optional:

- `name`: the daemon's name in the topology (letters, digits, `-_.@`;
  default: the program's file name). `ps` and `logs` use it.
- `ready`: when `up` may go on — `"tcp:80"` (a TCP socket listening on
  port 80 in its namespace), `"udp:53"` (a UDP socket bound to port 53),
  `"file:/run/x.pid"` (the file exists), or a duration (`"500ms"`, `"2s"`).
  `up` waits at most 10 seconds; a process that exits first fails at once
  with its exit status and the end of its log. Default: started is ready.
- `env`: a map of environment variables set on top of netplumb's own.
- `cwd`: its working directory (an absolute path).
- `log`: the file its output is appended to (an absolute path) instead of
  the one under the state directory.

Errors: an unknown option; a bad `ready` condition; a name with other
characters; a relative `cwd` or `log`. When `up` runs it: not ready in
time, or it exited before it was ready (the error names the script line,
the process is stopped and the run rolled back).

```rhai
let web = app.daemon(["socat", "TCP-LISTEN:80,fork,reuseaddr", "SYSTEM:echo hello"],
                     #{ name: "web", ready: "tcp:80", env: #{ LANG: "C" } });
dnat(8080, "10.0.0.2:80");
print(web.name);
```"#;

/// daemon.name` → string
pub const NAME: &str = r#"The daemon's name, as `netplumb ps` and `netplumb logs` show it.

```rhai
let d = app.daemon("sleep 1000");
print(d.name);   // sleep
```"#;

/// ns.file(path, text)` → ()
pub const FILE: &str = r#"Declare a file the namespace sees at `path` — `/etc/NAME`, directly in
/etc — with content `text`. It is kept where iproute2 keeps it,
/etc/netns/NS/NAME; `netplumb exec`, `ns.exec()` and daemons see it bound
over /etc/NAME, exactly as `ip netns exec` does (the host needs an
/etc/NAME to bind over). `up` writes it atomically when it is missing or
differs (a change behind netplumb's back is repaired and `check` reports
it); `down` removes it, or — when the file was there before the topology
first wrote it — puts the old content back. Declaring the same file again
replaces the text.

Errors: `path` is not directly in /etc (a subdirectory would hide the
host's whole directory); the namespace is the host or not declared.

```rhai
let app = netns("app");
app.file("/etc/resolv.conf", "nameserver 10.0.0.53\n");
```"#;

/// ns.hosts(names)` → ()
pub const HOSTS: &str = r#"`ns.file("/etc/hosts", …)` with localhost and one line per entry of the
map `names` (host name → address).

Errors: a value that is not an address; a name with characters other
than letters, digits, `-` and `.`.

```rhai
app.hosts(#{ web: "172.30.0.2", db: "172.30.0.3" });
```"#;

/// assert_reach(from, target)` → ()
pub const ASSERT_REACH: &str = r#"Declare a check: from namespace `from`, `target` answers. `target` is an
address (`"10.0.0.2"`, `"fd00::2"`: an ICMP echo, three tries) or an
address and port (`"10.0.0.2:80"`, `"[fd00::2]:80"`: a TCP connection
within two seconds). Checks run after the topology is converged, its links
ready and its daemons ready. `up` reports every failed check with its
script line on stderr and exits with status 1; the topology stays up, so
you can look at it. `netplumb test` runs them too and writes one JUnit
testcase each. In `plan` and `check` nothing is sent.

Errors: `target` is neither form; `from` is not declared.

```rhai
assert_reach(client, "10.78.0.1:8080");
assert_reach(client, "10.77.0.2");
```"#;

/// assert_no_reach(from, target)` → ()
pub const ASSERT_NO_REACH: &str = r#"The opposite check: from `from`, `target` does not answer (no echo reply
to two requests; the TCP connection refused or timed out). For a firewall
or a missing route that must stay missing.

Errors: as `assert_reach`.

```rhai
assert_no_reach(client, "10.77.0.2:22");
```"#;
