//! What beamup leaves in its render directory for the life of the node, so
//! that `docker exec c beamup remote|rpc|pid|stop|status|env` (which gets only
//! the container's configured environment, never what beamup exported at
//! boot) can act with the running node's exact identity:
//!
//! - the boot record [`BootState`] (`beamup.state.json`), written once just
//!   before the fork/exec by the boot step (`crate::boot`): node, address,
//!   release command and kind, the rendered vm.args, where `-proto_dist
//!   inet6_tcp` went, the non-secret exports, where the cookie came from
//!   (never the cookie), the release's PID (beamup's own: the exec keeps it);
//! - the reporter's live status [`LiveStatus`] (`beamup.status.json`),
//!   rewritten atomically after every poll.
//!
//! Plain typed records with serde derives, at the bottom of the house: this
//! module knows files and JSON, not how a boot decides what goes in them.
//! Both are written through [`safe_file::write_volatile`] (mode 0600) and
//! read back only from directories nobody else could have planted them in,
//! never through a symlink, size-capped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::discovery::RecordKind;
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure};
use crate::peer::{PeerState, PeerStatus};
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
/// recorded; the ops commands read the cookie again from there. Stored as
/// `file:PATH`, `env:VAR` or `release`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
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

impl From<CookieOrigin> for String {
    fn from(origin: CookieOrigin) -> String {
        match origin {
            CookieOrigin::File(p) => format!("file:{}", p.display()),
            CookieOrigin::Env(v) => format!("env:{v}"),
            CookieOrigin::Release => "release".into(),
        }
    }
}

impl TryFrom<String> for CookieOrigin {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "release" {
            return Ok(CookieOrigin::Release);
        }
        if let Some(path) = text.strip_prefix("file:").filter(|p| p.starts_with('/')) {
            return Ok(CookieOrigin::File(PathBuf::from(path)));
        }
        text.strip_prefix("env:")
            .filter(|v| crate::template::is_name(v))
            .map(|v| CookieOrigin::Env(v.to_string()))
            .ok_or_else(|| format!("unknown cookie origin `{text}`"))
    }
}

/// The boot record (see the module doc). Never holds the cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub kind: Kind,
    /// The rendered vm.args, if any.
    pub vm_args: Option<PathBuf>,
    /// Where `-proto_dist inet6_tcp` went (None for an IPv4 node).
    pub inet6: Option<String>,
    /// The non-secret variables beamup exported for the release.
    pub exports: BTreeMap<String, String>,
    pub cookie: CookieOrigin,
    /// Whether a reporter was forked (something to discover).
    pub reporter: bool,
    /// What the node discovers, as resolved at boot (None: nothing), so
    /// `doctor` and `peers` next to it need no flags: its CMD often holds
    /// them, and `docker exec` sees only the image's environment.
    #[serde(default)]
    pub discovery: Option<DiscoveryAtBoot>,
    /// Unix seconds.
    pub started: u64,
    /// The release's PID: beamup's own, which the exec keeps.
    pub pid: i32,
    /// The PID's start time (clock ticks after boot, /proc/PID/stat), so a
    /// reused PID is not taken for the node.
    pub pid_start: Option<u64>,
}

impl BootState {
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
        if let Some(bad) = self.exports.keys().find(|k| !crate::template::is_name(k)) {
            bail!("`{bad}` is not a variable name");
        }
        if let Some(d) = &self.discovery {
            if let Some(q) = d.query.as_deref().filter(|q| !naming::is_dns_name(q)) {
                bail!("the query `{}` is not a DNS name", q.escape_debug());
            }
            if let Some(bad) = d
                .static_peers
                .iter()
                .find(|p| naming::parse_node(p).is_err())
            {
                bail!("the peer `{}` is not a node name", bad.escape_debug());
            }
        }
        Ok(())
    }
}

/// The discovery settings of a booted node (see [`BootState::discovery`]).
/// Never holds the cookie (the query may not name it: `config` refuses that).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveryAtBoot {
    /// The rendered DNS query.
    pub query: Option<String>,
    pub record: RecordKind,
    pub dns_server: Option<SocketAddr>,
    pub dns_timeout_ms: u64,
    pub dns_attempts: usize,
    /// `--max-srv-targets`, `--max-peers`.
    pub max_srv_targets: usize,
    pub max_peers: usize,
    /// `--peers`.
    pub static_peers: Vec<String>,
    pub interval_ms: u64,
    pub leave_after: u32,
    /// `--connect`.
    pub connect: bool,
    pub peers_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPoll {
    /// Unix milliseconds.
    pub at: u64,
    pub ok: bool,
    pub error: Option<String>,
}

/// The reporter's live status (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// `discovered` without --connect; `connected`, `connecting`, `failed`
    /// (with a `detail`) or `unknown` with it: the peers file's entries.
    pub peers: Vec<PeerStatus>,
    /// Why the reporter cannot write `--peers-file` (e.g. another user's
    /// file holds the name), while it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers_file_error: Option<String>,
}

impl LiveStatus {
    /// How long without an update makes the status stale: several intervals,
    /// plus room for a slow poll (DNS timeouts and retries, connect waits).
    pub fn stale_after_ms(&self) -> u64 {
        self.interval_ms.saturating_mul(3).saturating_add(10_000)
    }

    /// Peers that count for `--min-peers`: connected ones with --connect,
    /// discovered ones without.
    pub fn counted(&self) -> usize {
        if self.connect {
            self.peers
                .iter()
                .filter(|p| p.state == PeerState::Connected)
                .count()
        } else {
            self.peers.len()
        }
    }
}

/// Parses `text` (read from `path`) as a `T`.
fn parse<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> anyhow::Result<T> {
    serde_json::from_str(text)
        .ok()
        .with_context(|| format!("{} is not a file beamup wrote", path.display()))
}

pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

pub fn status_path(dir: &Path) -> PathBuf {
    dir.join(STATUS_FILE)
}

/// Writes the boot record into `dir`. A failure is a warning, not a failed
/// boot: the release runs fine without it, only the ops commands will not
/// find it.
pub fn write_boot(dir: &Path, state: &BootState) {
    match safe_file::Dir::open(dir, Some(safe_file::dir_mode_for(0o600))) {
        Ok(dir) => write_boot_in(&dir, state),
        Err(e) => cannot_record(&e),
    }
}

/// [`write_boot`] into `dir`, already opened (the boot's claims opened it):
/// the directory is walked once for the read and the write (issue 19).
pub fn write_boot_in(dir: &safe_file::Dir, state: &BootState) {
    // `beamup -- bin/app <a command not known to be for a running node>`
    // next to a running node renders to the same directory: the live node's
    // record stays, or `status` and the ops commands would lose it.
    if let Ok(live) = read_boot(dir)
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
    let result = encode_boot(state).and_then(|json| dir.write_volatile(STATE_FILE, &json, 0o600));
    match result {
        Ok(()) => tracing::debug!(path = %dir.join(STATE_FILE).display(), "boot state recorded"),
        Err(e) => cannot_record(&e),
    }
}

fn cannot_record(e: &anyhow::Error) {
    tracing::warn!(
        error = %format!("{e:#}"),
        "cannot record the boot state: `beamup remote`, `rpc`, `status` will not find this \
         node; point RELEASE_TMP (or TMPDIR) at a writable directory"
    );
}

/// The boot record as written to disk (the boot claims its name holding
/// this, `crate::boot`).
pub fn encode_boot(state: &BootState) -> anyhow::Result<Vec<u8>> {
    serde_json::to_vec(state).context("while encoding the boot record")
}

/// Writes the live status (the reporter, after every poll).
pub fn write_status(path: &Path, status: &LiveStatus) -> anyhow::Result<()> {
    let json = serde_json::to_vec(status).context("while encoding the live status")?;
    safe_file::write_volatile(path, &json, 0o600)
}

/// Reads the reporter's live status next to a boot record; None when the
/// reporter has not written one (yet): no file, or the empty file the boot
/// claimed the name with (`crate::boot`).
pub fn read_status(dir: &Path) -> anyhow::Result<Option<LiveStatus>> {
    let path = status_path(dir);
    match safe_file::read(&path, MAX_STATUS) {
        Ok(text) if text.is_empty() => Ok(None),
        Ok(text) => parse(&text, &path).map(Some),
        Err(e) if safe_file::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A boot record found on disk, and the directory it is in.
#[derive(Debug, Clone)]
pub struct Located {
    pub dir: PathBuf,
    pub state: BootState,
}

/// Finds the running node's boot record with only the container's own
/// environment: `--node` names the directory, else RELEASE_TMP, else every
/// `$TMPDIR/beamup/*/` is looked at (one record: that one; several: the one
/// whose release is alive, else `--node` is needed).
pub fn find(env: &Environment, node: Option<&str>) -> Result<Located, Failure> {
    let no_node = |msg: String| Failure::msg(ExitCode::NoNode, msg);
    if let Some(node) = node {
        naming::parse_node(node)
            .map_err(|e| Failure::msg(ExitCode::Usage, format!("--node: {e}")))?;
        let dir = env.render_dir(node);
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
    let base = env
        .render_dir("x")
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
            let mut alive: Vec<Located> =
                found.iter().filter(|f| f.state.alive()).cloned().collect();
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

/// The boot record of the node running here, if there is exactly one
/// alive (what `doctor` and `peers` without a release command look for).
pub fn running_here(env: &Environment) -> Option<Located> {
    find(env, None).ok().filter(|found| found.state.alive())
}

/// Every readable boot record directly under `base` (`$TMPDIR/beamup`).
fn scan(base: &Path) -> Vec<Located> {
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

fn load(dir: &Path) -> anyhow::Result<Located> {
    let state = read_boot(&safe_file::Dir::open(dir, None)?)?;
    Ok(Located {
        dir: dir.to_path_buf(),
        state,
    })
}

/// The boot record in `dir`, checked.
fn read_boot(dir: &safe_file::Dir) -> anyhow::Result<BootState> {
    let path = dir.join(STATE_FILE);
    let text = dir.read(STATE_FILE, MAX_STATE)?;
    let state: BootState = parse(&text, &path)?;
    state
        .validate()
        .with_context(|| format!("{} is not a valid boot record", path.display()))?;
    Ok(state)
}

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The start time of `pid` (field 22 of /proc/PID/stat), None if it is gone
/// or a zombie.
pub fn process_start(pid: i32) -> Option<u64> {
    use std::io::Read as _;
    // One read into a buffer that holds the fields up to the start time
    // whatever their values (22 numbers of at most 20 digits and a comm of
    // at most 64 bytes), not read_to_string's growing probes of a file
    // whose size /proc reports as 0 (issue 19).
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    let stat = std::str::from_utf8(&buf[..n]).ok()?;
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
            kind: Kind::Mix,
            vm_args: None,
            inet6: None,
            exports: BTreeMap::from([("RELEASE_NODE".to_string(), node.to_string())]),
            cookie: CookieOrigin::File("/run/secrets/cookie".into()),
            reporter: true,
            discovery: Some(DiscoveryAtBoot {
                query: Some("demo.svc.test".into()),
                record: RecordKind::AAndAaaa,
                dns_server: Some("10.0.0.53:53".parse().expect("addr")),
                dns_timeout_ms: 2000,
                dns_attempts: 2,
                max_srv_targets: 256,
                max_peers: 1024,
                static_peers: vec!["demo@10.0.0.9".into()],
                interval_ms: 5000,
                leave_after: 3,
                connect: true,
                peers_file: None,
            }),
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
            assert_eq!(
                CookieOrigin::try_from(String::from(origin.clone())),
                Ok(origin)
            );
        }
        for bad in ["file:relative", "env:1X", "env:A B", "other"] {
            assert!(CookieOrigin::try_from(bad.to_string()).is_err(), "{bad}");
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
        write_boot(&env.render_dir(&a.node), &a);
        assert_eq!(find(&env, None).expect("one").state, a);

        // A second record whose release is gone: the live one is chosen.
        let mut b = boot_state("demo@10.0.0.2");
        b.pid_start = Some(1);
        write_boot(&env.render_dir(&b.node), &b);
        assert_eq!(find(&env, None).expect("the live one").state.node, a.node);
        assert_eq!(find(&env, Some("demo@10.0.0.2")).expect("named").state, b);
        // Both alive: --node is required.
        b.pid_start = a.pid_start;
        write_boot(&env.render_dir(&b.node), &b);
        let err = find(&env, None).expect_err("ambiguous");
        assert!(
            format!("{:#}", err.error).contains("--node"),
            "{:#}",
            err.error
        );

        // RELEASE_TMP names the directory directly.
        let env = env_with(&[(
            "RELEASE_TMP",
            env.render_dir(&a.node).to_str().expect("utf8"),
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
            let json = serde_json::to_string(&state).expect("encode");
            assert_eq!(serde_json::from_str::<BootState>(&json).ok(), Some(state));
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
            peers: vec![PeerStatus {
                node: "demo@10.0.0.2".into(),
                state: PeerState::Failed("timeout".into()),
            }],
            peers_file_error: None,
        };
        let round_trip = |l: &LiveStatus| {
            serde_json::from_str::<LiveStatus>(&serde_json::to_string(l).ok()?).ok()
        };
        assert_eq!(round_trip(&live), Some(live.clone()));
        live.last_poll = Some(LastPoll {
            at: 4,
            ok: false,
            error: Some("NXDOMAIN".into()),
        });
        assert_eq!(round_trip(&live), Some(live));
        // A missing or mistyped field: not a record.
        let mut v = serde_json::to_value(boot_state("demo@10.0.0.1")).expect("encode");
        v["pid"] = serde_json::json!("1");
        assert!(serde_json::from_value::<BootState>(v).is_err());
        assert!(serde_json::from_value::<BootState>(serde_json::json!({})).is_err());
        // The file format: kind and cookie origin as plain strings.
        let v = serde_json::to_value(boot_state("demo@10.0.0.1")).expect("encode");
        assert_eq!(v["kind"], "mix");
        assert_eq!(v["cookie"], "file:/run/secrets/cookie");
        assert_eq!(v["exports"]["RELEASE_NODE"], "demo@10.0.0.1");
        assert_eq!(v["discovery"]["record"], "a+aaaa");
        assert_eq!(v["discovery"]["query"], "demo.svc.test");
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
        let peer = |state: PeerState| PeerStatus {
            node: format!("demo@{}", state.name()),
            state,
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
            peers: vec![
                peer(PeerState::Connected),
                peer(PeerState::Failed("down".into())),
                peer(PeerState::Connecting),
            ],
            peers_file_error: None,
        };
        assert_eq!(live.counted(), 1);
        live.connect = false;
        assert_eq!(live.counted(), 3);
        assert_eq!(live.stale_after_ms(), 25_000);
    }
}
