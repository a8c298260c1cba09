//! Flags + environment → a validated, resolved `Config`. The only step that
//! does discovery I/O (finding the own address); templates are rendered to
//! strings here and written by `write_files` later, so a bad template stops
//! beamup before anything is written or exec'd.

use std::ffi::OsString;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::address::{self, Source};
use crate::cli::{Flags, Given, Opts, Platform};
use crate::cookie;
use crate::discovery::{self, RecordKind};
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure, OrExit};
use crate::naming;
use crate::platform::{self, Preset};
use crate::release::{self, Kind, Release};
use crate::reporter;
use crate::secret::Secret;
use crate::state::{BootState, DiscoveryAtBoot};
use crate::template;

/// One exported variable. Only the cookie is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    Plain(String),
    /// The cookie itself.
    Secret(Secret),
    /// Options that carry a `-setcookie` (e.g. the user's
    /// `ELIXIR_ERL_OPTIONS` with beamup's `-proto_dist` added): shown with
    /// the cookie redacted, never recorded.
    HoldsCookie {
        value: Secret,
        shown: String,
    },
}

impl Export {
    /// The value as it may be shown (cookie redacted).
    pub fn shown(&self) -> &str {
        match &self.value {
            Value::Plain(v) => v,
            Value::Secret(_) => "<redacted>",
            Value::HoldsCookie { shown, .. } => shown,
        }
    }

    /// The real value, for the exec'd environment and templates.
    pub fn expose(&self) -> &str {
        match &self.value {
            Value::Plain(v) => v,
            Value::Secret(s) | Value::HoldsCookie { value: s, .. } => s.expose(),
        }
    }
}

/// A template rendered to a file (written by `write_files`, mode 0600).
#[derive(Debug, Clone)]
pub struct RenderedFile {
    /// The template, or the release's own vm.args for a relx release.
    pub source: PathBuf,
    pub dest: PathBuf,
    /// May hold the cookie (relx `-setcookie`): never printed.
    pub content: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exec,
    Inspect,
    Peers,
    /// `beamup doctor`: like `Inspect` (nothing written, no exec), and the
    /// cookie is resolved even without `--connect`.
    Doctor,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub command: Vec<String>,
    pub program: Option<PathBuf>,
    pub release: Kind,
    pub platform: Platform,
    pub platform_reason: String,
    pub address: IpAddr,
    /// The source that gave the address, e.g. `env:POD_IP`.
    pub source: String,
    pub basename: String,
    pub node: String,
    /// The cookie of the release and of `--connect` (cookie.rs), if known.
    pub cookie: Option<cookie::Cookie>,
    pub exports: Vec<Export>,
    pub files: Vec<RenderedFile>,
    pub query: Option<String>,
    pub warnings: Vec<String>,
    pub discovery: discovery::Settings,
    pub reporter: reporter::ReporterSettings,
    /// The port of the epmds the VM asks (`Environment::epmd_port`).
    pub epmd_port: u16,
}

/// Everything `resolve` reads besides the flags (files, for testability).
pub struct Inputs<'a> {
    pub flags: &'a Flags,
    pub command: &'a [String],
    /// The resolved program (checked by `process::resolve_program`).
    pub program: Option<&'a Path>,
    /// What `release::detect` found the program to be (read once, in `run`).
    pub release: &'a Release,
    pub env: &'a Environment,
    pub mode: Mode,
    /// `doctor` and `peers` next to a running node: its boot record, whose
    /// address, name part and discovery settings stand in for options not
    /// given (`cli::Given`).
    pub booted: Option<&'a BootState>,
}

/// Flags + environment → the resolved config, in the README's order: flags →
/// cookie → preset → basename → address → release → exports → query → files
/// → discovery and reporter settings. Nothing is written here.
pub fn resolve(inputs: Inputs<'_>) -> Result<Config, Failure> {
    let Inputs {
        flags,
        command,
        program,
        release: inputs_release,
        env,
        mode,
        booted,
    } = inputs;
    let mut warnings: Vec<String> = Vec::new();
    let opts = &flags.opts;
    let given_cookie = cookie::given(opts.cookie_file.as_deref(), |n| {
        env.get(n).map(str::to_string)
    })?;
    let epmd_port = env
        .epmd_port()
        .map_err(|e| Failure::msg(ExitCode::Config, e))?;
    let preset = platform_preset(opts.platform, env);
    if let Some(hint) = preset.hint.as_ref().filter(|_| opts.query.is_none()) {
        tracing::warn!(platform = platform::name(preset.platform), "{hint}");
        warnings.push(hint.clone());
    }
    let query_template = opts.query.clone().or_else(|| preset.query.clone());
    // Usage errors before any network I/O.
    let at_boot = booted
        .and_then(|b| b.discovery.as_ref())
        .filter(|_| !flags.given.discovery);
    let discovers = query_template.is_some() || !flags.static_peers.is_empty() || at_boot.is_some();
    check_something_to_discover(opts, mode, discovers)?;
    refuse_cookie_in_query(opts, &query_template)?;
    let basename = basename(opts, booted, &preset, env, command)?;
    let found = match booted
        .filter(|_| !flags.given.ip)
        .and_then(recorded_address)
    {
        Some(found) => found,
        None => own_address(flags, &preset, &query_template, env)?,
    };
    let node = naming::node_name(&basename, found.address);
    let release = release::traps(inputs_release, env, &node, found.address, &mut warnings);
    let mut exports = base_exports(&node, &basename, &found, &release, env);
    if let Some(c) = given_cookie.as_ref().filter(|c| c.exported) {
        exports.set_secret("RELEASE_COOKIE", &c.value);
        exports.set_secret("RELX_COOKIE", &c.value);
    }
    let query = render_query(opts, &query_template, &mut exports, env, &mut warnings)?;
    let files = render_files(
        flags,
        &release,
        &node,
        given_cookie.as_ref(),
        &mut exports,
        env,
        &mut warnings,
    )?;
    let cookie = match given_cookie {
        Some(c) => Some(c),
        // The cookie the release finds by itself: read only when needed.
        None if opts.connect || mode == Mode::Doctor => found_cookie(&release.release, &files, env),
        None => None,
    };
    let reporter = reporter_settings(flags, env, &node, cookie.as_ref(), epmd_port)?;
    let mut discovery = discovery::Settings {
        query: query.clone(),
        record: record_kind(opts.record, found.address),
        dns_server: flags.dns_server,
        timeout: flags.dns_timeout,
        attempts: opts.dns_attempts.max(1),
        max_srv_targets: opts.max_srv_targets,
        max_peers: opts.max_peers,
        static_peers: flags.static_peers.clone(),
        basename: basename.clone(),
        own_node: node.clone(),
        own_address: found.address,
    };
    let mut reporter = reporter;
    if let Some(at_boot) = at_boot {
        as_booted(&mut discovery, &mut reporter, at_boot, &flags.given);
    }
    if let Some(c) = &cookie {
        tracing::debug!(origin = %c.origin, "cookie");
    }

    Ok(Config {
        command: command.to_vec(),
        program: program.map(Path::to_path_buf),
        release: release.release.kind,
        platform: preset.platform,
        platform_reason: preset.reason,
        address: found.address,
        source: found.source,
        basename,
        node,
        cookie,
        exports: exports.0,
        files,
        query,
        warnings,
        discovery,
        reporter,
        epmd_port,
    })
}

/// For `inspect`, `peers` and `doctor`: the config a boot of `command`
/// would resolve, for a command that need not exist here (it only tells
/// the basename and the release kind).
pub fn resolve_dry(
    flags: &Flags,
    command: &[String],
    env: &Environment,
    mode: Mode,
    booted: Option<&BootState>,
) -> Result<Config, Failure> {
    let program = command
        .first()
        .and_then(|p| crate::process::resolve_program(p, env.raw_path()).ok());
    let release = program
        .as_deref()
        .map_or_else(Release::plain, release::detect);
    resolve(Inputs {
        flags,
        command,
        program: program.as_deref(),
        release: &release,
        env,
        mode,
        booted,
    })
}

fn check_something_to_discover(opts: &Opts, mode: Mode, discovers: bool) -> Result<(), Failure> {
    if opts.connect && !discovers {
        return Err(Failure::msg(
            ExitCode::Usage,
            "--connect needs peers to connect to: give --query or --peers",
        ));
    }
    if mode == Mode::Peers && !discovers {
        return Err(Failure::msg(
            ExitCode::Usage,
            "nothing to discover: give --query (or BEAMUP_QUERY) or --peers",
        ));
    }
    Ok(())
}

/// The running node's address, as its boot record holds it (a lookup now
/// could find another, or none from a `docker exec` environment).
fn recorded_address(booted: &BootState) -> Option<address::OwnAddress> {
    Some(address::OwnAddress {
        address: booted.address.parse().ok()?,
        source: format!("{} (the boot record)", booted.source),
        extras: Vec::new(),
    })
}

/// The running node's discovery as it booted, for every option the command
/// did not give itself (given options still win).
fn as_booted(
    discovery: &mut discovery::Settings,
    reporter: &mut reporter::ReporterSettings,
    at_boot: &DiscoveryAtBoot,
    given: &Given,
) {
    discovery.query = at_boot.query.clone();
    discovery.static_peers = at_boot.static_peers.clone();
    if !given.record {
        discovery.record = at_boot.record;
    }
    if !given.dns_server {
        discovery.dns_server = at_boot.dns_server;
    }
    if !given.dns_timeout {
        discovery.timeout = Duration::from_millis(at_boot.dns_timeout_ms);
    }
    if !given.dns_attempts {
        discovery.attempts = at_boot.dns_attempts.max(1);
    }
    if !given.max_srv_targets {
        discovery.max_srv_targets = at_boot.max_srv_targets.max(1);
    }
    if !given.max_peers {
        discovery.max_peers = at_boot.max_peers.max(1);
    }
    if !given.interval {
        reporter.interval = Duration::from_millis(at_boot.interval_ms);
    }
    if !given.leave_after {
        reporter.leave_after = at_boot.leave_after.max(1);
    }
}

/// --basename, else the running node's (its boot record), else the
/// preset's, else RELEASE_NAME, else `<name>` of a `<root>/bin/<name>`
/// command.
fn basename(
    opts: &Opts,
    booted: Option<&BootState>,
    preset: &Preset,
    env: &Environment,
    command: &[String],
) -> Result<String, Failure> {
    let basename = opts
        .basename
        .clone()
        .or_else(|| booted.map(|b| b.basename.clone()))
        .or_else(|| preset.basename.clone())
        .or_else(|| env.get("RELEASE_NAME").map(str::to_string))
        .or_else(|| {
            command
                .first()
                .and_then(|c| naming::basename_from_command(c))
        })
        .ok_or_else(|| {
            Failure::msg(
                ExitCode::Config,
                "cannot tell the node's name part: the command is not shaped <root>/bin/<name> \
                 and RELEASE_NAME is not set; give --basename NAME",
            )
        })?;
    naming::validate_basename(&basename).map_err(|e| Failure::msg(ExitCode::Config, e))?;
    Ok(basename)
}

/// The own address (the only discovery I/O of `resolve`).
fn own_address(
    flags: &Flags,
    preset: &Preset,
    query_template: &Option<String>,
    env: &Environment,
) -> Result<address::OwnAddress, Failure> {
    let sources = if flags.sources.is_empty() {
        &preset.sources
    } else {
        &flags.sources
    };
    // The `query` source needs the query before the exports exist: render it
    // from the environment alone (a query naming BEAMUP_IP cannot serve it).
    let early_query = query_template.as_deref().and_then(|t| {
        template::render(t, "--query", |n| env.get(n).map(str::to_string))
            .ok()
            .map(|q| q.trim().to_string())
            .filter(|q| !q.is_empty())
    });
    // Dropped before the reporter is forked (see `process::runtime`); its
    // I/O and time drivers only when a source talks to the network: env,
    // interface and cidr sources are on every boot's path and need neither.
    let runtime = crate::process::runtime(sources.iter().any(Source::needs_network))
        .or_exit(ExitCode::Config)?;
    let ctx = address::Context {
        env: &env.vars,
        family: flags.opts.ip_family,
        metadata_timeout: flags.metadata_timeout,
        query: early_query,
        dns_server: flags.dns_server,
    };
    let found = runtime.block_on(address::find(sources, &ctx));
    runtime.shutdown_timeout(Duration::from_millis(100));
    found.map_err(|e| Failure::new(ExitCode::NoAddress, e))
}

/// The node's name for the release and templates, and `-proto_dist
/// inet6_tcp` in exactly one place for an IPv6 node.
fn base_exports(
    node: &str,
    basename: &str,
    found: &address::OwnAddress,
    release: &release::Traps,
    env: &Environment,
) -> Exports {
    let mut exports = Exports::default();
    exports.set("RELEASE_DISTRIBUTION", "name");
    exports.set("RELEASE_NODE", node);
    exports.set("BEAMUP_IP", &naming::host_part(found.address));
    exports.set("BEAMUP_NODE", node);
    exports.set("BEAMUP_BASENAME", basename);
    if release.inet6 {
        match release.release.kind {
            // mix hands ELIXIR_ERL_OPTIONS to erl for every command (start, rpc, remote).
            Kind::Mix => exports.set(
                "ELIXIR_ERL_OPTIONS",
                &release::with_inet6(env.get("ELIXIR_ERL_OPTIONS")),
            ),
            // relx: the vm.args line (render_files); its own rpc helpers read it there too.
            Kind::Relx => {
                // OTP 25's erl_call cannot reach IPv6 nodes; relx's nodetool can.
                if env.get("USE_NODETOOL").is_none() {
                    exports.set("USE_NODETOOL", "1");
                }
            }
            Kind::Plain => exports.set("ERL_AFLAGS", &release::with_inet6(env.get("ERL_AFLAGS"))),
        }
    }
    for (k, v) in &found.extras {
        exports.set(k, v);
    }
    exports
}

fn query_origin(opts: &Opts) -> &'static str {
    if opts.query.is_some() {
        "--query"
    } else {
        "the platform preset's query"
    }
}

/// A query naming the cookie is refused before any lookup: a query is sent
/// to DNS servers (also by the `query` address source), exported and logged.
fn refuse_cookie_in_query(opts: &Opts, template: &Option<String>) -> Result<(), Failure> {
    let Some(t) = template else {
        return Ok(());
    };
    let named = std::cell::Cell::new(None);
    // Every variable "set" (to nothing), so the whole template is walked.
    let _ = template::render(t, "", |name| {
        if cookie::VARIABLES.contains(&name) {
            named.set(Some(name.to_string()));
        }
        Some(String::new())
    });
    match named.take() {
        None => Ok(()),
        Some(name) => Err(Failure::msg(
            ExitCode::Config,
            format!(
                "{} `{t}` names {name}: the query is sent to DNS servers and logged, so it may \
                 not hold the cookie; remove ${{{name}}} from it",
                query_origin(opts)
            ),
        )),
    }
}

/// The rendered `--query` (or the preset's), exported as DNS_CLUSTER_QUERY
/// and under every --export-query.
fn render_query(
    opts: &Opts,
    template: &Option<String>,
    exports: &mut Exports,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<Option<String>, Failure> {
    let Some(t) = template else {
        return Ok(None);
    };
    let origin = query_origin(opts);
    let q = template::render(t, origin, exports.lookup(env))
        .map_err(|e| Failure::msg(ExitCode::Config, e))?;
    let q = q.trim().to_string();
    if q.is_empty() {
        // e.g. Rancher gave no service name: boot without discovery rather
        // than fail and crash-loop the container.
        let warning =
            format!("{origin} `{t}` rendered to an empty name: running without DNS discovery");
        tracing::warn!("{warning}");
        warnings.push(warning);
        return Ok(None);
    }
    if !naming::is_dns_name(&q) {
        return Err(Failure::msg(
            ExitCode::Config,
            format!(
                "{origin} `{t}` rendered to `{}`, which is not a DNS name ({}): check the \
                 variables it names",
                q.escape_debug(),
                naming::DNS_NAME_RULE
            ),
        ));
    }
    exports.set("DNS_CLUSTER_QUERY", &q);
    for name in &opts.export_query {
        exports.set(name, &q);
    }
    Ok(Some(q))
}

/// vm.args (for relx always: relx needs its `-name` line) and every
/// --template, rendered to strings; `RELEASE_TMP` pointed at beamup's
/// directory for a read-only mix release. Written later by `write_files`.
fn render_files(
    flags: &Flags,
    release: &release::Traps,
    node: &str,
    cookie: Option<&cookie::Cookie>,
    exports: &mut Exports,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<Vec<RenderedFile>, Failure> {
    let kind = release.release.kind;
    let dir = env.render_dir(node);
    let mut files = Vec::new();
    let vm_args_source = flags.opts.vm_args.clone().or_else(|| match kind {
        // relx needs the `-name` line in vm.args: derive one from the
        // release's own vm.args even without --vm-args.
        Kind::Relx => release.release.vm_args(),
        _ => None,
    });
    if let Some(src) = vm_args_source {
        let origin = src.display().to_string();
        let rendered = render_file(&src, "the vm.args template", exports, env)?;
        let adjusted = release::adjust_vm_args(
            kind,
            &rendered,
            &origin,
            node,
            kind == Kind::Relx && release.inet6,
            cookie.filter(|c| c.exported).map(|c| c.value.expose()),
        );
        for note in adjusted.notes {
            if flags.opts.vm_args.is_some() {
                tracing::warn!("{note}");
                warnings.push(note);
            } else {
                // The release's own `-sname` is expected to be replaced.
                tracing::info!("{note}");
            }
        }
        let dest = dir.join("vm.args");
        exports.set("RELEASE_VM_ARGS", &dest.display().to_string());
        exports.set("VMARGS_PATH", &dest.display().to_string());
        files.push(RenderedFile {
            source: src,
            dest,
            content: Secret::new(adjusted.text),
        });
    }
    for (src, dest) in &flags.templates {
        let rendered = render_file(src, "the template", exports, env)?;
        // A relative DEST goes next to the rendered vm.args: the one place
        // beamup knows to be writable under a read-only root filesystem.
        files.push(RenderedFile {
            source: src.clone(),
            dest: dir.join(dest),
            content: Secret::new(rendered),
        });
    }
    // A mix release writes its runtime config under RELEASE_TMP, by default
    // inside the release: point it at beamup's directory when the release
    // itself is read-only (docker run --read-only).
    let read_only_root = release
        .release
        .root
        .as_ref()
        .is_some_and(|root| nix::unistd::access(root, nix::unistd::AccessFlags::W_OK).is_err());
    if kind == Kind::Mix && env.get("RELEASE_TMP").is_none() && read_only_root {
        exports.set("RELEASE_TMP", &dir.display().to_string());
    }
    Ok(files)
}

/// The cookie a release finds by itself (cookie.rs, sources 4–6).
fn found_cookie(
    release: &Release,
    files: &[RenderedFile],
    env: &Environment,
) -> Option<cookie::Cookie> {
    // relx: the vm.args beamup rendered for it, when it had one (the other
    // files are --template outputs).
    let relx_vm_args = files
        .iter()
        .find(|f| f.dest.file_name() == Some(std::ffi::OsStr::new("vm.args")))
        .filter(|_| release.kind == Kind::Relx)
        .map(|f| (f.source.as_path(), f.content.expose()));
    cookie::found(
        relx_vm_args,
        release.cookie_file().as_deref(),
        env.get("HOME"),
    )
}

fn record_kind(record: Option<RecordKind>, address: IpAddr) -> RecordKind {
    match record {
        Some(kind) => kind,
        // A node can only reach peers of its own family (inet_tcp vs inet6_tcp).
        None if address.is_ipv6() => RecordKind::Aaaa,
        None => RecordKind::A,
    }
}

fn reporter_settings(
    flags: &Flags,
    env: &Environment,
    node: &str,
    cookie: Option<&cookie::Cookie>,
    epmd_port: u16,
) -> Result<reporter::ReporterSettings, Failure> {
    let opts = &flags.opts;
    let connect = if opts.connect {
        let cookie = cookie.ok_or_else(|| {
            Failure::msg(
                ExitCode::Config,
                "--connect needs the release's cookie and none was found: give --cookie-file, \
                 set RELEASE_COOKIE (or RELX_COOKIE), or use a release with a vm.args \
                 `-setcookie` line or a releases/COOKIE file",
            )
        })?;
        Some(reporter::ConnectSettings {
            local_node: node.to_string(),
            cookie: cookie.value.clone(),
            prune: opts.prune,
            leave_when_unlisted: opts.leave_when_unlisted,
            epmd_port,
        })
    } else {
        None
    };
    Ok(reporter::ReporterSettings {
        interval: flags.interval,
        leave_after: opts.leave_after,
        peers_file: opts.peers_file.clone(),
        peers_format: opts.peers_format,
        connect,
        status_file: Some(crate::state::status_path(&env.render_dir(node))),
    })
}

/// Reads and renders one template file; errors name the file (and the line).
fn render_file(
    src: &Path,
    what: &str,
    exports: &Exports,
    env: &Environment,
) -> Result<String, Failure> {
    let text = template::read(src)
        .with_context(|| format!("while reading {what} {}", src.display()))
        .or_exit(ExitCode::Config)?;
    template::render(&text, &src.display().to_string(), exports.lookup(env))
        .map_err(|e| Failure::msg(ExitCode::Config, e))
}

fn platform_preset(requested: Platform, env: &Environment) -> Preset {
    // Both files are read only if the preset needs them (start-up path).
    let p = platform::preset(
        requested,
        &env.vars,
        || fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        || fs::read_to_string(platform::K8S_NAMESPACE_FILE).ok(),
    );
    tracing::debug!(platform = platform::name(p.platform), reason = %p.reason, "platform");
    p
}

/// Exported variables in the order they were set; a later set replaces.
#[derive(Default)]
struct Exports(Vec<Export>);

impl Exports {
    fn put(&mut self, name: &str, value: Value) {
        self.0.retain(|e| e.name != name);
        self.0.push(Export {
            name: name.to_string(),
            value,
        });
    }
    fn set(&mut self, name: &str, value: &str) {
        let shown = cookie::redact(value, None);
        if shown == value {
            self.put(name, Value::Plain(value.to_string()))
        } else {
            let value = Secret::new(value);
            self.put(name, Value::HoldsCookie { value, shown })
        }
    }
    fn set_secret(&mut self, name: &str, value: &Secret) {
        self.put(name, Value::Secret(value.clone()))
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|e| e.name == name).map(Export::expose)
    }
    /// Variables templates see: the environment, overlaid with the exports.
    fn lookup<'a>(&'a self, env: &'a Environment) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| self.get(name).or_else(|| env.get(name)).map(str::to_string)
    }
}

impl Config {
    /// The environment the release is exec'd with.
    pub fn exec_env(&self, env: &Environment) -> Vec<(OsString, OsString)> {
        env.overlay(self.exports.iter().map(|e| (e.name.as_str(), e.expose())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug output of everything that may hold the cookie never shows it.
    #[test]
    fn debug_never_shows_the_cookie() {
        let mut env = Environment::default();
        env.vars.insert("RELEASE_COOKIE".into(), "monster".into());
        env.raw.push(("RELEASE_COOKIE".into(), "monster".into()));
        let mut e = Exports::default();
        e.set_secret("RELX_COOKIE", &Secret::new("monster"));
        let file = RenderedFile {
            source: "vm.args.src".into(),
            dest: "/tmp/vm.args".into(),
            content: Secret::new("-setcookie monster\n"),
        };
        let shown = format!("{env:?} {:?} {file:?}", e.0);
        assert!(!shown.contains("monster"), "{shown}");
        assert!(shown.contains("RELEASE_COOKIE"), "{shown}");
    }

    #[test]
    fn exports_replace_and_redact() {
        let mut e = Exports::default();
        e.set("A", "1");
        e.set_secret("RELEASE_COOKIE", &Secret::new("monster"));
        e.set("A", "2");
        let names: Vec<&str> = e.0.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["RELEASE_COOKIE", "A"]);
        assert_eq!(e.0[0].shown(), "<redacted>");
        assert_eq!(e.get("A"), Some("2"));
        // Options carrying a -setcookie are shown without it.
        e.set("ERL_AFLAGS", "-setcookie monster -proto_dist inet6_tcp");
        let flags = e.0.iter().find(|x| x.name == "ERL_AFLAGS").expect("set");
        assert_eq!(flags.shown(), "-setcookie <redacted> -proto_dist inet6_tcp");
        assert_eq!(flags.expose(), "-setcookie monster -proto_dist inet6_tcp");
        assert!(!format!("{flags:?}").contains("monster"));
    }
}
