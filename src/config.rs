//! Flags + environment → a validated, resolved `Config`. The only step that
//! does discovery I/O (finding the own address); templates are rendered to
//! strings here and written by `write_files` later, so a bad template stops
//! beamup before anything is written or exec'd.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;

use crate::address::{self, Source};
use crate::cli::{Opts, Platform, Record};
use crate::cookie;
use crate::discovery::{self, RecordKind};
use crate::exit_codes::{ExitCode, Failure, OrExit};
use crate::naming;
use crate::platform::{self, Preset};
use crate::release::{self, Kind, Release};
use crate::reporter;
use crate::safe_file;
use crate::secret::Secret;
use crate::template;

/// The process environment as beamup read it at start. Its Debug shows the
/// names only: RELEASE_COOKIE may be among the values.
#[derive(Clone, Default)]
pub struct Environment {
    pub vars: HashMap<String, String>,
    /// The raw environment, passed on to the release unchanged but for exports.
    pub raw: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Environment")
            .field("names", &names)
            .finish_non_exhaustive()
    }
}

impl Environment {
    pub fn capture() -> Self {
        let raw: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let vars = raw
            .iter()
            .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
            .collect();
        Environment { vars, raw }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The environment with `vars` set, replacing same-named variables: what
    /// an exec'd command gets.
    pub fn overlay<'v>(
        &self,
        vars: impl Iterator<Item = (&'v str, &'v str)> + Clone,
    ) -> Vec<(OsString, OsString)> {
        let mut out: Vec<(OsString, OsString)> = self
            .raw
            .iter()
            .filter(|(k, _)| !vars.clone().any(|(name, _)| k.as_os_str() == name))
            .cloned()
            .collect();
        out.extend(vars.map(|(k, v)| (OsString::from(k), OsString::from(v))));
        out
    }

    /// PATH as the OS gave it (possibly not UTF-8).
    pub fn raw_path(&self) -> Option<&std::ffi::OsStr> {
        self.raw
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_os_str())
    }
}

/// One exported variable. Only the cookie is a [`Secret`].
#[derive(Debug, Clone)]
pub struct Export {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub enum Value {
    Plain(String),
    Secret(Secret),
}

impl Export {
    /// The value as it may be shown (cookie redacted).
    pub fn shown(&self) -> &str {
        match &self.value {
            Value::Plain(v) => v,
            Value::Secret(_) => "<redacted>",
        }
    }

    /// The real value, for the exec'd environment and templates.
    pub fn expose(&self) -> &str {
        match &self.value {
            Value::Plain(v) => v,
            Value::Secret(s) => s.expose(),
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
    pub reporter: reporter::Settings,
}

/// Everything `resolve` reads besides the flags (files, for testability).
pub struct Inputs<'a> {
    pub opts: &'a Opts,
    pub command: &'a [String],
    /// The resolved program (checked by `process::resolve_program`).
    pub program: Option<&'a Path>,
    /// What `release::detect` found the program to be (read once, in `run`).
    pub release: &'a Release,
    pub env: &'a Environment,
    pub mode: Mode,
}

/// Flags + environment → the resolved config, in the README's order: flags →
/// cookie → preset → basename → address → release → exports → query → files
/// → discovery and reporter settings. Nothing is written here.
pub fn resolve(inputs: Inputs<'_>) -> Result<Config, Failure> {
    let Inputs {
        opts,
        command,
        program,
        release: inputs_release,
        env,
        mode,
    } = inputs;
    let mut warnings: Vec<String> = Vec::new();
    let flags = Flags::check(opts)?;
    let given_cookie = cookie::given(opts.cookie_file.as_deref(), |n| {
        env.get(n).map(str::to_string)
    })?;
    let preset = platform_preset(opts.platform, env);
    if let Some(hint) = preset.hint.as_ref().filter(|_| opts.query.is_none()) {
        tracing::warn!(platform = platform::name(preset.platform), "{hint}");
        warnings.push(hint.clone());
    }
    let query_template = opts.query.clone().or_else(|| preset.query.clone());
    // Usage errors before any network I/O.
    check_something_to_discover(opts, mode, &query_template, &flags.static_peers)?;
    refuse_cookie_in_query(opts, &query_template)?;
    let basename = basename(opts, &preset, env, command)?;
    let found = own_address(&flags, &preset, &query_template, env, opts)?;
    let node = naming::node_name(&basename, found.address);
    let release = release_traps(inputs_release, env, &node, found.address, &mut warnings);
    let mut exports = base_exports(&node, &basename, &found, &release, env);
    if let Some(c) = given_cookie.as_ref().filter(|c| c.exported) {
        exports.set_secret("RELEASE_COOKIE", &c.value);
        exports.set_secret("RELX_COOKIE", &c.value);
    }
    let query = render_query(opts, &query_template, &mut exports, env, &mut warnings)?;
    let files = render_files(
        &flags,
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
    let reporter = reporter_settings(opts, &flags, env, &node, cookie.as_ref())?;
    let discovery = discovery::Settings {
        query: query.clone(),
        record: record_kind(opts.record, found.address),
        dns_server: flags.dns_server,
        timeout: flags.dns_timeout,
        attempts: opts.dns_attempts.max(1),
        max_srv_targets: opts.max_srv_targets,
        max_peers: opts.max_peers,
        static_peers: flags.static_peers,
        basename: basename.clone(),
        own_node: node.clone(),
        own_address: found.address,
    };
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
    })
}

/// The flags that need no I/O, parsed and checked (usage errors, exit 2).
struct Flags {
    metadata_timeout: Duration,
    interval: Duration,
    dns_timeout: Duration,
    dns_server: Option<std::net::SocketAddr>,
    sources: Vec<Source>,
    /// --vm-args.
    vm_args: Option<PathBuf>,
    /// --template SRC:DEST.
    templates: Vec<(PathBuf, PathBuf)>,
    static_peers: Vec<String>,
}

impl Flags {
    fn check(opts: &Opts) -> Result<Flags, Failure> {
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
            if !template::is_name(name) {
                return Err(usage(format!(
                    "--export-query `{name}` is not an environment variable name"
                )));
            }
            if cookie::VARIABLES.contains(&name.as_str()) {
                return Err(usage(format!(
                    "--export-query {name}: the query cannot be exported as the cookie variable"
                )));
            }
        }
        Ok(Flags {
            metadata_timeout: duration(&opts.metadata_timeout, crate::duration::METADATA_TIMEOUT)?,
            interval: duration(&opts.interval, crate::duration::INTERVAL)?,
            dns_timeout: duration(&opts.dns_timeout, crate::duration::DNS_TIMEOUT)?,
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
            vm_args: opts.vm_args.clone(),
            templates: opts
                .template
                .iter()
                .map(|t| parse_template_flag(t))
                .collect::<Result<Vec<_>, _>>()?,
            static_peers: opts
                .peers
                .iter()
                .filter(|p| !p.trim().is_empty())
                .map(|p| naming::parse_node(p.trim()).map(|_| p.trim().to_string()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| usage(format!("--peers: {e}")))?,
        })
    }
}

fn check_something_to_discover(
    opts: &Opts,
    mode: Mode,
    query_template: &Option<String>,
    static_peers: &[String],
) -> Result<(), Failure> {
    let something_to_discover = query_template.is_some() || !static_peers.is_empty();
    if opts.connect && !something_to_discover {
        return Err(Failure::msg(
            ExitCode::Usage,
            "--connect needs peers to connect to: give --query or --peers",
        ));
    }
    if mode == Mode::Peers && !something_to_discover {
        return Err(Failure::msg(
            ExitCode::Usage,
            "nothing to discover: give --query (or BEAMUP_QUERY) or --peers",
        ));
    }
    Ok(())
}

/// --basename, else the preset's, else RELEASE_NAME, else `<name>` of a
/// `<root>/bin/<name>` command.
fn basename(
    opts: &Opts,
    preset: &Preset,
    env: &Environment,
    command: &[String],
) -> Result<String, Failure> {
    let basename = opts
        .basename
        .clone()
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
    opts: &Opts,
) -> Result<address::Found, Failure> {
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
    find_address(
        sources,
        env,
        opts,
        flags.metadata_timeout,
        early_query,
        flags.dns_server,
    )
}

/// The release kind, and its env.sh (read once: it runs after beamup), with
/// the warnings both deserve.
struct ReleaseInfo {
    release: Release,
    /// beamup adds `-proto_dist inet6_tcp` (see `adds_inet6`).
    inet6: bool,
}

fn release_traps(
    release: &Release,
    env: &Environment,
    node: &str,
    address: IpAddr,
    warnings: &mut Vec<String>,
) -> ReleaseInfo {
    let release = release.clone();
    let env_sh = release
        .env_sh()
        .and_then(|path| fs::read_to_string(&path).ok().map(|text| (path, text)));
    if let Some((path, text)) = &env_sh {
        warnings.extend(env_sh_warnings(path, text, node));
    }
    warnings.extend(distribution_warnings(env, node));
    let inet6 = adds_inet6(address, env, env_sh.as_ref().map(|(_, text)| text.as_str()));
    ReleaseInfo { release, inet6 }
}

/// The node's name for the release and templates, and `-proto_dist
/// inet6_tcp` in exactly one place for an IPv6 node.
fn base_exports(
    node: &str,
    basename: &str,
    found: &address::Found,
    release: &ReleaseInfo,
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
                &with_inet6(env.get("ELIXIR_ERL_OPTIONS")),
            ),
            // relx: the vm.args line (render_files); its own rpc helpers read it there too.
            Kind::Relx => {
                // OTP 25's erl_call cannot reach IPv6 nodes; relx's nodetool can.
                if env.get("USE_NODETOOL").is_none() {
                    exports.set("USE_NODETOOL", "1");
                }
            }
            Kind::Plain => exports.set("ERL_AFLAGS", &with_inet6(env.get("ERL_AFLAGS"))),
        }
    }
    for (k, v) in &found.extras {
        exports.set(k, v);
    }
    exports
}

/// OTP 25 honours `-proto_dist inet6_tcp` only when it is given once (twice,
/// the node silently listens on IPv4): beamup adds it for an IPv6 node, and
/// nowhere when the user's environment or env.sh already does.
fn adds_inet6(address: IpAddr, env: &Environment, env_sh: Option<&str>) -> bool {
    address.is_ipv6() && !inet6_already_set(env, env_sh)
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
    release: &ReleaseInfo,
    node: &str,
    cookie: Option<&cookie::Cookie>,
    exports: &mut Exports,
    env: &Environment,
    warnings: &mut Vec<String>,
) -> Result<Vec<RenderedFile>, Failure> {
    let kind = release.release.kind;
    let dir = render_dir(env, node);
    let mut files = Vec::new();
    let vm_args_source = flags.vm_args.clone().or_else(|| match kind {
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
            if flags.vm_args.is_some() {
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

fn record_kind(record: Option<Record>, address: IpAddr) -> RecordKind {
    match record {
        Some(Record::A) => RecordKind::A,
        Some(Record::Aaaa) => RecordKind::Aaaa,
        Some(Record::AAndAaaa) => RecordKind::AAndAaaa,
        Some(Record::Srv) => RecordKind::Srv,
        // A node can only reach peers of its own family (inet_tcp vs inet6_tcp).
        None if address.is_ipv6() => RecordKind::Aaaa,
        None => RecordKind::A,
    }
}

fn reporter_settings(
    opts: &Opts,
    flags: &Flags,
    env: &Environment,
    node: &str,
    cookie: Option<&cookie::Cookie>,
) -> Result<reporter::Settings, Failure> {
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
        })
    } else {
        None
    };
    Ok(reporter::Settings {
        interval: flags.interval,
        leave_after: opts.leave_after,
        peers_file: opts.peers_file.clone(),
        peers_format: opts.peers_format,
        connect,
        status_file: Some(crate::state::status_path(&render_dir(env, node))),
    })
}

fn duration(value: &str, bounds: crate::duration::Bounds) -> Result<Duration, Failure> {
    bounds
        .parse(value)
        .map_err(|e| Failure::msg(ExitCode::Usage, e))
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

fn find_address(
    sources: &[Source],
    env: &Environment,
    opts: &Opts,
    metadata_timeout: Duration,
    query: Option<String>,
    dns_server: Option<std::net::SocketAddr>,
) -> Result<address::Found, Failure> {
    // A current-thread runtime, dropped before the reporter is forked: no
    // thread may be alive at fork time. Its I/O and time drivers (an epoll
    // instance, an eventfd) only when a source talks to the network: env,
    // interface and cidr sources are on every boot's path and need neither.
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if sources.iter().any(Source::needs_network) {
        builder.enable_all();
    }
    let runtime = builder
        .build()
        .context("while starting the address-discovery runtime")
        .or_exit(ExitCode::Config)?;
    let ctx = address::Context {
        env: &env.vars,
        family: opts.ip_family,
        metadata_timeout,
        query,
        dns_server,
    };
    let found = runtime.block_on(address::find(sources, &ctx));
    runtime.shutdown_timeout(Duration::from_millis(100));
    found.map_err(|e| Failure::new(ExitCode::NoAddress, e))
}

fn env_sh_warnings(env_sh: &Path, text: &str, node: &str) -> Vec<String> {
    release::env_sh_clobbers(text)
        .into_iter()
        .map(|c| {
            let var = c.variable;
            let fix = if var == "RELEASE_NODE" {
                "export RELEASE_NODE=${RELEASE_NODE:-...}".to_string()
            } else {
                "export RELEASE_DISTRIBUTION=${RELEASE_DISTRIBUTION:-name}".to_string()
            };
            let msg = format!(
                "{}, line {}: `{}` runs after beamup and overrides {var} (beamup set it for node \
                 {node}); change it to `{fix}` so beamup's value is kept",
                env_sh.display(),
                c.line,
                c.text
            );
            tracing::warn!("{msg}");
            msg
        })
        .collect()
}

fn distribution_warnings(env: &Environment, node: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(d) = env.get("RELEASE_DISTRIBUTION").filter(|d| *d != "name") {
        let msg = format!(
            "RELEASE_DISTRIBUTION={d} in the environment is overridden with `name`: a node named \
             after an address needs long names (sname fails with `Can't set short node name!`, \
             and sname nodes reject address hosts with `Hostname ... is illegal`)"
        );
        tracing::warn!("{msg}");
        out.push(msg);
    }
    if let Some(n) = env.get("RELEASE_NODE").filter(|n| *n != node) {
        let msg = format!("RELEASE_NODE={n} in the environment is overridden with {node}");
        tracing::warn!("{msg}");
        out.push(msg);
    }
    out
}

/// Adds `-proto_dist inet6_tcp` to an options variable, keeping what it had.
fn with_inet6(existing: Option<&str>) -> String {
    match existing.map(str::trim).filter(|s| !s.is_empty()) {
        Some(e) if e.contains("inet6_tcp") => e.to_string(),
        Some(e) => format!("{e} -proto_dist inet6_tcp"),
        None => "-proto_dist inet6_tcp".to_string(),
    }
}

/// Where rendered files go: RELEASE_TMP, else $TMPDIR/beamup/<node> —
/// outside the release, so a read-only release directory keeps working, and
/// one directory per node, so two beamups sharing /tmp never overwrite each
/// other's vm.args.
pub fn render_dir(env: &Environment, node: &str) -> PathBuf {
    if let Some(t) = env.get("RELEASE_TMP").filter(|t| !t.is_empty()) {
        return PathBuf::from(t);
    }
    let tmp = env
        .get("TMPDIR")
        .filter(|t| !t.is_empty())
        .unwrap_or("/tmp");
    Path::new(tmp).join("beamup").join(node)
}

/// Whether `-proto_dist inet6_tcp` already reaches the VM without beamup:
/// through the environment, or through a mix release's env.sh (which runs
/// after beamup; Fly's generated env.sh sets ERL_AFLAGS this way).
fn inet6_already_set(env: &Environment, env_sh: Option<&str>) -> bool {
    let in_env = [
        "ERL_AFLAGS",
        "ERL_FLAGS",
        "ERL_ZFLAGS",
        "ELIXIR_ERL_OPTIONS",
    ]
    .iter()
    .any(|v| env.get(v).is_some_and(|x| x.contains("inet6_tcp")));
    let in_env_sh = env_sh.is_some_and(release::env_sh_sets_inet6);
    if in_env_sh {
        tracing::info!("env.sh sets -proto_dist inet6_tcp itself; beamup does not add it again");
    }
    in_env || in_env_sh
}

/// Writes the rendered files, each mode 0600 (vm.args may carry the
/// cookie), through `safe_file`: checked directories, no symlink followed, a
/// reader never sees half a file.
pub fn write_files(files: &[RenderedFile]) -> Result<(), Failure> {
    for f in files {
        safe_file::write(&f.dest, f.content.expose().as_bytes(), 0o600)
            .with_context(|| {
                format!(
                    "while writing {} (from {})",
                    f.dest.display(),
                    f.source.display()
                )
            })
            .or_exit(ExitCode::Config)?;
    }
    Ok(())
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
        self.put(name, Value::Plain(value.to_string()))
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

    #[test]
    fn inet6_options_keep_the_users() {
        assert_eq!(with_inet6(None), "-proto_dist inet6_tcp");
        assert_eq!(with_inet6(Some("  ")), "-proto_dist inet6_tcp");
        assert_eq!(with_inet6(Some("+S 2")), "+S 2 -proto_dist inet6_tcp");
        assert_eq!(
            with_inet6(Some("-proto_dist inet6_tcp +S 1")),
            "-proto_dist inet6_tcp +S 1"
        );
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
    fn render_dir_prefers_release_tmp() {
        let mut env = Environment::default();
        let n = "demo@10.0.0.1";
        assert_eq!(
            render_dir(&env, n),
            PathBuf::from("/tmp/beamup/demo@10.0.0.1")
        );
        env.vars.insert("TMPDIR".into(), "/var/tmp".into());
        assert_eq!(
            render_dir(&env, n),
            PathBuf::from("/var/tmp/beamup/demo@10.0.0.1")
        );
        env.vars.insert("RELEASE_TMP".into(), "/run/app".into());
        assert_eq!(render_dir(&env, n), PathBuf::from("/run/app"));
    }

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
    }
}
