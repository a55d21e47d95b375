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

/// A topology name, checked where clap parses it: a bad `--name` is a
/// usage error (exit 2) like any other malformed argument.
fn parse_topology_name(s: &str) -> Result<String, String> {
    crate::ledger::check_topology_name(s)
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
}

#[derive(Debug, Parser)]
#[command(
    name = "netplumb",
    version,
    about = "Build Linux network topologies from Rhai scripts, over netlink",
    after_help = "Examples:
  netplumb plan lab.rhai             the ip / nft commands it stands for
  sudo netplumb up lab.rhai          build it (again: only what changed)
  netplumb --sandbox up lab.rhai     the same in a throwaway namespace
  sudo netplumb exec web ip addr     a command inside netns web
  sudo netplumb down lab.rhai        remove exactly what it made
  netplumb help up                   one command, with examples"
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
    /// One JSON document on stdout instead of text (schemas:
    /// docs/*-json.md); a command with no data to give refuses it
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
    #[arg(long, value_parser = parse_topology_name)]
    pub name: Option<String>,
    /// Stop a runaway script after this many script operations
    #[arg(long, default_value_t = 50_000_000)]
    pub max_ops: u64,
    /// Stop a script once netplumb's memory has grown this many MiB while it
    /// runs: its strings, arrays and maps (0: no limit)
    #[arg(long, value_name = "MIB", default_value_t = crate::script::limits::DEFAULT_MAX_MEMORY_MIB)]
    pub max_memory: u64,
    /// In a script with sites: only this site's part (and its tunnel ends)
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the script and converge the kernel to it (idempotent)
    #[command(after_help = "Examples:
  sudo netplumb up lab.rhai            build lab.rhai's topology, \"lab\"
  sudo netplumb up lab.rhai --set n=8  with the script constant n = 8
  sudo netplumb up lab.rhai --name b   a second copy, named b
  netplumb up lab.rhai --all-sites     each site's part, over ssh
  netplumb --sandbox up lab.rhai       in a throwaway namespace, no root
  sudo netplumb up --json lab.rhai | jq '.changes[].summary'

Prints a line per change (+ created, ~ changed, - removed; \"(repaired)\"
where the kernel had drifted), each before the script's print() lines
that came after it, then the counts. When the kernel already matches,
nothing changes.

`up - --name N` reads the script from stdin: a plain script, or a bundle
(`#!netplumb-bundle 1`: the script and its local modules), as
`up --all-sites` sends it to each site over ssh.")]
    Up {
        #[command(flatten)]
        script: ScriptArgs,
        /// Fail at once instead of waiting when the topology is busy
        #[arg(long)]
        no_wait: bool,
        /// With `up -` and a bundle: after apply, print READY and keep the
        /// changes only if stdin then says COMMIT (ABORT or EOF: roll back,
        /// exit 3)
        #[arg(long, conflicts_with = "all_sites")]
        hold: bool,
        /// Bring up every site of the script, each over ssh ($NETPLUMB_SSH,
        /// default ssh) in parallel: all of them or none
        #[arg(long, conflicts_with = "site")]
        all_sites: bool,
    },
    /// Remove exactly what a topology created, newest first
    #[command(
after_help = DOWN_FORMS
    )]
    Down {
        /// The script whose topology to remove (its file stem is the name)
        #[arg(conflicts_with = "all")]
        file: Option<PathBuf>,
        /// The topology to remove, by name
        #[arg(long, conflicts_with = "all", value_parser = parse_topology_name)]
        name: Option<String>,
        /// Every netplumb topology
        #[arg(long)]
        all: bool,
        /// Fail at once instead of waiting when the topology is busy
        #[arg(long)]
        no_wait: bool,
        /// Forget the topology's record without touching the kernel (for a
        /// record that cannot be read any more): `down --force-forget NAME`
        /// (or --name NAME, or the script)
        #[arg(long, conflicts_with = "all")]
        force_forget: bool,
        /// Refuse unless this machine holds that site's part of the topology
        #[arg(long, value_name = "NAME", conflicts_with = "all")]
        site: Option<String>,
        /// Remove every site's part of the script FILE, each over ssh, in
        /// parallel (--name: the topology's name, if not FILE's stem)
        #[arg(long, conflicts_with_all = ["all", "force_forget", "site"])]
        all_sites: bool,
    },
    /// Print the equivalent ip / nft commands without touching the kernel
    #[command(after_help = "Examples:
  netplumb plan lab.rhai                every command, on an empty machine
  netplumb plan lab.rhai | sh -e        build it with ip and nft instead
  sudo netplumb plan --diff lab.rhai    only what `up` would run now
  netplumb plan --json lab.rhai         the ops as objects

The script's print() output goes to stderr; exec() and ping() are not run
(they answer status 0 and true, and a note on stderr says so).")]
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
    #[command(after_help = "Examples:
  sudo netplumb exec web ip -br addr      as ip netns exec web ip -br addr
  sudo netplumb exec web sh -c 'exit 3'   exits 3
  sudo netplumb exec web -- ip route      `--` is optional

Like `ip netns exec`: /etc/netns/NS files are bound over /etc, and /sys is
the namespace's.")]
    Exec {
        /// The namespace (as `ip netns` names it)
        ns: String,
        /// The command and its arguments (`--` before it is optional)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
        cmd: Vec<String>,
    },
    /// Interactive shell: every statement takes effect at once
    #[command(after_help = "Examples:
  sudo netplumb repl               an empty topology named repl
  sudo netplumb repl lab.rhai      lab.rhai first, then go on by hand
  netplumb --sandbox repl          try things without root

Inside, :help lists the meta commands (:plan, :down, :doc, …).")]
    Repl {
        /// Run this script first, then continue interactively
        file: Option<PathBuf>,
        /// Topology name for the session's objects (default: repl)
        #[arg(long, value_parser = parse_topology_name)]
        name: Option<String>,
        /// Script parameter, visible as a constant (numbers as numbers)
        #[arg(long = "set", value_name = "K=V", value_parser = parse_kv)]
        set: Vec<(String, String)>,
    },
    /// Bring a script up in a fresh sandbox, run its checks, write JUnit XML
    #[command(after_help = "Examples:
  netplumb test lab.rhai                   up, the checks, down: no root
  netplumb test lab.rhai --junit out.xml   and a JUnit report for CI
  netplumb test lab.rhai --junit -         the report on stdout
  sudo netplumb test lab.rhai --keep       here, and leave it up

The checks are the script's assert_reach / assert_no_reach calls and
ping-all's expectations. Without --keep the topology is built in a
throwaway sandbox (as with --sandbox) and torn down; --sandbox=WORLD runs
it in that world. Exits 1 when a check failed (each is reported with its
script line).")]
    Test {
        #[command(flatten)]
        script: ScriptArgs,
        /// Write a JUnit XML report here (one testcase per assertion; - for stdout)
        #[arg(long, value_name = "OUT.xml")]
        junit: Option<PathBuf>,
        /// Build it here instead of in a throwaway sandbox, and leave it up
        /// afterwards (for inspection)
        #[arg(long)]
        keep: bool,
    },
    /// The processes (daemons) netplumb's topologies run
    #[command(after_help = "Examples:
  sudo netplumb ps              every topology's daemons
  sudo netplumb ps lab          one topology's
  sudo netplumb ps --json lab   as JSON (docs/ps-json.md)

A daemon whose recorded process is gone shows as exited; `up` starts it
again (and reports it as repaired).")]
    Ps {
        /// One topology (default: all)
        name: Option<String>,
    },
    /// Keep topologies as their scripts say: repair drift (a flushed
    /// ruleset, a deleted veth) as soon as the kernel reports a change
    #[command(after_help = "Examples:
  sudo netplumb watch             every topology that is up
  sudo netplumb watch web db      these two

It listens to the kernel's link, address, route and nf_tables events
and runs `up` of each watched topology from how it was last brought up
(its script and --set values) within a second of a change, logging what
it repaired; a quiet pass every few seconds catches changes inside
namespaces. SIGTERM or Ctrl-C stops it and leaves the topologies as
they are.")]
    Watch {
        /// The topologies to keep (default: every topology that is up)
        names: Vec<String>,
        /// Seconds between the quiet passes that need no event
        #[arg(long, value_name = "SECS", default_value_t = 5)]
        every: u64,
    },
    /// The output (stdout and stderr) of a topology's daemon
    #[command(after_help = "Examples:
  sudo netplumb logs lab web      what daemon web of topology lab wrote
  sudo netplumb logs lab web -f   and keep following it (Ctrl-C stops)")]
    Logs {
        /// The topology
        name: String,
        /// The daemon (its name: #{ name: … }, or its program's)
        daemon: String,
        /// Keep printing what it writes, until interrupted
        #[arg(short, long)]
        follow: bool,
    },
    /// Namespaces, links, addresses, routes and NAT of netplumb's topologies
    #[command(after_help = "Examples:
  sudo netplumb show               every topology, as the kernel has it
  sudo netplumb show lab           one topology
  sudo netplumb show --json lab    as JSON (docs/show-json.md)")]
    Show {
        /// One topology (default: all)
        name: Option<String>,
    },
    /// A picture of a topology
    #[command(after_help = "Examples:
  sudo netplumb graph lab | dot -Tpng > lab.png
  sudo netplumb graph lab --format svg -o lab.svg
  sudo netplumb graph --format mermaid   every topology, for Markdown")]
    Graph {
        /// One topology (default: all), or a script with sites (FILE.rhai:
        /// every site a cluster, tunnels dashed edges labelled with the VNI)
        name: Option<String>,
        /// dot (Graphviz source), svg (rendered with dot), or mermaid
        #[arg(long, value_enum, default_value_t = crate::show::GraphFormat::Dot)]
        format: crate::show::GraphFormat,
        /// Write to this file instead of stdout
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Read the live kernel back into a script that rebuilds it: namespaces,
    /// veth pairs, bridges, addresses, routes, sysctls and NAT (iptables-nft's
    /// `ip nat` table too)
    #[command(after_help = "Examples:
  sudo netplumb import                  everything, as a script on stdout
  sudo netplumb import -o lab.rhai      into a file, for netplumb up
  sudo netplumb import --netns web      only namespace web (repeatable)
  sudo netplumb import --host           only the host's own side

Repeated namespaces on a bridge become one `for` loop; devices netplumb
did not make (eth0) are adopted with host().link() where a bridge has
them; what the script language cannot say is listed as `// not imported:`
comments, never dropped silently.")]
    Import {
        /// Import this named namespace (repeatable); with neither --netns nor
        /// --host, the host and every namespace under /run/netns
        #[arg(long, value_name = "NS")]
        netns: Vec<String>,
        /// Import the host (the namespace netplumb runs in)
        #[arg(long)]
        host: bool,
        /// Write the script to this file instead of stdout
        #[arg(short, long, value_name = "FILE.rhai")]
        output: Option<PathBuf>,
    },
    /// Every namespace pings every address of the topology: a reachability matrix
    #[command(after_help = "Examples:
  sudo netplumb ping-all lab   exit 1 when a pair that should reach fails
  sudo netplumb ping-all       every topology
  netplumb ping-all lab.rhai --all-sites   on each site, over ssh")]
    PingAll {
        /// One topology (default: all); with --all-sites its script
        /// (FILE.rhai) or a name whose last `up` here was from a script
        #[arg(value_name = "NAME|FILE")]
        name: Option<String>,
        /// Run it on every site of the script, over ssh, in parallel
        #[arg(long)]
        all_sites: bool,
        /// Also ping this address of another site's part (SITE:NS:DEV=ADDR;
        /// what --all-sites passes each site)
        #[arg(long, value_name = "SITE:NS:DEV=ADDR", hide = true)]
        also: Vec<String>,
    },
    /// The script language reference: core functions, bundled modules
    #[command(after_help = "Examples:
  netplumb doc                 the core functions and the module list
  netplumb doc veth            one function
  netplumb doc portmap         a bundled module
  netplumb doc ./mine.rhai     the doc comments of your own module
  netplumb doc --json core     machine-readable")]
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
    #[command(after_help = "Examples:
  netplumb check lab.rhai          does the script run? (no root)
  sudo netplumb check lab          has the kernel drifted from the script?
  sudo netplumb check --json lab   the drift and the command to repair it")]
    Check {
        /// A script (ends in .rhai, or an existing file), or a topology's name
        #[arg(value_name = "FILE|NAME")]
        target: String,
        /// Script parameter for FILE, visible as a constant (NAME reuses
        /// the ones it was brought up with)
        #[arg(long = "set", value_name = "K=V", value_parser = parse_kv)]
        set: Vec<(String, String)>,
        /// In a script with sites: validate only this site's part
        #[arg(long, value_name = "NAME")]
        site: Option<String>,
    },
    /// Record packets on interfaces: pcap, pcapng, or a line per packet
    #[command(after_help = "Examples:
  sudo netplumb capture web:eth0               a line per packet until ^C
  sudo netplumb capture web:eth0 -c 10 --json  ten packets as JSON lines
  sudo netplumb capture web:eth0 db:eth0 -w two.pcapng --duration 5s
  sudo netplumb capture web:eth0 -w - | tcpdump -r -")]
    Capture(CaptureArgs),
    /// A sandbox that lasts: its own user, network, mount and PID
    /// namespaces, used by `--sandbox=WORLD` commands until it is stopped
    #[command(
        subcommand,
        after_help = "Examples:
  netplumb sandbox start lab              a world named lab
  netplumb --sandbox=lab up lab.rhai      build inside it, no root needed
  netplumb --sandbox=lab show             it lasts between commands
  netplumb sandbox stop lab               end it and everything in it"
    )]
    Sandbox(SandboxCmd),
    /// Print shell completions
    #[command(after_help = "Examples:
  source <(netplumb completions bash)    in ~/.bashrc, or see README
  netplumb completions zsh > ~/.zfunc/_netplumb
  netplumb completions fish > ~/.config/fish/completions/netplumb.fish")]
    Completions {
        /// The shell to write completions for
        shell: clap_complete::Shell,
    },
    /// Manual pages, made from this command line's own definitions
    #[command(after_help = "Examples:
  netplumb man | man -l -                     read netplumb(1) now
  netplumb man -o ~/.local/share/man/man1     every page: man netplumb-up
  sudo netplumb man -o /usr/local/share/man/man1")]
    Man {
        /// Write netplumb.1 and a page per command (netplumb-up.1, …) into
        /// this directory, instead of netplumb.1 to stdout
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
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
    #[command(after_help = "Examples:
  netplumb sandbox start lab    then: netplumb --sandbox=lab up lab.rhai
  netplumb sandbox start --json lab    {\"world\": …, \"pid\": …}")]
    Start {
        /// The world's name
        #[arg(default_value = "default")]
        world: String,
    },
    /// Open your $SHELL inside a world
    #[command(after_help = "Examples:
  netplumb sandbox shell lab    ip, nft, ping… see the world's namespaces")]
    Shell {
        /// The world's name
        #[arg(default_value = "default")]
        world: String,
    },
    /// End a world and every process inside it
    #[command(after_help = "Examples:
  netplumb sandbox stop lab")]
    Stop {
        /// The world's name
        world: String,
    },
    /// The worlds that are running (holder pid, age); forgets dead ones
    #[command(after_help = "Examples:
  netplumb sandbox list
  netplumb sandbox list --json")]
    List,
    /// The holder itself (started by `sandbox start`)
    #[command(hide = true)]
    Hold {
        /// The world's name
        world: String,
    },
}

/// The three ways to name what `down` removes, for its help and for the
/// error when none is given.
const DOWN_FORMS: &str = "Examples:
  netplumb down lab.rhai       the topology of lab.rhai (its file stem)
  netplumb down --name lab     a topology by name
  netplumb down --all          every netplumb topology
  netplumb down lab.rhai --all-sites   every site's part, over ssh";

/// Usage errors clap's attributes cannot express; exit status 2 like theirs.
impl Cli {
    pub fn check_usage(&self) -> Result<(), clap::Error> {
        use clap::CommandFactory;
        use clap::error::ErrorKind;
        if let Cmd::Down {
            file: None,
            name: None,
            all: false,
            ..
        } = &self.cmd
        {
            let forms = DOWN_FORMS.trim_start_matches("Examples:\n");
            let msg = format!("which topology? down needs one of:\n{forms}");
            // The error shows `down`'s own usage line, not the top level's.
            let mut root = Cli::command();
            root.build();
            let err = match root.find_subcommand_mut("down") {
                Some(down) => down.error(ErrorKind::MissingRequiredArgument, msg),
                None => root.error(ErrorKind::MissingRequiredArgument, msg),
            };
            return Err(err);
        }
        if let Cmd::Down {
            file: Some(_),
            name: Some(_),
            all_sites: false,
            ..
        } = &self.cmd
        {
            let msg = "the argument '[FILE]' cannot be used with '--name <NAME>' \
                       (only with --all-sites, where FILE names the sites)";
            let mut root = Cli::command();
            root.build();
            let err = match root.find_subcommand_mut("down") {
                Some(down) => down.error(ErrorKind::ArgumentConflict, msg),
                None => root.error(ErrorKind::ArgumentConflict, msg),
            };
            return Err(err);
        }
        if self.json
            && let Some(why) = self.cmd.no_json()
        {
            let msg = format!("--json: {why}");
            return Err(Cli::command().error(ErrorKind::ArgumentConflict, msg));
        }
        Ok(())
    }
}

impl Cmd {
    /// Why `--json` means nothing for this command (None: it honours it).
    fn no_json(&self) -> Option<&'static str> {
        match self {
            Cmd::Up { .. }
            | Cmd::Down { .. }
            | Cmd::Plan { .. }
            | Cmd::Check { .. }
            | Cmd::Show { .. }
            | Cmd::PingAll { .. }
            | Cmd::Ps { .. }
            | Cmd::Doc { .. } => None,
            Cmd::Test { .. } => Some("test reports as JUnit XML: use --junit FILE (or -)"),
            Cmd::Logs { .. } => Some("logs passes the daemon's own output through"),
            Cmd::Watch { .. } => Some("watch logs its repairs as text lines"),
            Cmd::Import { .. } => Some("import writes a .rhai script"),
            Cmd::Exec { .. } => Some("exec passes the command's own output through"),
            Cmd::Repl { .. } => Some("the REPL is interactive; use up --json for a script"),
            Cmd::Graph { .. } => Some("graph draws pictures: choose with --format dot|svg|mermaid"),
            Cmd::Completions { .. } => Some("completions are a shell script"),
            Cmd::Man { .. } => Some("man pages are roff"),
            Cmd::Capture(a) if a.write.is_some() => {
                Some("capture -w writes pcap or pcapng; --json is for the line per packet")
            }
            Cmd::Capture(_) => None,
            Cmd::Sandbox(SandboxCmd::Start { .. } | SandboxCmd::List) => None,
            Cmd::Sandbox(SandboxCmd::Shell { .. }) => Some("sandbox shell opens a shell"),
            Cmd::Sandbox(SandboxCmd::Stop { .. }) => Some("sandbox stop has nothing to report"),
            Cmd::Sandbox(SandboxCmd::Hold { .. }) => Some("the holder prints nothing"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command, depth first, with its path ("netplumb sandbox start").
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.clone(), cmd.clone()));
        for s in cmd.get_subcommands() {
            walk(s, format!("{path} {}", s.get_name()), out);
        }
    }

    fn commands() -> Vec<(String, clap::Command)> {
        let mut root = Cli::command();
        root.build();
        let mut all = Vec::new();
        walk(&root, "netplumb".into(), &mut all);
        // clap's own `help` subcommand is not ours to document.
        all.retain(|(p, _)| !p.split(' ').any(|w| w == "help"));
        all
    }

    #[test]
    fn every_argument_has_help() {
        let mut missing = Vec::new();
        for (path, cmd) in commands() {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                let has = a
                    .get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty());
                if !has {
                    missing.push(format!("{path}: {id}"));
                }
            }
        }
        assert!(missing.is_empty(), "arguments without help: {missing:#?}");
    }

    #[test]
    fn every_command_has_an_example() {
        let mut missing = Vec::new();
        for (path, cmd) in commands() {
            if cmd.is_hide_set() {
                continue;
            }
            let help = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let own = help
                .lines()
                .any(|l| l.starts_with("  ") && l.split_whitespace().any(|w| w == "netplumb"));
            if !help.starts_with("Examples:\n") || !own {
                missing.push(path.clone());
            }
            for l in help.lines() {
                // Readable in an 80-column terminal and in man's indent.
                if l.chars().count() > 74 {
                    missing.push(format!("{path}: line too long: {l:?}"));
                }
            }
            if cmd.get_about().is_none() {
                missing.push(format!("{path} (no about)"));
            }
        }
        assert!(
            missing.is_empty(),
            "commands without a (fitting) example: {missing:#?}"
        );
    }

    #[test]
    fn down_alone_names_all_three_forms_and_is_a_usage_error() {
        let cli = Cli::try_parse_from(["netplumb", "down"]).unwrap();
        let e = cli.check_usage().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        for form in [
            "netplumb down lab.rhai",
            "netplumb down --name lab",
            "netplumb down --all",
        ] {
            assert!(msg.contains(form), "{msg}");
        }
        assert!(msg.contains("Usage: netplumb down"), "{msg}");
        for ok in [
            &["netplumb", "down", "x.rhai"][..],
            &["netplumb", "down", "--all"],
        ] {
            let cli = Cli::try_parse_from(ok).unwrap();
            assert!(cli.check_usage().is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn down_file_with_name_only_with_all_sites() {
        let cli = Cli::try_parse_from(["netplumb", "down", "x.rhai", "--name", "y"]).unwrap();
        let e = cli.check_usage().unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("Usage: netplumb down"), "{e}");
        let ok = ["netplumb", "down", "x.rhai", "--name", "y", "--all-sites"];
        assert!(Cli::try_parse_from(ok).unwrap().check_usage().is_ok());
    }

    #[test]
    fn json_where_it_means_nothing_is_a_usage_error() {
        let refused: [&[&str]; 7] = [
            &["exec", "ns", "true"],
            &["repl"],
            &["graph"],
            &["completions", "bash"],
            &["man"],
            &["sandbox", "shell"],
            &["capture", "a:eth0", "-w", "x.pcap"],
        ];
        for args in refused {
            let argv = [&["netplumb", "--json"][..], args].concat();
            let cli = Cli::try_parse_from(&argv).unwrap();
            let e = cli.check_usage().expect_err(&format!("{argv:?}"));
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("--json: "), "{e}");
        }
        let honoured: [&[&str]; 8] = [
            &["up", "x.rhai"],
            &["down", "--all"],
            &["plan", "x.rhai"],
            &["check", "x"],
            &["show"],
            &["ping-all"],
            &["doc"],
            &["sandbox", "list"],
        ];
        for args in honoured {
            let argv = [&["netplumb", "--json"][..], args].concat();
            let cli = Cli::try_parse_from(&argv).unwrap();
            assert!(cli.check_usage().is_ok(), "{argv:?}");
        }
    }

    #[test]
    fn exec_takes_the_command_without_a_double_dash() {
        let cli = Cli::try_parse_from(["netplumb", "exec", "ns", "sh", "-c", "exit 3"]).unwrap();
        let Cmd::Exec { ns, cmd } = cli.cmd else {
            panic!("not exec")
        };
        assert_eq!(ns, "ns");
        assert_eq!(cmd, ["sh", "-c", "exit 3"]);
    }
}
