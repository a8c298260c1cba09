//! What beamup leaves in its render directory for the life of the node, so
//! that `docker exec c beamup remote|rpc|pid|stop|status|env` (which gets only
//! the container's configured environment, never what beamup exported at
//! boot) can act with the running node's exact identity:
//!
//! - the boot record [`BootState`] (`beamup.state.json`), written once just
//!   before the fork/exec: node, address, release command and kind, the
//!   rendered vm.args, where `-proto_dist inet6_tcp` went, the non-secret
//!   exports, where the cookie came from (never the cookie), the release's
//!   PID (beamup's own: the exec keeps it);
//! - the reporter's live status [`LiveStatus`] (`beamup.status.json`),
//!   rewritten atomically after every poll.
//!
//! Both are written through [`safe_file::write`] (mode 0600) and read back
//! only from directories nobody else could have planted them in, never
//! through a symlink, size-capped.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use crate::config::{Config, Environment};
use crate::exit_codes::{ExitCode, Failure};
use crate::release::Kind;
use crate::{naming, safe_file};

pub const STATE_FILE: &str = "beamup.state.json";
pub const STATUS_FILE: &str = "beamup.status.json";
/// A boot record is a few hundred bytes; the cap only bounds a hostile file.
const MAX_STATE: u64 = 64 * 1024;
/// A thousand peers with long reasons stay far below this.
const MAX_STATUS: u64 = 4 * 1024 * 1024;
/// Entries of `$TMPDIR/beamup` looked at for boot records (a container has
/// one node; a directory flooded by another user is not read to its end).
const MAX_SCANNED: usize = 64;

/// Where the cookie the node runs with came from. Only the origin is
/// recorded; the ops commands read the cookie again from there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CookieOrigin {
    /// `--cookie-file PATH`: beamup exported RELEASE_COOKIE and RELX_COOKIE.
    File(PathBuf),
    /// The container's environment variable (RELEASE_COOKIE), which every
    /// `docker exec` gets again.
    Env(String),
    /// The release's own: `releases/COOKIE` (mix), the vm.args `-setcookie`
    /// line (relx), else `~/.erlang.cookie`; its start script finds it again.
    Release,
}

impl CookieOrigin {
    /// The origin of the cookie the release got at boot, from the one
    /// cookie rule (`crate::cookie`): a cookie beamup handed to the release
    /// came from --cookie-file or from the variable its origin names
    /// (`RELEASE_COOKIE`, `RELX_COOKIE`); any other is the release's own.
    pub fn at_boot(config: &Config, cookie_file: Option<&Path>) -> Self {
        match (&config.cookie, cookie_file) {
            (Some(c), Some(path)) if c.exported => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
                CookieOrigin::File(path)
            }
            (Some(c), None) if c.exported => CookieOrigin::Env(c.origin.clone()),
            _ => CookieOrigin::Release,
        }
    }

    fn to_text(&self) -> String {
        match self {
            CookieOrigin::File(p) => format!("file:{}", p.display()),
            CookieOrigin::Env(v) => format!("env:{v}"),
            CookieOrigin::Release => "release".into(),
        }
    }

    fn parse(text: &str) -> Option<Self> {
        if text == "release" {
            return Some(CookieOrigin::Release);
        }
        if let Some(path) = text.strip_prefix("file:").filter(|p| p.starts_with('/')) {
            return Some(CookieOrigin::File(PathBuf::from(path)));
        }
        text.strip_prefix("env:")
            .filter(|v| crate::template::is_name(v))
            .map(|v| CookieOrigin::Env(v.to_string()))
    }
}

/// The boot record (see the module doc). Never holds the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootState {
    pub node: String,
    pub address: String,
    /// The address source that answered, e.g. `env:POD_IP`.
    pub source: String,
    pub basename: String,
    /// The release command as given (argv).
    pub command: Vec<String>,
    /// The resolved program (`/app/bin/my_app`).
    pub program: PathBuf,
    /// `mix`, `relx` or `plain`.
    pub kind: String,
    /// The rendered vm.args, if any.
    pub vm_args: Option<PathBuf>,
    /// Where `-proto_dist inet6_tcp` went (None for an IPv4 node).
    pub inet6: Option<String>,
    /// The non-secret variables beamup exported for the release.
    pub exports: Vec<(String, String)>,
    /// `file:PATH`, `env:VAR` or `release` (see [`CookieOrigin`]).
    pub cookie: String,
    /// Whether a reporter was forked (something to discover).
    pub reporter: bool,
    /// Unix seconds.
    pub started: u64,
    /// The release's PID: beamup's own, which the exec keeps.
    pub pid: i32,
    /// The PID's start time (clock ticks after boot, /proc/PID/stat), so a
    /// reused PID is not taken for the node.
    pub pid_start: Option<u64>,
}

impl BootState {
    /// The record of what `config` decided, for the process about to exec.
    pub fn of(config: &Config, program: &Path, cookie: &CookieOrigin) -> Self {
        let pid = std::process::id() as i32;
        BootState {
            node: config.node.clone(),
            address: config.address.to_string(),
            source: config.source.clone(),
            basename: config.basename.clone(),
            command: config.command.clone(),
            program: program.to_path_buf(),
            kind: kind_name(config.release).into(),
            vm_args: config
                .files
                .iter()
                .map(|f| f.dest.clone())
                .find(|d| d.file_name().is_some_and(|n| n == "vm.args")),
            inet6: inet6_place(config),
            exports: config
                .exports
                .iter()
                .filter(|e| matches!(e.value, crate::config::Value::Plain(_)))
                .map(|e| (e.name.clone(), e.expose().to_string()))
                .collect(),
            cookie: cookie.to_text(),
            reporter: config.discovery.is_active(),
            started: unix_ms() / 1000,
            pid,
            pid_start: process_start(pid),
        }
    }

    /// The record as JSON. (Written and read by hand through
    /// `serde_json::Value`: derived (de)serializers would cost the static
    /// binary tens of KB.)
    pub fn to_json(&self) -> Value {
        // Inserted one by one: collecting into a map would add sort code.
        let mut exports = serde_json::Map::new();
        for (k, v) in &self.exports {
            exports.insert(k.clone(), Value::from(v.as_str()));
        }
        json!({
            "node": self.node,
            "address": self.address,
            "source": self.source,
            "basename": self.basename,
            "command": self.command,
            "program": self.program.to_string_lossy(),
            "kind": self.kind,
            "vm_args": self.vm_args.as_ref().map(|p| p.to_string_lossy()),
            "inet6": self.inet6,
            "exports": exports,
            "cookie": self.cookie,
            "reporter": self.reporter,
            "started": self.started,
            "pid": self.pid,
            "pid_start": self.pid_start,
        })
    }

    /// The record from JSON; None when a field is missing or mistyped.
    pub fn from_json(v: &Value) -> Option<Self> {
        Some(BootState {
            node: text(v, "node")?,
            address: text(v, "address")?,
            source: text(v, "source")?,
            basename: text(v, "basename")?,
            command: v
                .get("command")?
                .as_array()?
                .iter()
                .map(|c| c.as_str().map(str::to_string))
                .collect::<Option<_>>()?,
            program: PathBuf::from(text(v, "program")?),
            kind: text(v, "kind")?,
            vm_args: text(v, "vm_args").map(PathBuf::from),
            inet6: text(v, "inet6"),
            exports: v
                .get("exports")?
                .as_object()?
                .iter()
                .map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
                .collect::<Option<_>>()?,
            cookie: text(v, "cookie")?,
            reporter: v.get("reporter")?.as_bool()?,
            started: v.get("started")?.as_u64()?,
            pid: i32::try_from(v.get("pid")?.as_i64()?).ok()?,
            pid_start: v.get("pid_start").and_then(Value::as_u64),
        })
    }

    pub fn kind(&self) -> Kind {
        match self.kind.as_str() {
            "mix" => Kind::Mix,
            "relx" => Kind::Relx,
            _ => Kind::Plain,
        }
    }

    pub fn cookie_origin(&self) -> Option<CookieOrigin> {
        CookieOrigin::parse(&self.cookie)
    }

    /// Whether the release still runs (the same process, not a reused PID).
    pub fn alive(&self) -> bool {
        alive(self.pid, self.pid_start)
    }

    /// A record read back is checked like any input: a valid node name, an
    /// absolute program, variable names that are names.
    fn validate(&self) -> anyhow::Result<()> {
        naming::parse_node(&self.node).map_err(anyhow::Error::msg)?;
        if !self.program.is_absolute() {
            bail!("the program `{}` is not absolute", self.program.display());
        }
        if self.command.is_empty() || self.pid <= 0 {
            bail!("no command or no PID");
        }
        if let Some((bad, _)) = self
            .exports
            .iter()
            .find(|(k, _)| !crate::template::is_name(k))
        {
            bail!("`{bad}` is not a variable name");
        }
        if self.cookie_origin().is_none() {
            bail!("unknown cookie origin `{}`", self.cookie);
        }
        Ok(())
    }
}

pub fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Mix => "mix",
        Kind::Relx => "relx",
        Kind::Plain => "plain",
    }
}

/// Where config put `-proto_dist inet6_tcp` for an IPv6 node.
fn inet6_place(config: &Config) -> Option<String> {
    if !config.address.is_ipv6() {
        return None;
    }
    let exported = ["ELIXIR_ERL_OPTIONS", "ERL_AFLAGS"]
        .into_iter()
        .find(|name| {
            config
                .exports
                .iter()
                .any(|e| e.name == *name && e.expose().contains("inet6_tcp"))
        });
    let in_vm_args = config
        .files
        .iter()
        .any(|f| f.content.expose().contains("-proto_dist inet6_tcp"));
    Some(match (exported, in_vm_args) {
        (Some(name), _) => name.to_string(),
        (None, true) => "vm.args".to_string(),
        (None, false) => "the environment or the release's env.sh".to_string(),
    })
}

/// One peer in the live status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePeer {
    pub node: String,
    /// `discovered` without --connect; `connected`, `connecting`, `failed`
    /// or `unknown` with it.
    pub state: String,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastPoll {
    /// Unix milliseconds.
    pub at: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// The reporter's live status (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveStatus {
    pub node: String,
    pub reporter_pid: i32,
    pub reporter_start: Option<u64>,
    pub interval_ms: u64,
    /// Unix milliseconds of this write.
    pub updated: u64,
    pub polls: u64,
    pub last_poll: Option<LastPoll>,
    pub connect: bool,
    /// With --connect: whether the reporter reaches the release itself.
    pub local: Option<String>,
    pub peers: Vec<LivePeer>,
}

impl LiveStatus {
    pub fn to_json(&self) -> Value {
        let peers: Vec<Value> = self
            .peers
            .iter()
            .map(|p| json!({"node": p.node, "state": p.state, "reason": p.reason}))
            .collect();
        json!({
            "node": self.node,
            "reporter_pid": self.reporter_pid,
            "reporter_start": self.reporter_start,
            "interval_ms": self.interval_ms,
            "updated": self.updated,
            "polls": self.polls,
            "last_poll": self.last_poll.as_ref().map(|p| json!({"at": p.at, "ok": p.ok, "error": p.error})),
            "connect": self.connect,
            "local": self.local,
            "peers": peers,
        })
    }

    pub fn from_json(v: &Value) -> Option<Self> {
        let last_poll = match v.get("last_poll")? {
            Value::Null => None,
            p => Some(LastPoll {
                at: p.get("at")?.as_u64()?,
                ok: p.get("ok")?.as_bool()?,
                error: text(p, "error"),
            }),
        };
        Some(LiveStatus {
            node: text(v, "node")?,
            reporter_pid: i32::try_from(v.get("reporter_pid")?.as_i64()?).ok()?,
            reporter_start: v.get("reporter_start").and_then(Value::as_u64),
            interval_ms: v.get("interval_ms")?.as_u64()?,
            updated: v.get("updated")?.as_u64()?,
            polls: v.get("polls")?.as_u64()?,
            last_poll,
            connect: v.get("connect")?.as_bool()?,
            local: text(v, "local"),
            peers: v
                .get("peers")?
                .as_array()?
                .iter()
                .map(|p| {
                    Some(LivePeer {
                        node: text(p, "node")?,
                        state: text(p, "state")?,
                        reason: text(p, "reason"),
                    })
                })
                .collect::<Option<_>>()?,
        })
    }

    /// How long without an update makes the status stale: several intervals,
    /// plus room for a slow poll (DNS timeouts and retries, connect waits).
    pub fn stale_after_ms(&self) -> u64 {
        self.interval_ms.saturating_mul(3).saturating_add(10_000)
    }

    /// Peers that count for `--min-peers`: connected ones with --connect,
    /// discovered ones without.
    pub fn counted(&self) -> usize {
        if self.connect {
            self.peers.iter().filter(|p| p.state == "connected").count()
        } else {
            self.peers.len()
        }
    }
}

/// A string field of a JSON object.
fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

/// Parses `text` (read from `path`) with `from`.
fn parse<T>(text: &str, path: &Path, from: fn(&Value) -> Option<T>) -> anyhow::Result<T> {
    serde_json::from_str::<Value>(text)
        .ok()
        .as_ref()
        .and_then(from)
        .with_context(|| format!("{} is not a file beamup wrote", path.display()))
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub fn status_path(dir: &Path) -> PathBuf {
    dir.join(STATUS_FILE)
}

/// Records the boot of the release `config` describes (in its render
/// directory), just before the fork/exec.
pub fn record_boot(config: &Config, program: &Path, cookie_file: Option<&Path>, env: &Environment) {
    let cookie = CookieOrigin::at_boot(config, cookie_file);
    write_boot(
        &crate::config::render_dir(env, &config.node),
        &BootState::of(config, program, &cookie),
    );
}

/// Writes the boot record into `dir`. A failure is a warning, not a failed
/// boot: the release runs fine without it, only the ops commands will not
/// find it.
pub fn write_boot(dir: &Path, state: &BootState) {
    // `beamup -- bin/app <a command not known to be for a running node>`
    // next to a running node renders to the same directory: the live node's
    // record stays, or `status` and the ops commands would lose it.
    if let Ok(live) = load(dir).map(|found| found.state)
        && live.pid != state.pid
        && live.alive()
    {
        tracing::warn!(
            node = %live.node,
            pid = live.pid,
            "a running node's boot record is already here; keeping it"
        );
        return;
    }
    let result = safe_file::write_volatile(
        &state_path(dir),
        state.to_json().to_string().as_bytes(),
        0o600,
    );
    match result {
        Ok(()) => tracing::debug!(path = %state_path(dir).display(), "boot state recorded"),
        Err(e) => tracing::warn!(
            error = %format!("{e:#}"),
            "cannot record the boot state: `beamup remote`, `rpc`, `status` will not find this \
             node; point RELEASE_TMP (or TMPDIR) at a writable directory"
        ),
    }
}

/// Writes the live status (the reporter, after every poll).
pub fn write_status(path: &Path, status: &LiveStatus) -> anyhow::Result<()> {
    safe_file::write_volatile(path, status.to_json().to_string().as_bytes(), 0o600)
}

/// Reads the reporter's live status next to a boot record; None when the
/// reporter has not written one (yet).
pub fn read_status(dir: &Path) -> anyhow::Result<Option<LiveStatus>> {
    let path = status_path(dir);
    match safe_file::read(&path, MAX_STATUS) {
        Ok(text) => parse(&text, &path, LiveStatus::from_json).map(Some),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A boot record found on disk.
#[derive(Debug, Clone)]
pub struct Found {
    pub dir: PathBuf,
    pub state: BootState,
}

/// Finds the running node's boot record with only the container's own
/// environment: `--node` names the directory, else RELEASE_TMP, else every
/// `$TMPDIR/beamup/*/` is looked at (one record: that one; several: the one
/// whose release is alive, else `--node` is needed).
pub fn find(env: &Environment, node: Option<&str>) -> Result<Found, Failure> {
    let no_node = |msg: String| Failure::msg(ExitCode::NoNode, msg);
    if let Some(node) = node {
        naming::parse_node(node)
            .map_err(|e| Failure::msg(ExitCode::Usage, format!("--node: {e}")))?;
        let dir = crate::config::render_dir(env, node);
        let found = load(&dir).map_err(|e| {
            no_node(format!(
                "no boot record of {node} in {}: {e:#}; was it started through beamup with this \
                 RELEASE_TMP/TMPDIR?",
                dir.display()
            ))
        })?;
        if found.state.node != node {
            return Err(no_node(format!(
                "{} records node {}, not {node}",
                dir.display(),
                found.state.node
            )));
        }
        return Ok(found);
    }
    if let Some(tmp) = env.get("RELEASE_TMP").filter(|t| !t.is_empty()) {
        return load(Path::new(tmp)).map_err(|e| {
            no_node(format!(
                "no node started through beamup here: RELEASE_TMP is {tmp} and {e:#}; beamup \
                 records its node there at boot"
            ))
        });
    }
    let base = crate::config::render_dir(env, "x")
        .parent()
        .map_or_else(|| PathBuf::from("/tmp/beamup"), Path::to_path_buf);
    let mut found = scan(&base);
    match found.len() {
        0 => Err(no_node(format!(
            "no node started through beamup here: no boot record in {}/*/ and RELEASE_TMP is not \
             set. Run this inside the container whose ENTRYPOINT is beamup, with its environment \
             (`docker exec` and `kubectl exec` pass it); if beamup ran with another RELEASE_TMP or \
             TMPDIR, set the same one",
            base.display()
        ))),
        1 => Ok(found.remove(0)),
        _ => {
            let mut alive: Vec<Found> = found.iter().filter(|f| f.state.alive()).cloned().collect();
            if alive.len() == 1 {
                return Ok(alive.remove(0));
            }
            let names: Vec<&str> = found.iter().map(|f| f.state.node.as_str()).collect();
            Err(Failure::msg(
                ExitCode::Usage,
                format!(
                    "several nodes were started through beamup here ({}): give --node NAME",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Every readable boot record directly under `base` (`$TMPDIR/beamup`).
fn scan(base: &Path) -> Vec<Found> {
    // The base is checked like every directory beamup writes through (a
    // planted symlink is not followed), and a flood of entries is not read.
    if safe_file::open_dir(base, None).is_err() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    // Keyed by node: one order whatever the directory's; inserted one by one
    // (collecting into a map or sorting would add sort code to the binary).
    let mut found = std::collections::BTreeMap::new();
    let records = entries
        .take(MAX_SCANNED)
        .flatten()
        // file_type does not follow symlinks: a planted link is skipped.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| match load(&e.path()) {
            Ok(f) => Some(f),
            Err(err) => {
                tracing::debug!(dir = %e.path().display(), error = %format!("{err:#}"), "no boot record");
                None
            }
        });
    for record in records {
        found.insert(record.state.node.clone(), record);
    }
    found.into_values().collect()
}

fn load(dir: &Path) -> anyhow::Result<Found> {
    let path = state_path(dir);
    let text = safe_file::read(&path, MAX_STATE)?;
    let state = parse(&text, &path, BootState::from_json)?;
    state
        .validate()
        .with_context(|| format!("{} is not a valid boot record", path.display()))?;
    Ok(Found {
        dir: dir.to_path_buf(),
        state,
    })
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<nix::errno::Errno>() == Some(&nix::errno::Errno::ENOENT)
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The start time of `pid` (field 22 of /proc/PID/stat), None if it is gone
/// or a zombie.
pub fn process_start(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": comm may hold spaces and parentheses.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether `pid` runs and is the process that started at `start`.
pub fn alive(pid: i32, start: Option<u64>) -> bool {
    match (process_start(pid), start) {
        (None, _) => false,
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boot_state(node: &str) -> BootState {
        BootState {
            node: node.into(),
            address: "10.0.0.1".into(),
            source: "interface:eth0".into(),
            basename: "demo".into(),
            command: vec!["/app/bin/demo".into(), "start".into()],
            program: "/app/bin/demo".into(),
            kind: "mix".into(),
            vm_args: None,
            inet6: None,
            exports: vec![("RELEASE_NODE".to_string(), node.to_string())],
            cookie: "file:/run/secrets/cookie".into(),
            reporter: true,
            started: 1,
            pid: std::process::id() as i32,
            pid_start: process_start(std::process::id() as i32),
        }
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("beamup-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        safe_file::open_dir(&dir, Some(0o700)).expect("scratch dir");
        dir
    }

    fn env_with(vars: &[(&str, &str)]) -> Environment {
        let mut env = Environment::default();
        for (k, v) in vars {
            env.vars.insert(k.to_string(), v.to_string());
        }
        env
    }

    #[test]
    fn cookie_origins_round_trip() {
        for origin in [
            CookieOrigin::File("/run/secrets/c".into()),
            CookieOrigin::Env("RELEASE_COOKIE".into()),
            CookieOrigin::Release,
        ] {
            assert_eq!(CookieOrigin::parse(&origin.to_text()), Some(origin));
        }
        for bad in ["file:relative", "env:1X", "env:A B", "other"] {
            assert_eq!(CookieOrigin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn finds_one_record_and_asks_for_node_among_several() {
        let tmp = scratch("find");
        let env = env_with(&[("TMPDIR", tmp.to_str().expect("utf8"))]);
        let err = find(&env, None).expect_err("nothing recorded");
        assert_eq!(err.code, ExitCode::NoNode);
        assert!(format!("{:#}", err.error).contains("no node started through beamup"));

        let a = boot_state("demo@10.0.0.1");
        write_boot(&crate::config::render_dir(&env, &a.node), &a);
        assert_eq!(find(&env, None).expect("one").state, a);

        // A second record whose release is gone: the live one is chosen.
        let mut b = boot_state("demo@10.0.0.2");
        b.pid_start = Some(1);
        write_boot(&crate::config::render_dir(&env, &b.node), &b);
        assert_eq!(find(&env, None).expect("the live one").state.node, a.node);
        assert_eq!(find(&env, Some("demo@10.0.0.2")).expect("named").state, b);
        // Both alive: --node is required.
        b.pid_start = a.pid_start;
        write_boot(&crate::config::render_dir(&env, &b.node), &b);
        let err = find(&env, None).expect_err("ambiguous");
        assert!(
            format!("{:#}", err.error).contains("--node"),
            "{:#}",
            err.error
        );

        // RELEASE_TMP names the directory directly.
        let env = env_with(&[(
            "RELEASE_TMP",
            crate::config::render_dir(&env, &a.node)
                .to_str()
                .expect("utf8"),
        )]);
        assert_eq!(find(&env, None).expect("RELEASE_TMP").state, a);
        std::fs::remove_dir_all(&tmp).expect("clean up");
    }

    #[test]
    fn planted_and_foreign_records_are_refused() {
        let tmp = scratch("planted");
        let env = env_with(&[("TMPDIR", tmp.to_str().expect("utf8"))]);
        let a = boot_state("demo@10.0.0.1");
        let real = tmp.join("elsewhere");
        write_boot(&real, &a);
        // A symlinked node directory and a symlinked record are both skipped.
        safe_file::open_dir(&tmp.join("beamup"), Some(0o700)).expect("base");
        std::os::unix::fs::symlink(&real, tmp.join("beamup/demo@10.0.0.1")).expect("link");
        assert!(find(&env, None).is_err());
        std::fs::remove_file(tmp.join("beamup/demo@10.0.0.1")).expect("unlink");
        safe_file::open_dir(&tmp.join("beamup/demo@10.0.0.1"), Some(0o700)).expect("dir");
        std::os::unix::fs::symlink(
            state_path(&real),
            tmp.join("beamup/demo@10.0.0.1").join(STATE_FILE),
        )
        .expect("link");
        assert!(find(&env, None).is_err());
        // A record with a bad node name is not used.
        let mut bad = a.clone();
        bad.node = "x y@1".into();
        write_boot(&tmp.join("beamup/bad"), &bad);
        assert!(find(&env, None).is_err());
        std::fs::remove_dir_all(&tmp).expect("clean up");
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut a = boot_state("demo@fd00::1");
        a.vm_args = Some("/tmp/beamup/x/vm.args".into());
        a.inet6 = Some("ELIXIR_ERL_OPTIONS".into());
        for state in [a, boot_state("demo@10.0.0.1")] {
            assert_eq!(BootState::from_json(&state.to_json()), Some(state));
        }
        let mut live = LiveStatus {
            node: "demo@10.0.0.1".into(),
            reporter_pid: 7,
            reporter_start: Some(9),
            interval_ms: 1000,
            updated: 5,
            polls: 2,
            last_poll: None,
            connect: true,
            local: Some("waiting: booting".into()),
            peers: vec![LivePeer {
                node: "demo@10.0.0.2".into(),
                state: "failed".into(),
                reason: Some("timeout".into()),
            }],
        };
        assert_eq!(LiveStatus::from_json(&live.to_json()), Some(live.clone()));
        live.last_poll = Some(LastPoll {
            at: 4,
            ok: false,
            error: Some("NXDOMAIN".into()),
        });
        assert_eq!(LiveStatus::from_json(&live.to_json()), Some(live));
        // A missing or mistyped field: not a record.
        let mut v = boot_state("demo@10.0.0.1").to_json();
        v["pid"] = json!("1");
        assert_eq!(BootState::from_json(&v), None);
        assert_eq!(BootState::from_json(&json!({})), None);
    }

    #[test]
    fn process_start_tells_reused_pids() {
        let me = std::process::id() as i32;
        let start = process_start(me);
        assert!(start.is_some());
        assert!(alive(me, start));
        assert!(!alive(me, start.map(|s| s + 1)));
        assert!(!alive(i32::MAX, None));
    }

    #[test]
    fn counted_peers_follow_connect() {
        let peer = |state: &str| LivePeer {
            node: format!("demo@{state}"),
            state: state.into(),
            reason: None,
        };
        let mut live = LiveStatus {
            node: "demo@10.0.0.1".into(),
            reporter_pid: 1,
            reporter_start: None,
            interval_ms: 5000,
            updated: 0,
            polls: 1,
            last_poll: None,
            connect: true,
            local: None,
            peers: vec![peer("connected"), peer("failed"), peer("connecting")],
        };
        assert_eq!(live.counted(), 1);
        live.connect = false;
        assert_eq!(live.counted(), 3);
        assert_eq!(live.stale_after_ms(), 25_000);
    }
}
