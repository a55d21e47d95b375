//! `netplumb capture`: packets read back by tcpdump (pcap and pcapng) and by
//! an independent pcapng parser (python), in two namespaces joined by a
//! veth inside the test's own sandbox. IPv6 is off and the neighbours are
//! static, so the only packets on the wire are the test's pings.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{BIN, Sandbox, as_nobody, text};

fn two_namespaces() -> Sandbox {
    let sb = Sandbox::new();
    sb.ok("ip netns add a && ip netns add b && \
           for n in a b; do ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
             net.ipv6.conf.default.disable_ipv6=1; done && \
           ip -n a link add eth0 address 02:00:00:00:00:01 type veth \
             peer name eth0 netns b address 02:00:00:00:00:02 && \
           ip -n a addr add 10.9.0.1/24 dev eth0 && ip -n b addr add 10.9.0.2/24 dev eth0 && \
           ip -n a link set eth0 up && ip -n b link set eth0 up && \
           ip -n a neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev eth0 nud permanent && \
           ip -n b neigh replace 10.9.0.1 lladdr 02:00:00:00:00:01 dev eth0 nud permanent");
    // Carrier up is not ready: wait for a first echo before capturing.
    sb.ok("for i in 1 2 3 4 5 6 7 8 9 10; do \
             ip netns exec b ping -c1 -W1 10.9.0.1 >/dev/null && exit 0; done; exit 1");
    sb
}

/// A capture running in the background, ready (its sockets bound) once
/// `start` returns. Its stderr is collected on a thread.
struct Capture {
    child: Child,
    rest: mpsc::Receiver<String>,
}

fn start(sb: &Sandbox, args: &[&str], stdout: Stdio) -> Capture {
    let mut child = sb
        .cmd(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("netplumb capture");
    let err: ChildStderr = child.stderr.take().expect("stderr");
    let mut r = BufReader::new(err);
    let mut first = String::new();
    r.read_line(&mut first).expect("read stderr");
    assert!(
        first.starts_with("capturing on "),
        "capture did not start: {first}"
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = first;
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    Capture { child, rest: rx }
}

impl Capture {
    /// Wait for the capture to end by itself; (exit code, stderr).
    fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                let err = self.rest.recv().unwrap_or_default();
                return (st.code(), err);
            }
            if t0.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "capture still running after {limit:?}: {}",
                    self.rest.recv().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let st = std::process::Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
    }
}

fn tcpdump(sb: &Sandbox, file: &str) -> Vec<String> {
    let o = sb.run("tcpdump", &["-n", "-r", file]);
    assert!(o.status.success(), "tcpdump -r {file}: {}", text(&o.stderr));
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// "IP 10.9.0.2 > 10.9.0.1: ICMP echo request, id 7, seq 1, length 64",
/// without the timestamp and the id (which ping chooses).
fn shape(line: &str) -> String {
    let l = line.split_once(' ').map(|x| x.1).unwrap_or(line);
    l.split(", ")
        .filter(|p| !p.starts_with("id "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn three_pings_make_a_pcap_of_six_icmp_packets() {
    let sb = two_namespaces();
    let file = sb.dir.path().join("ping.pcap").display().to_string();
    let cap = start(
        &sb,
        &[
            "capture",
            "a:eth0",
            "-w",
            &file,
            "-c",
            "6",
            "--duration",
            "30s",
        ],
        Stdio::null(),
    );
    sb.ok("ip netns exec b ping -c 3 -i 0.2 10.9.0.1 >/dev/null");
    let (code, err) = cap.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("6 packets captured"), "{err}");
    let lines = tcpdump(&sb, &file);
    let got: Vec<String> = lines.iter().map(|l| shape(l)).collect();
    let mut want = Vec::new();
    for seq in 1..=3 {
        want.push(format!(
            "IP 10.9.0.2 > 10.9.0.1: ICMP echo request, seq {seq}, length 64"
        ));
        want.push(format!(
            "IP 10.9.0.1 > 10.9.0.2: ICMP echo reply, seq {seq}, length 64"
        ));
    }
    assert_eq!(got, want, "{lines:#?}");
    // Classic pcap, Ethernet, microsecond magic; the frames' MAC addresses.
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        u32::from_ne_bytes(bytes[0..4].try_into().unwrap()),
        0xa1b2_c3d4
    );
    assert_eq!(u32::from_ne_bytes(bytes[20..24].try_into().unwrap()), 1);
    let o = sb.run("tcpdump", &["-e", "-n", "-r", &file]);
    let e = text(&o.stdout);
    assert_eq!(
        e.matches("02:00:00:00:00:02 > 02:00:00:00:00:01").count(),
        3,
        "{e}"
    );
}

/// An independent reader of the pcapng blocks: interface names from the
/// IDBs, and per EPB its interface, direction and ICMP type.
const PCAPNG_PY: &str = r#"
import struct, sys
b = open(sys.argv[1], 'rb').read()
i = 0; names = []; pkts = []
while i < len(b):
    t, ln = struct.unpack_from('<II', b, i)
    body = b[i+8:i+ln-4]
    if t == 1:
        j = 8
        while j < len(body):
            code, olen = struct.unpack_from('<HH', body, j)
            if code == 0: break
            if code == 2: names.append(body[j+4:j+4+olen].decode())
            j += 4 + (olen + 3) // 4 * 4
    elif t == 6:
        iface, hi, lo, cap, orig = struct.unpack_from('<IIIII', body, 0)
        data = body[20:20+cap]
        j = 20 + (cap + 3) // 4 * 4
        flags = 0
        while j < len(body):
            code, olen = struct.unpack_from('<HH', body, j)
            if code == 0: break
            if code == 2: flags = struct.unpack_from('<I', body, j+4)[0]
            j += 4 + (olen + 3) // 4 * 4
        d = {1: 'in', 2: 'out'}.get(flags & 3, '?')
        pkts.append('%s %s icmp%d' % (names[iface], d, data[34]))
    i += ln
print(' '.join(names))
for p in sorted(pkts): print(p)
"#;

#[test]
fn two_interfaces_make_a_pcapng_with_one_block_each() {
    let sb = two_namespaces();
    let file = sb.dir.path().join("both.pcapng").display().to_string();
    let cap = start(
        &sb,
        &[
            "capture",
            "a:eth0",
            "b:eth0",
            "-w",
            &file,
            "-c",
            "4",
            "--duration",
            "30s",
        ],
        Stdio::null(),
    );
    sb.ok("ip netns exec b ping -c 1 10.9.0.1 >/dev/null");
    let (code, err) = cap.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("(pcapng)"), "{err}");
    // tcpdump reads it: each echo twice (once per end of the veth).
    let got: Vec<String> = tcpdump(&sb, &file).iter().map(|l| shape(l)).collect();
    let req = "IP 10.9.0.2 > 10.9.0.1: ICMP echo request, seq 1, length 64";
    let rep = "IP 10.9.0.1 > 10.9.0.2: ICMP echo reply, seq 1, length 64";
    assert_eq!(got, [req, req, rep, rep]);
    let o = sb.run("python3", &["-c", PCAPNG_PY, &file]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "a:eth0 b:eth0\n\
         a:eth0 in icmp8\n\
         a:eth0 out icmp0\n\
         b:eth0 in icmp0\n\
         b:eth0 out icmp8\n"
    );
}

#[test]
fn stdout_streams_into_tcpdump_a_packet_at_a_time() {
    let sb = two_namespaces();
    // No count: packets must reach the reader while the capture still runs.
    let mut cap = start(&sb, &["capture", "a:eth0", "-w", "-"], Stdio::piped());
    let pipe = cap.child.stdout.take().expect("stdout");
    let mut td = sb
        .cmd("tcpdump")
        .args(["-l", "-n", "-r", "-"])
        .stdin(Stdio::from(pipe))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tcpdump");
    let (tx, rx) = mpsc::channel();
    let out = td.stdout.take().expect("tcpdump stdout");
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    sb.ok("ip netns exec b ping -c 1 10.9.0.1 >/dev/null");
    let first: Vec<String> = (0..2)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(10))
                .expect("tcpdump saw no packet while the capture ran")
        })
        .collect();
    assert!(
        cap.child.try_wait().unwrap().is_none(),
        "capture ended early"
    );
    assert_eq!(
        first.iter().map(|l| shape(l)).collect::<Vec<_>>(),
        [
            "IP 10.9.0.2 > 10.9.0.1: ICMP echo request, seq 1, length 64",
            "IP 10.9.0.1 > 10.9.0.2: ICMP echo reply, seq 1, length 64"
        ]
    );
    cap.signal("-INT");
    let (code, err) = cap.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("2 packets captured"), "{err}");
    let st = td.wait().unwrap();
    assert!(st.success(), "tcpdump did not end cleanly at EOF");
}

#[test]
fn lines_name_interface_direction_addresses() {
    let sb = two_namespaces();
    let mut cap = start(&sb, &["capture", "a:eth0", "-c", "2"], Stdio::piped());
    let mut so = cap.child.stdout.take().expect("stdout");
    sb.ok("ip netns exec b ping -c 1 10.9.0.1 >/dev/null");
    let (code, err) = cap.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    let mut out = String::new();
    so.read_to_string(&mut out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains(
            " a:eth0 in     98 02:00:00:00:00:02 > 02:00:00:00:00:01 ICMP 10.9.0.2 > 10.9.0.1 echo request id "
        ),
        "{out}"
    );
    assert!(
        lines[1].contains(" a:eth0 out    98 ")
            && lines[1].contains("ICMP 10.9.0.1 > 10.9.0.2 echo reply id "),
        "{out}"
    );
    // --json: one object per packet.
    let mut cap = start(
        &sb,
        &["--json", "capture", "b:eth0", "-c", "1"],
        Stdio::piped(),
    );
    let mut so = cap.child.stdout.take().expect("stdout");
    sb.ok("ip netns exec b ping -c 1 10.9.0.1 >/dev/null");
    let (code, err) = cap.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0), "{err}");
    let mut out = String::new();
    so.read_to_string(&mut out).unwrap();
    let v: serde_json::Value = serde_json::from_str(&out).expect("one JSON line");
    assert_eq!(v["iface"], "b:eth0");
    assert_eq!(v["dir"], "out");
    assert_eq!(v["len"], 98);
    assert_eq!(v["packet"]["proto"], "ICMP");
    assert_eq!(v["packet"]["src"], "10.9.0.2");
    assert_eq!(v["packet"]["dst"], "10.9.0.1");
}

#[test]
fn sigterm_and_duration_leave_complete_files() {
    let sb = two_namespaces();
    let file = sb.dir.path().join("term.pcapng").display().to_string();
    let cap = start(
        &sb,
        &["capture", "a:eth0", "b:eth0", "-w", &file],
        Stdio::null(),
    );
    sb.ok("ip netns exec b ping -c 2 -i 0.2 10.9.0.1 >/dev/null");
    // ping has its last reply, so every copy of it is queued on our
    // sockets: the capture must write them all before it ends.
    cap.signal("-TERM");
    let (code, err) = cap.wait(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("8 packets captured"), "{err}");
    assert_eq!(tcpdump(&sb, &file).len(), 8);

    // --duration ends it by itself; --nano keeps nanoseconds.
    let file = sb.dir.path().join("nano.pcap").display().to_string();
    let t0 = Instant::now();
    let cap = start(
        &sb,
        &[
            "capture",
            "a:eth0",
            "-w",
            &file,
            "--duration",
            "1500ms",
            "--nano",
        ],
        Stdio::null(),
    );
    sb.ok("ip netns exec b ping -c 1 10.9.0.1 >/dev/null");
    let (code, err) = cap.wait(Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(code, Some(0), "{err}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert!(err.contains("2 packets captured"), "{err}");
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(
        u32::from_ne_bytes(bytes[0..4].try_into().unwrap()),
        0xa1b2_3c4d
    );
    let o = sb.run(
        "tcpdump",
        &["-n", "--time-stamp-precision=nano", "-r", &file],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 2, "{out}");
    for l in out.lines() {
        let ts = l.split(' ').next().unwrap();
        let frac = ts.split('.').nth(1).unwrap_or("");
        assert_eq!(frac.len(), 9, "not nanoseconds: {l}");
    }
}

#[test]
fn errors_name_the_namespace_and_interface() {
    let sb = two_namespaces();
    let o = sb.netplumb(&["capture", "a:eth0", "a:eth9"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no interface eth9 in netns a"),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["capture", "app:eth0"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("no netns app"),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["capture", "eth0"]);
    assert!(
        text(&o.stderr).contains("no interface eth0 in the host namespace"),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["capture", "a:eth0", "a:eth0"]);
    assert!(
        text(&o.stderr).contains("a:eth0 is given twice"),
        "{}",
        text(&o.stderr)
    );
    let o = sb.netplumb(&["capture", "a:eth0", "--duration", "5parsecs"]);
    assert_eq!(o.status.code(), Some(2));
    // Not root and no sandbox: said before any socket is tried.
    let o = as_nobody(&["capture", "lo", "-c", "1"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("needs root") && text(&o.stderr).contains("--sandbox"),
        "{}",
        text(&o.stderr)
    );
}
