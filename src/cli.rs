//! Command-line flags. Parsing and the checks that need no I/O only
//! (ripgrep's rule): [`parse`] turns argv into one [`Command`] whose flags
//! are already checked ([`Flags`]); `config::resolve` turns those into a
//! resolved `Config` (the only step that does discovery I/O).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

pub use crate::address::IpFamily;
use crate::address::Source;
pub use crate::discovery::RecordKind;
use crate::exit_codes::{ExitCode, Failure};
pub use crate::logging::LogFormat;
pub use crate::peer::PeersFormat;
pub use crate::platform::Platform;

const EXAMPLES: &str = "\
Examples:
  # Dockerfile: beamup in front of a mix release
  ENTRYPOINT [\"/usr/local/bin/beamup\", \"--\"]
  CMD [\"/app/bin/my_app\", \"start\"]

  # Kubernetes (downward API POD_IP, headless service), joining peers itself, beamup staying PID 1
  beamup --init --ip env:POD_IP --query 'my-app-headless.${POD_NAMESPACE}.svc.cluster.local' --connect -- /app/bin/my_app start

  # Docker Swarm preset: peers from tasks.<service> (BEAMUP_SERVICE names the service)
  BEAMUP_SERVICE=web beamup --platform swarm -- /app/bin/my_app start

  # Any overlay interface, a query from the environment
  beamup --ip interface:eth0 --query 'tasks.${SERVICE}' -- /app/bin/my_app start

  # Fly.io: IPv6 private address, AAAA discovery
  beamup --ip env:FLY_PRIVATE_IP --query '${FLY_APP_NAME}.internal' -- /app/bin/my_app start

  # Rancher 1.x metadata (replaces rancher_boot.sh)
  beamup --ip rancher --query '${RANCHER_SERVICE_NAME}' -- /app/bin/my_app start

  # See every decision without starting anything
  beamup inspect --json -- /app/bin/my_app start

  # In the running container: a remote shell, an rpc, a readiness probe
  docker exec -it my_container beamup remote
  kubectl exec my-pod -- beamup rpc 'Node.list()'
  beamup status --min-peers 2

  # Why do the nodes not connect? Check this node, discovery and every peer
  docker exec c beamup doctor

Exit codes: 0 ok (after exec, or with --init: the release's own status), 1 not ready (status) or
a failed check (doctor), 2 usage, 3 configuration, 4 no address found, 5 discovery failed (peers),
6 no node started through beamup here (remote, rpc, pid, stop, env), 126 command not executable,
127 command not found, 128+n signal n before the release started (143: SIGTERM).
";

const DOCTOR_HELP: &str = "\
Run it next to the node: it takes the node's identity and what it discovers from the record
beamup wrote at boot (flags given here still win), else from the same flags (or BEAMUP_*
variables) as at boot:
  docker exec c beamup doctor
  kubectl exec pod -- beamup doctor --json

One line per check (✔ ok, ✗ failed with a hint, – skipped), then a verdict line.
Exit codes: 0 every check passed, 1 a check failed, 2 usage, 3 configuration, 4 no address found.
";

/// What `beamup --version` prints after the name: the version, the target triple (which release
/// asset this is) and the git commit it was built from (`unknown` outside a checkout), both set
/// by build.rs.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("BEAMUP_TARGET"),
    ", commit ",
    env!("BEAMUP_COMMIT"),
    ")"
);

/// beamup: name a BEAM release after its container's own address, render its
/// templates, keep its peers discovered and exec it.
#[derive(Debug, Parser)]
#[command(
    name = "beamup",
    version = VERSION_LINE,
    about = "Names an Erlang/Elixir release after its container's own address, keeps its peers \
             discovered, and execs it.",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub subcommand: Option<Sub>,

    #[command(flatten)]
    pub opts: Opts,

    /// The release command to exec, after `--` (e.g. `-- /app/bin/my_app start`).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Subcommand)]
// A subcommand's arguments are built only when it is named (or its help is
// shown): each of inspect, peers and doctor carries every option again, and
// building those three copies on every boot was a third of beamup's
// start-up (issue 19; clap's `Command::defer`, the default in clap 5).
#[command(defer = true)]
pub enum Sub {
    /// Print every decision (address, node name, exports, rendered files, query); writes and execs nothing.
    #[command(after_help = EXAMPLES)]
    Inspect {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        opts: Opts,
        /// The release command beamup would exec (used to infer the basename and the release kind).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Resolve the discovery query once and print the peers' node names to stdout (next to a
    /// running node, what it discovers unless flags say otherwise).
    Peers {
        /// Keep polling and print a line for every change (`+node` joined, `-node` left).
        #[arg(long)]
        watch: bool,
        #[command(flatten)]
        opts: Opts,
    },
    /// Check this node, discovery and every peer, and say why nodes do not cluster.
    #[command(after_help = DOCTOR_HELP)]
    Doctor {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        opts: Opts,
        /// The release command (used to infer the basename and to find its releases/COOKIE).
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    #[command(flatten)]
    Ops(OpsCommand),
}

/// Commands for the node beamup booted here, found through its boot record
/// (for `docker exec c beamup ...` / `kubectl exec pod -- beamup ...`).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum OpsCommand {
    /// Open a remote shell on the running node (the release's `remote` / `remote_console`).
    Remote {
        #[command(flatten)]
        target: Target,
    },
    /// Run an expression on the running node: Elixir for mix (`rpc`), Erlang for relx (`eval`).
    Rpc {
        /// The expression, e.g. `IO.puts(node())` (mix) or `node().` (relx).
        #[arg(value_name = "EXPR", allow_hyphen_values = true)]
        expr: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print the running node's OS pid (the release's `pid`).
    Pid {
        #[command(flatten)]
        target: Target,
    },
    /// Stop the running node gracefully (the release's `stop`).
    Stop {
        #[command(flatten)]
        target: Target,
    },
    /// Exit 0 when the reporter is alive and at least N peers are connected (discovered without --connect), else 1.
    Status {
        /// Print one JSON object instead of one line.
        #[arg(long)]
        json: bool,
        /// How many peers must be connected (discovered without --connect).
        #[arg(long, value_name = "N", default_value_t = 0)]
        min_peers: usize,
        #[command(flatten)]
        target: Target,
    },
    /// Print the running node's identity as `export` lines for a release's env.sh.
    Env {
        #[command(flatten)]
        target: Target,
    },
}

// Which node an ops command acts on. (A plain comment, as for `Opts`: a
// doc comment would become the `about` of every deferred subcommand that
// flattens it, in place of the subcommand's own.)
#[derive(Debug, Clone, Args, Default)]
pub struct Target {
    /// The node, when several were started through beamup here (default: the only one, or the running one).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
}

// Every option, shared by the default action, `inspect` and `peers`.
// Each one is also read from a `BEAMUP_*` environment variable. A plain
// comment: clap turns a doc comment here into the `about` of the deferred
// subcommands that flatten it (`#[command(defer = true)]` on `Sub`),
// replacing their own.
#[derive(Debug, Clone, Args, Default)]
pub struct Opts {
    /// Where to find the node's own address, tried in order: auto, env:VAR, interface:NAME,
    /// cidr:NET/LEN, hostname, interfaces, query, rancher[:BASE_URL], ecs[:URL] (default: the platform's).
    #[arg(
        long = "ip",
        value_name = "SOURCE",
        env = "BEAMUP_IP",
        value_delimiter = ','
    )]
    pub ip: Vec<String>,

    /// Which address family the node's own address may have (v4 is preferred with `any`).
    #[arg(long, value_enum, env = "BEAMUP_IP_FAMILY", default_value_t = IpFamily::Any)]
    pub ip_family: IpFamily,

    /// Fills address source, basename and query from the platform's own variables.
    #[arg(long, value_enum, env = "BEAMUP_PLATFORM", default_value_t = Platform::Auto)]
    pub platform: Platform,

    /// The node's name part (default: RELEASE_NAME, else <name> from a `<root>/bin/<name>` command).
    #[arg(long, value_name = "NAME", env = "BEAMUP_BASENAME")]
    pub basename: Option<String>,

    /// A vm.args template, rendered outside the release and pointed at by RELEASE_VM_ARGS/VMARGS_PATH.
    #[arg(long, value_name = "TEMPLATE", env = "BEAMUP_VM_ARGS")]
    pub vm_args: Option<PathBuf>,

    /// The DNS discovery query template, e.g. `tasks.${SERVICE}`; exported as DNS_CLUSTER_QUERY.
    #[arg(long, value_name = "TEMPLATE", env = "BEAMUP_QUERY")]
    pub query: Option<String>,

    /// Also export the rendered query under this variable name (repeatable).
    #[arg(
        long,
        value_name = "NAME",
        env = "BEAMUP_EXPORT_QUERY",
        value_delimiter = ','
    )]
    pub export_query: Vec<String>,

    /// Render another template file: SRC:DEST (repeatable).
    #[arg(
        long,
        value_name = "SRC:DEST",
        env = "BEAMUP_TEMPLATE",
        value_delimiter = ','
    )]
    pub template: Vec<String>,

    /// Read the distribution cookie from this file (e.g. a Docker secret); the release and --connect both use it.
    #[arg(long, value_name = "PATH", env = "BEAMUP_COOKIE_FILE")]
    pub cookie_file: Option<PathBuf>,

    /// Timeout for each metadata API request (Rancher, ECS), 10ms..60s, e.g. `2s`, `500ms`.
    #[arg(
        long,
        value_name = "DURATION",
        env = "BEAMUP_METADATA_TIMEOUT",
        default_value = "2s"
    )]
    pub metadata_timeout: String,

    /// Log format on stderr (level from BEAMUP_LOG, e.g. `debug`).
    #[arg(long, value_enum, env = "BEAMUP_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Stay PID 1: run the release as a child, forward signals to it, reap every zombie, restart the
    /// reporter if it dies, exit with the release's status (for Kubernetes, which has no `docker run --init`).
    #[arg(long, env = "BEAMUP_INIT", value_parser = clap::builder::BoolishValueParser::new())]
    pub init: bool,

    // ----- discovery (the reporter child and `beamup peers`) -----
    /// DNS record type to discover peers with (default: follows the own address' family; a+aaaa for any).
    #[arg(long, value_enum, env = "BEAMUP_RECORD")]
    pub record: Option<RecordKind>,

    /// Use this DNS server (IP or IP:PORT) instead of /etc/resolv.conf.
    #[arg(long, value_name = "IP[:PORT]", env = "BEAMUP_DNS_SERVER")]
    pub dns_server: Option<String>,

    /// Timeout of one DNS query attempt, 10ms..60s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "BEAMUP_DNS_TIMEOUT",
        default_value = "2s"
    )]
    pub dns_timeout: String,

    /// Attempts per DNS query, 1..=10 (a poll ends within --dns-timeout × N).
    #[arg(
        long,
        value_name = "N",
        env = "BEAMUP_DNS_ATTEMPTS",
        default_value_t = 2,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=10)
    )]
    pub dns_attempts: usize,

    /// The most distinct SRV targets one answer may name, 1..=4096; a larger answer is a failed
    /// poll (the last good peers stay).
    #[arg(
        long,
        value_name = "N",
        env = "BEAMUP_MAX_SRV_TARGETS",
        default_value_t = crate::discovery::DEFAULT_MAX_SRV_TARGETS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=crate::discovery::MAX_SRV_TARGETS_LIMIT as u64)
    )]
    pub max_srv_targets: usize,

    /// The most addresses one DNS answer may hold (A and AAAA together, all SRV targets'
    /// together), 1..=65536; a larger answer is a failed poll (the last good peers stay).
    #[arg(
        long,
        value_name = "N",
        env = "BEAMUP_MAX_PEERS",
        default_value_t = crate::discovery::DEFAULT_MAX_PEERS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new()
            .range(1..=crate::discovery::MAX_PEERS_LIMIT as u64)
    )]
    pub max_peers: usize,

    /// A static list of peer nodes (name@host, comma-separated).
    #[arg(
        long,
        value_name = "NODE,...",
        env = "BEAMUP_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,

    /// Poll interval of discovery, 100ms..1h, e.g. `5s`, `500ms`, `1m` (±10% jitter).
    #[arg(
        long,
        value_name = "DURATION",
        env = "BEAMUP_INTERVAL",
        default_value = "5s"
    )]
    pub interval: String,

    /// Report a peer as left only after it is missing from N consecutive successful polls.
    #[arg(
        long,
        value_name = "N",
        env = "BEAMUP_LEAVE_AFTER",
        default_value_t = 3
    )]
    pub leave_after: u32,

    /// Keep the current peer set in this file (written atomically).
    #[arg(long, value_name = "PATH", env = "BEAMUP_PEERS_FILE")]
    pub peers_file: Option<PathBuf>,

    /// Format of --peers-file: one node per line, JSON, or Erlang terms for file:consult/1.
    #[arg(long, value_enum, env = "BEAMUP_PEERS_FORMAT", default_value_t = PeersFormat::Lines)]
    pub peers_format: PeersFormat,

    // ----- clustering -----
    /// Make the release connect to the discovered peers (beamup acts as a hidden node), at every poll and at once when a connection drops.
    #[arg(long, env = "BEAMUP_CONNECT", value_parser = clap::builder::BoolishValueParser::new())]
    pub connect: bool,

    /// With --connect: disconnect a peer once it is reported as left.
    #[arg(long, env = "BEAMUP_PRUNE", value_parser = clap::builder::BoolishValueParser::new())]
    pub prune: bool,

    /// With --connect: once this node is missing from its own DNS answer for --leave-after polls,
    /// disconnect its peers and stop dialing them until listed again. Not for Kubernetes: a
    /// headless service drops pods failing readiness, so a node under load would cut itself off.
    #[arg(long, env = "BEAMUP_LEAVE_WHEN_UNLISTED", value_parser = clap::builder::BoolishValueParser::new())]
    pub leave_when_unlisted: bool,
}

/// What beamup was asked to do: one variant per mode, matched once by
/// `run` (ripgrep's `run` matches `args.mode()` the same way).
#[derive(Debug)]
pub enum Command {
    /// The default action: `beamup [OPTIONS] -- COMMAND`.
    Boot { flags: Flags, command: Vec<String> },
    /// `beamup inspect`: every decision, nothing written or exec'd.
    Inspect {
        flags: Flags,
        command: Vec<String>,
        json: bool,
    },
    /// `beamup peers [--watch]`.
    Peers { flags: Flags, watch: bool },
    /// `beamup doctor`.
    Doctor {
        flags: Flags,
        command: Vec<String>,
        json: bool,
    },
    /// `beamup remote|rpc|pid|stop|status|env`: the running node's.
    Ops(OpsCommand),
    /// `--help`, `--version` or a usage error, already printed by clap:
    /// exit with this code (0, or 2 for usage).
    Exit(i32),
}

impl Command {
    /// The log format the command asked for (ops commands log text).
    pub fn log_format(&self) -> LogFormat {
        match self {
            Command::Boot { flags, .. }
            | Command::Inspect { flags, .. }
            | Command::Peers { flags, .. }
            | Command::Doctor { flags, .. } => flags.opts.log_format,
            Command::Ops(_) | Command::Exit(_) => LogFormat::Text,
        }
    }
}

/// Parses argv into the [`Command`] to run, its flags checked. clap's own
/// output (help, version, usage errors) is printed here.
pub fn parse(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Command, Failure> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let parsed = Cli::command()
        .try_get_matches_from(args)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            // --help and --version exit 0, usage errors 2 (clap's codes).
            let _ = e.print();
            if let Some(hint) = missing_separator_hint(&e) {
                eprintln!("{hint}");
            }
            return Ok(Command::Exit(e.exit_code()));
        }
    };
    // The options are flattened into the subcommand's own matches.
    let given = Given::of(matches.subcommand().map_or(&matches, |(_, m)| m));
    Ok(match cli.subcommand {
        None => Command::Boot {
            flags: Flags::check(cli.opts, given)?,
            command: cli.command,
        },
        Some(Sub::Inspect {
            json,
            opts,
            command,
        }) => Command::Inspect {
            flags: Flags::check(opts, given)?,
            command,
            json,
        },
        Some(Sub::Peers { watch, opts }) => Command::Peers {
            flags: Flags::check(opts, given)?,
            watch,
        },
        Some(Sub::Doctor {
            json,
            opts,
            command,
        }) => Command::Doctor {
            flags: Flags::check(opts, given)?,
            command,
            json,
        },
        Some(Sub::Ops(op)) => Command::Ops(op),
    })
}

/// Which options were given (on the command line or as `BEAMUP_*`
/// variables) rather than left at their defaults. Next to a running node,
/// `doctor` and `peers` take the rest from its boot record: the node's CMD
/// often holds them as flags, which `docker exec` does not see.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    /// `--ip` (the own address).
    pub ip: bool,
    /// `--query` or `--peers`: what to discover.
    pub discovery: bool,
    pub record: bool,
    pub dns_server: bool,
    pub dns_timeout: bool,
    pub dns_attempts: bool,
    pub max_srv_targets: bool,
    pub max_peers: bool,
    pub interval: bool,
    pub leave_after: bool,
}

impl Given {
    fn of(matches: &clap::ArgMatches) -> Given {
        use clap::parser::ValueSource;
        // `and_then`: `value_source` of an id the command does not have
        // (`status` has no `--ip`) is a panic in debug builds.
        let given = |id: &str| {
            matches!(
                matches
                    .try_get_raw(id)
                    .ok()
                    .and_then(|_| matches.value_source(id)),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        Given {
            ip: given("ip"),
            discovery: given("query") || given("peers"),
            record: given("record"),
            dns_server: given("dns_server"),
            dns_timeout: given("dns_timeout"),
            dns_attempts: given("dns_attempts"),
            max_srv_targets: given("max_srv_targets"),
            max_peers: given("max_peers"),
            interval: given("interval"),
            leave_after: given("leave_after"),
        }
    }
}

/// `beamup /app/bin/my_app start` (the `--` forgotten): clap only says the
/// argument is unexpected; say what is meant.
fn missing_separator_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if !arg.starts_with('-') => Some(format!(
            "hint: the release command goes after `--`: beamup [OPTIONS] -- {arg} ..."
        )),
        _ => None,
    }
}

/// The options with everything that needs no I/O parsed and checked (usage
/// errors, exit 2): durations, address sources, the DNS server, templates,
/// static peers and the flags that need each other.
#[derive(Debug, Clone)]
pub struct Flags {
    /// The options as given (the values below are their parsed forms).
    pub opts: Opts,
    pub metadata_timeout: Duration,
    pub interval: Duration,
    pub dns_timeout: Duration,
    pub dns_server: Option<SocketAddr>,
    /// `--ip`, parsed (empty: the platform preset's).
    pub sources: Vec<Source>,
    /// `--template SRC:DEST`.
    pub templates: Vec<(PathBuf, PathBuf)>,
    /// `--peers`: validated node names.
    pub static_peers: Vec<String>,
    /// Which options were given rather than defaulted.
    pub given: Given,
}

impl Flags {
    pub fn check(opts: Opts, given: Given) -> Result<Flags, Failure> {
        let usage = |e: String| Failure::msg(ExitCode::Usage, e);
        if opts.leave_after == 0 {
            return Err(usage("--leave-after must be at least 1".into()));
        }
        if opts.prune && !opts.connect {
            return Err(usage("--prune needs --connect".into()));
        }
        if opts.leave_when_unlisted && !opts.connect {
            return Err(usage("--leave-when-unlisted needs --connect".into()));
        }
        for name in &opts.export_query {
            if !crate::template::is_name(name) {
                return Err(usage(format!(
                    "--export-query `{name}` is not an environment variable name"
                )));
            }
            if crate::cookie::VARIABLES.contains(&name.as_str()) {
                return Err(usage(format!(
                    "--export-query {name}: the query cannot be exported as the cookie variable"
                )));
            }
        }
        use crate::duration::{DNS_TIMEOUT, INTERVAL, METADATA_TIMEOUT};
        Ok(Flags {
            metadata_timeout: duration(&opts.metadata_timeout, METADATA_TIMEOUT)?,
            interval: duration(&opts.interval, INTERVAL)?,
            dns_timeout: duration(&opts.dns_timeout, DNS_TIMEOUT)?,
            dns_server: opts
                .dns_server
                .as_deref()
                .map(crate::resolver::parse_server)
                .transpose()
                .map_err(usage)?,
            sources: opts
                .ip
                .iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| Source::parse(s))
                .collect::<Result<Vec<_>, _>>()
                .map_err(usage)?,
            templates: opts
                .template
                .iter()
                .map(|t| parse_template_flag(t))
                .collect::<Result<Vec<_>, _>>()?,
            static_peers: opts
                .peers
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| crate::naming::parse_node(p.trim()).map(|_| p.trim().to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| usage(format!("--peers: {e}")))?,
            opts,
            given,
        })
    }
}

fn duration(value: &str, bounds: crate::duration::Bounds) -> Result<Duration, Failure> {
    bounds
        .parse(value)
        .map_err(|e| Failure::msg(ExitCode::Usage, e))
}

fn parse_template_flag(value: &str) -> Result<(PathBuf, PathBuf), Failure> {
    match value.split_once(':') {
        Some((src, dest)) if !src.is_empty() && !dest.is_empty() => {
            Ok((PathBuf::from(src), PathBuf::from(dest)))
        }
        _ => Err(Failure::msg(
            ExitCode::Usage,
            format!("--template `{value}` must be SRC:DEST, e.g. /app/sys.config.src:sys.config"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_the_dockerfile_shape() {
        let cli = Cli::try_parse_from(["beamup", "--", "/app/bin/my_app", "start"]).unwrap();
        assert!(cli.subcommand.is_none());
        assert_eq!(cli.command, ["/app/bin/my_app", "start"]);
        let cli = Cli::try_parse_from([
            "beamup",
            "--ip",
            "env:POD_IP,interface:eth0",
            "--ip",
            "hostname",
            "--",
            "bin/x",
            "inspect",
        ])
        .unwrap();
        assert_eq!(cli.opts.ip, ["env:POD_IP", "interface:eth0", "hostname"]);
        // A release command that happens to be called like a subcommand stays a command.
        assert_eq!(cli.command, ["bin/x", "inspect"]);
        let cli = Cli::try_parse_from(["beamup", "inspect", "--json", "--", "/app/bin/a", "start"])
            .unwrap();
        assert!(matches!(
            cli.subcommand,
            Some(Sub::Inspect { json: true, .. })
        ));
    }

    #[test]
    fn template_flags() {
        assert_eq!(
            parse_template_flag("/a/b.src:/c/d").unwrap(),
            (PathBuf::from("/a/b.src"), PathBuf::from("/c/d"))
        );
        for bad in ["nocolon", ":dest", "src:"] {
            assert_eq!(
                parse_template_flag(bad).unwrap_err().code,
                ExitCode::Usage,
                "{bad}"
            );
        }
    }

    #[test]
    fn help_lists_the_platform_examples() {
        let help = Cli::command().render_long_help().to_string();
        for needle in [
            "POD_IP",
            "tasks.${SERVICE}",
            "FLY_PRIVATE_IP",
            "rancher",
            "Exit codes",
        ] {
            assert!(help.contains(needle), "--help lacks {needle}");
        }
    }
}
