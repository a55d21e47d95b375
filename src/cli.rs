//! Command-line shape only.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not k=v"))?;
    let ok = !k.is_empty()
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !k.starts_with(|c: char| c.is_ascii_digit());
    if !ok {
        return Err(format!("'{k}' is not a variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[derive(Debug, Parser)]
#[command(
    name = "netplumb",
    version,
    about = "Build Linux network topologies from Rhai scripts, over netlink"
)]
pub struct Cli {
    /// More detail (phase timings with -v)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Run inside a fresh private network + mount namespace (and user namespace
    /// when not root): touches nothing on the machine, vanishes at exit.
    /// --sandbox=WORLD: inside the lasting world `sandbox start WORLD` made
    #[arg(
        long,
        global = true,
        value_name = "WORLD",
        num_args = 0..=1,
        require_equals = true
    )]
    pub sandbox: Option<Option<String>>,
    /// JSON output where the output is data
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Debug, clap::Args)]
pub struct ScriptArgs {
    /// The topology script (.rhai)
    pub file: PathBuf,
    /// Script parameter, visible as a constant (numbers as numbers)
    #[arg(long = "set", value_name = "K=V", value_parser = parse_kv)]
    pub set: Vec<(String, String)>,
    /// Topology name (default: the script's file stem)
    #[arg(long)]
    pub name: Option<String>,
    /// Stop a runaway script after this many script operations
    #[arg(long, default_value_t = 50_000_000)]
    pub max_ops: u64,
    /// Stop a script once netplumb's memory has grown this many MiB while it
    /// runs: its strings, arrays and maps (0: no limit)
    #[arg(long, value_name = "MIB", default_value_t = crate::script::limits::DEFAULT_MAX_MEMORY_MIB)]
    pub max_memory: u64,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the script and converge the kernel to it (idempotent)
    Up {
        #[command(flatten)]
        script: ScriptArgs,
        /// Fail at once instead of waiting when the topology is busy
        #[arg(long)]
        no_wait: bool,
    },
    /// Remove exactly what a topology created, newest first
    #[command(
        after_help = "Examples:\n  netplumb down lab.rhai       the topology of lab.rhai (its file stem)\n  netplumb down --name lab     a topology by name\n  netplumb down --all          every netplumb topology"
    )]
    Down {
        /// The script whose topology to remove (its file stem is the name)
        #[arg(required_unless_present_any = ["name", "all"], conflicts_with_all = ["name", "all"])]
        file: Option<PathBuf>,
        /// The topology to remove, by name
        #[arg(long, conflicts_with = "all")]
        name: Option<String>,
        /// Every netplumb topology
        #[arg(long)]
        all: bool,
        /// Fail at once instead of waiting when the topology is busy
        #[arg(long)]
        no_wait: bool,
        /// Forget the topology's record without touching the kernel (for a
        /// record that cannot be read any more)
        #[arg(long, requires = "name")]
        force_forget: bool,
    },
    /// Print the equivalent ip / nft commands without touching the kernel
    Plan {
        #[command(flatten)]
        script: ScriptArgs,
        /// Print exactly what `up` would run now against the live kernel
        /// (needs root or --sandbox): removals as `ip … del` lines, nothing
        /// when up to date
        #[arg(long)]
        diff: bool,
    },
    /// Run a command inside a namespace; its exit status is passed through
    /// (128+N when killed by signal N, 127 not found, 126 not executable)
    Exec {
        /// The namespace (as `ip netns` names it)
        ns: String,
        /// The command and its arguments (`--` before it is optional)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Interactive shell: every statement takes effect at once
    Repl {
        /// Run this script first, then continue interactively
        file: Option<PathBuf>,
        /// Topology name for the session's objects (default: repl)
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "set", value_name = "K=V", value_parser = parse_kv)]
        set: Vec<(String, String)>,
    },
    /// Namespaces, links, addresses, routes and NAT of netplumb's topologies
    Show {
        /// One topology (default: all)
        name: Option<String>,
    },
    /// A picture of a topology
    Graph {
        name: Option<String>,
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
        /// Write to this file instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Every namespace pings every address of the topology: a reachability matrix
    PingAll { name: Option<String> },
    /// The script language reference: core functions, bundled modules
    Doc {
        /// core, a module (docker, portmap, lab, ./mine.rhai) or a function name
        #[arg(value_name = "MODULE|FUNCTION")]
        module: Option<String>,
        /// Fail when a registered function or module function is undocumented
        #[arg(long, hide = true)]
        check: bool,
    },
    /// Validate a script (FILE.rhai, no root), or report a topology's drift
    /// from its script (NAME; exit 1 when drifted). Changes nothing.
    Check {
        #[arg(value_name = "FILE|NAME")]
        target: String,
        #[arg(long = "set", value_name = "K=V", value_parser = parse_kv)]
        set: Vec<(String, String)>,
    },
    /// Record packets on interfaces: pcap, pcapng, or a line per packet
    Capture(CaptureArgs),
    /// A sandbox that lasts: its own user, network, mount and PID
    /// namespaces, used by `--sandbox=WORLD` commands until it is stopped
    #[command(subcommand)]
    Sandbox(SandboxCmd),
    /// Print shell completions
    Completions { shell: clap_complete::Shell },
}

/// "5s", "500ms", "2m", "1h", or plain seconds ("1.5").
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration (like 5s, 500ms, 2m)"))?;
    let scale = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m or h)")),
    };
    std::time::Duration::try_from_secs_f64(n * scale).map_err(|e| format!("'{s}': {e}"))
}

#[derive(Debug, clap::Args)]
pub struct CaptureArgs {
    /// Interfaces: NS:IF, host:IF or IF (the namespace netplumb runs in)
    #[arg(required = true, value_name = "NS:IF")]
    pub targets: Vec<String>,
    /// Write packets to FILE, or - for stdout (pcap for one interface,
    /// pcapng for several); without it, print one line per packet
    #[arg(short = 'w', long = "write", value_name = "FILE|-")]
    pub write: Option<PathBuf>,
    /// Stop after this many packets (over all interfaces)
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Stop after this long (5s, 500ms, 2m)
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<std::time::Duration>,
    /// Nanosecond timestamps in a pcap file (default: microseconds)
    #[arg(long)]
    pub nano: bool,
    /// Write pcapng even for one interface
    #[arg(long)]
    pub pcapng: bool,
    /// Keep at most this many bytes of each packet
    #[arg(short = 's', long, default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(64..=262_144))]
    pub snaplen: u32,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCmd {
    /// Start a world that lasts (a small holder process in the background)
    Start {
        #[arg(default_value = "default")]
        world: String,
    },
    /// Open your $SHELL inside a world
    Shell {
        #[arg(default_value = "default")]
        world: String,
    },
    /// End a world and every process inside it
    Stop { world: String },
    /// The worlds that are running (holder pid, age); forgets dead ones
    List,
    /// The holder itself (started by `sandbox start`)
    #[command(hide = true)]
    Hold { world: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Svg,
    Mermaid,
}
