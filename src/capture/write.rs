//! Where captured packets go: a pcap or pcapng file (or stdout), or a line
//! per packet (text or JSON).

use super::*;

/// Where packets go.
pub(super) enum Sink {
    Pcap(pcap::PcapWriter<Box<dyn Write>>),
    Pcapng(pcapng::PcapngWriter<Box<dyn Write>>),
    Lines { json: bool },
}

pub(super) struct Out {
    pub(super) sink: Sink,
    /// stdout carries the packets: flush each one so a reader sees it now.
    pub(super) stream: bool,
    pub(super) name: String,
}

pub(super) fn open_out(
    a: &CaptureArgs,
    labels: &[String],
    socks: &[PacketSocket],
    json: bool,
) -> Result<Out, CaptureError> {
    let Some(path) = &a.write else {
        return Ok(Out {
            sink: Sink::Lines { json },
            stream: true,
            name: "stdout".into(),
        });
    };
    let stream = path == &PathBuf::from("-");
    let name = if stream {
        "stdout".to_string()
    } else {
        path.display().to_string()
    };
    let w: Box<dyn Write> = if stream {
        if io::stdout().is_terminal() {
            return Err(CaptureError::Write(
                name,
                io::Error::other(
                    "it is a terminal; pipe it (| tcpdump -r -, | wireshark -k -i -) or name a file",
                ),
            ));
        }
        Box::new(io::stdout())
    } else {
        let f = File::create(path).map_err(|e| CaptureError::Write(name.clone(), e))?;
        Box::new(io::BufWriter::with_capacity(1 << 16, f))
    };
    let werr = |e| CaptureError::Write(name.clone(), e);
    let sink = if socks.len() == 1 && !a.pcapng {
        Sink::Pcap(pcap::PcapWriter::new(w, socks[0].linktype, a.snaplen, a.nano).map_err(werr)?)
    } else {
        let ifaces: Vec<pcapng::Iface> = labels
            .iter()
            .zip(socks)
            .map(|(l, s)| pcapng::Iface {
                name: l.clone(),
                linktype: s.linktype,
            })
            .collect();
        Sink::Pcapng(pcapng::PcapngWriter::new(w, &ifaces, a.snaplen).map_err(werr)?)
    };
    let mut out = Out { sink, stream, name };
    // The header now: `wireshark -k -i -` starts before the first packet.
    out.flush()
        .map_err(|e| CaptureError::Write(out.name.clone(), e))?;
    Ok(out)
}

impl Out {
    pub(super) fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Pcap(w) => w.flush(),
            Sink::Pcapng(w) => w.flush(),
            Sink::Lines { .. } => io::stdout().flush(),
        }
    }

    pub(super) fn write(
        &mut self,
        iface: usize,
        label: &str,
        linktype: u16,
        p: &socket::Packet,
    ) -> io::Result<()> {
        match &mut self.sink {
            Sink::Pcap(w) => w.packet(p.ts_ns, &p.data, p.orig_len)?,
            Sink::Pcapng(w) => w.packet(iface as u32, p.ts_ns, &p.data, p.orig_len, p.outgoing)?,
            Sink::Lines { json } => {
                let d = summary::decode(linktype, &p.data);
                let dir = if p.outgoing { "out" } else { "in" };
                let line = if *json {
                    let v = serde_json::json!({
                        "time": p.ts_ns as f64 / 1e9,
                        "iface": label,
                        "dir": dir,
                        "len": p.orig_len,
                        "packet": d,
                    });
                    v.to_string()
                } else {
                    format!(
                        "{} {label} {dir:<3} {:>5} {}",
                        time_of_day(p.ts_ns),
                        p.orig_len,
                        d.line()
                    )
                };
                let mut so = io::stdout().lock();
                writeln!(so, "{line}")?;
            }
        }
        if self.stream {
            self.flush()?;
        }
        Ok(())
    }
}

/// Local time of day with microseconds, as tcpdump prints it.
pub(super) fn time_of_day(ts_ns: u64) -> String {
    let secs = (ts_ns / 1_000_000_000) as libc::time_t;
    let micros = (ts_ns % 1_000_000_000) / 1000;
    // SAFETY: plain data; localtime_r fills `tm` and touches nothing shared.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return format!("{secs}.{micros:06}");
        }
        tm
    };
    format!(
        "{:02}:{:02}:{:02}.{micros:06}",
        tm.tm_hour, tm.tm_min, tm.tm_sec
    )
}
