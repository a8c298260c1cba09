//! `beamup doctor`: says why nodes do not cluster, from inside the container.
//!
//! It checks, in order, and prints one line per check (✔ / ✗ / – skipped), a
//! hint naming the fix under every ✗, and a closing verdict:
//! 1. this node ([`local`]): address, name, cookie origin, epmd registration,
//!    a distribution connection with that cookie, long names and
//!    `-proto_dist`, its `nodes()`;
//! 2. discovery ([`discovery`]): the query, record type, DNS server, every
//!    address in the answer and whether the own address is among them;
//! 3. every peer ([`peer`]): epmd and the names registered there, the
//!    distribution port, the handshake (name and cookie), the address family,
//!    connected to this node or not.
//!
//! Every network step is bounded by [`STEP_TIMEOUT`] and peers are checked
//! concurrently, so a dead peer costs about one second. Nothing is written
//! and the cookie is never shown, only where it came from.

mod discovery;
mod local;
mod peer;

use std::fmt::Write as _;
use std::future::Future;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use serde_json::json;

use crate::cli::Flags;
use crate::config::{self, Config, Mode};
use crate::discovery::Settings;
use crate::dist::{DistError, Session, SessionOptions, epmd};
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure};
use crate::secret::Secret;
use crate::state::{self, CookieOrigin, Located};

/// Bound on every network step (an epmd request, a TCP connect, the
/// handshake, a call): a peer that does not answer costs this once, since
/// its later steps are skipped.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(1);
/// Peers checked at the same time (each holds at most one socket).
const PEERS_AT_ONCE: usize = 16;

/// Who "this node" is: what the checks take, whatever told doctor.
#[derive(Debug, Clone)]
pub struct Identity {
    /// `basename@address`.
    pub node: String,
    pub address: IpAddr,
    /// Where the address came from, e.g. `interface:eth0`.
    pub source: String,
    pub cookie: Option<Secret>,
    /// Where the cookie came from (`RELEASE_COOKIE`, `--cookie-file PATH`...),
    /// or None when none was found.
    pub cookie_origin: Option<String>,
    /// The query, record type, DNS server and static peers as at boot.
    pub discovery: Settings,
    /// Whether doctor knows what this node discovers: its boot record says
    /// so, or the command gave discovery options. Without either, "nothing
    /// to discover" would be a guess, and doctor says so.
    pub discovery_known: bool,
    /// With the node's own discovery (no `--query`/`--peers` given to
    /// doctor): the peers its reporter reports (its live status), checked
    /// with those in the VM's `nodes()`, so a peer the reporter knows and the
    /// VM is not connected to is a ✗. None: doctor checks what the flags
    /// given to it discover, nothing else.
    pub reported_peers: Option<Vec<String>>,
    /// The port of the epmds asked, this node's and its peers' (ERL_EPMD_PORT).
    pub epmd_port: u16,
}

impl Identity {
    /// The identity from the same flags and presets as at boot.
    pub fn from_config(config: &Config) -> Identity {
        Identity {
            node: config.node.clone(),
            address: config.address,
            source: config.source.clone(),
            cookie: config.cookie.as_ref().map(|c| c.value.clone()),
            cookie_origin: config.cookie.as_ref().map(|c| c.origin.clone()),
            discovery: config.discovery.clone(),
            discovery_known: config.discovery.is_active(),
            reported_peers: None,
            epmd_port: config.epmd_port,
        }
    }

    /// The identity of the node running here, from its boot record: the
    /// node and address it was given at boot (whatever a lookup would find
    /// now) and its cookie from where it came; the rest as [`from_config`]
    /// (which was resolved with the recorded release command).
    ///
    /// [`from_config`]: Identity::from_config
    pub fn from_state(config: &Config, running: &Located, cross_check: bool) -> Identity {
        let boot = &running.state;
        let mut identity = Identity::from_config(config);
        identity.discovery_known = true;
        if cross_check {
            identity.reported_peers = Some(match state::read_status(&running.dir) {
                Ok(Some(live)) => live.peers.into_iter().map(|p| p.node).collect(),
                _ => Vec::new(),
            });
        }
        if let Ok(address) = boot.address.parse::<IpAddr>() {
            identity.address = address;
            identity.node = boot.node.clone();
            identity.source = format!("{} (the boot record)", boot.source);
            identity.discovery.own_address = address;
            identity.discovery.own_node = boot.node.clone();
        }
        if let CookieOrigin::File(path) = &boot.cookie
            && let Ok(cookie) = crate::cookie::from_file(path)
        {
            identity.cookie = Some(cookie.value);
            identity.cookie_origin = Some(cookie.origin);
        }
        identity
    }

    /// The node's name part.
    pub fn basename(&self) -> &str {
        self.node
            .split_once('@')
            .map_or(&self.node, |(name, _)| name)
    }

    /// The distribution module the node's address needs.
    pub fn proto_dist(&self) -> &'static str {
        proto_dist_for(self.address)
    }

    /// The hidden node name doctor appears as (the reporter's form).
    fn hidden_name(&self) -> String {
        crate::naming::hidden_node_name(self.address)
    }

    /// Connects to `node` as doctor's hidden node with this node's cookie,
    /// unless `not_ready` says why an earlier step rules it out or there is
    /// no cookie: then the `check` line saying so, skipped.
    async fn connect(
        &self,
        check: &'static str,
        node: &str,
        not_ready: Option<String>,
    ) -> Result<Result<Session, DistError>, Check> {
        if let Some(why) = not_ready {
            return Err(Check::skipped(check, why));
        }
        let Some(cookie) = &self.cookie else {
            return Err(Check::skipped(check, "no cookie to connect with"));
        };
        let hidden = self.hidden_name();
        Ok(boxed(Session::connect_with(
            node,
            &hidden,
            cookie,
            &session_options(self.epmd_port),
        ))
        .await)
    }
}

/// `inet6_tcp` for an IPv6 address, else `inet_tcp` (OTP's default).
fn proto_dist_for(address: IpAddr) -> &'static str {
    if address.to_canonical().is_ipv6() {
        "inet6_tcp"
    } else {
        "inet_tcp"
    }
}

fn family_name(address: IpAddr) -> &'static str {
    if address.to_canonical().is_ipv6() {
        "IPv6"
    } else {
        "IPv4"
    }
}

fn session_options(epmd_port: u16) -> SessionOptions {
    SessionOptions {
        epmd_port,
        connect_timeout: STEP_TIMEOUT,
        call_timeout: STEP_TIMEOUT,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

impl Status {
    /// As `--json` writes it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Check {
    /// Stable key, e.g. `epmd`, `handshake`.
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a failure.
    pub hint: Option<String>,
    /// A few words for the verdict line, e.g. `cookie differs`.
    pub summary: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
            summary: None,
        }
    }

    fn failed(
        name: &'static str,
        detail: impl Into<String>,
        summary: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status: Status::Failed,
            detail: detail.into(),
            hint: Some(hint.into()),
            summary: Some(summary.into()),
        }
    }

    fn skipped(name: &'static str, why: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skipped,
            detail: why.into(),
            hint: None,
            summary: None,
        }
    }
}

/// A titled group of checks: this node, discovery, or one peer.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    /// The peer's node name, for a peer's section.
    pub peer: Option<String>,
    pub checks: Vec<Check>,
}

impl Section {
    fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| c.status == Status::Failed)
    }
}

/// Everything doctor found.
#[derive(Debug, Clone)]
pub struct Report {
    pub node: String,
    pub sections: Vec<Section>,
}

impl Report {
    pub fn healthy(&self) -> bool {
        self.sections.iter().all(|s| s.failures().next().is_none())
    }

    pub fn exit_code(&self) -> ExitCode {
        if self.healthy() {
            ExitCode::Success
        } else {
            ExitCode::NotReady
        }
    }

    fn peers(&self) -> impl Iterator<Item = &Section> {
        self.sections.iter().filter(|s| s.peer.is_some())
    }

    /// (peers checked, peers connected to this node).
    fn peer_counts(&self) -> (usize, usize) {
        let connected = self
            .peers()
            .filter(|s| {
                s.checks
                    .iter()
                    .any(|c| c.name == peer::CONNECTED && c.status == Status::Ok)
            })
            .count();
        (self.peers().count(), connected)
    }

    /// The closing line, e.g. `2 of 3 peers connected; demo@10.0.1.7: cookie differs`.
    pub fn verdict(&self) -> String {
        let (total, connected) = self.peer_counts();
        let mut parts = Vec::new();
        for section in &self.sections {
            // One reason per section: the first failure explains the rest.
            if let Some(failed) = section.failures().next() {
                let who = section.peer.as_deref().unwrap_or(&section.title);
                let what = failed.summary.as_deref().unwrap_or(&failed.detail);
                parts.push(format!("{who}: {what}"));
            }
        }
        let peers = match total {
            0 => "no peers to check".to_string(),
            1 => format!("{connected} of 1 peer connected"),
            n => format!("{connected} of {n} peers connected"),
        };
        if parts.is_empty() {
            format!("{peers}; all checks passed")
        } else {
            format!("{peers}; {}", parts.join("; "))
        }
    }

    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for section in &self.sections {
            let _ = writeln!(out, "{}", section.title);
            for c in &section.checks {
                let mark = match c.status {
                    Status::Ok => '✔',
                    Status::Failed => '✗',
                    Status::Skipped => '–',
                };
                let _ = writeln!(out, "  {mark} {:<10} {}", c.name, c.detail);
                if let Some(hint) = &c.hint {
                    let _ = writeln!(out, "      hint: {hint}");
                }
            }
        }
        let _ = writeln!(out, "verdict: {}", self.verdict());
        out
    }

    pub fn to_json(&self) -> serde_json::Value {
        let (total, connected) = self.peer_counts();
        let sections: Vec<serde_json::Value> = self
            .sections
            .iter()
            .map(|s| {
                let checks: Vec<serde_json::Value> = s
                    .checks
                    .iter()
                    .map(|c| {
                        let mut check = json!({
                            "name": c.name,
                            "status": c.status.name(),
                            "detail": c.detail,
                        });
                        if let Some(hint) = &c.hint {
                            check["hint"] = json!(hint);
                        }
                        check
                    })
                    .collect();
                let mut section = json!({ "title": s.title, "checks": checks });
                if let Some(peer) = &s.peer {
                    section["peer"] = json!(peer);
                }
                section
            })
            .collect();
        json!({
            "node": self.node,
            "sections": sections,
            "peers": total,
            "connected": connected,
            "healthy": self.healthy(),
            "verdict": self.verdict(),
        })
    }
}

/// `beamup doctor`. Next to a running node (`docker exec c beamup doctor`,
/// no release command), its boot record names the node and the release
/// command, to find the release's cookie like at boot.
pub fn doctor(
    flags: &Flags,
    command: &[String],
    json: bool,
    env: &Environment,
) -> Result<i32, Failure> {
    let running = command
        .is_empty()
        .then(|| state::running_here(env))
        .flatten();
    let boot = running.as_ref().map(|found| &found.state);
    let command = boot.map_or(command, |b| b.command.as_slice());
    let config = config::resolve_dry(flags, command, env, Mode::Doctor, boot)?;
    // Flags given to doctor ask "what would this discover": only the node's
    // own discovery is cross-checked with its reporter and its VM.
    let cross_check = !flags.given.discovery;
    Ok(report(&config, running.as_ref(), cross_check, json).code())
}

/// Runs every check, prints the report (text or JSON) to stdout, returns
/// the exit code (0 all good, 1 something failed).
fn report(config: &Config, running: Option<&Located>, cross_check: bool, json: bool) -> ExitCode {
    let identity = match running {
        Some(running) => Identity::from_state(config, running, cross_check),
        None => Identity::from_config(config),
    };
    let report = match crate::process::runtime(true) {
        Ok(runtime) => runtime.block_on(examine(&identity)),
        Err(e) => {
            eprintln!("beamup: error: {e:#}");
            return ExitCode::Config;
        }
    };
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    report.exit_code()
}

/// Every check: this node and discovery at the same time, then the peers,
/// [`PEERS_AT_ONCE`] at a time (they need this node's `nodes()`).
pub async fn examine(identity: &Identity) -> Report {
    let (local, found) = tokio::join!(local::check(identity), discovery::check(identity));
    let mut sections = vec![local.section.clone(), found.section];
    // What discovery answers, what the reporter reports and what the VM is
    // connected to: a peer in any of them is checked.
    let mut peers = found.peers.clone();
    if let Some(reported) = &identity.reported_peers {
        peers.extend(reported.iter().cloned());
        peers.extend(local.nodes.iter().flatten().cloned());
        peers.remove(&identity.node);
    }
    let peers: Vec<&String> = peers.iter().collect();
    for chunk in peers.chunks(PEERS_AT_ONCE) {
        let checks = chunk
            .iter()
            .map(|node| Box::pin(peer::check(node, identity, &local)) as Pending<'_>)
            .collect();
        sections.extend(join_all(checks).await);
    }
    Report {
        node: identity.node.clone(),
        sections,
    }
}

type Pending<'a> = Pin<Box<dyn Future<Output = Section> + 'a>>;

/// A future called from several checks, behind one pointer: its state
/// machine then exists once in the static binary instead of being inlined
/// into every caller's.
fn boxed<'a, T>(future: impl Future<Output = T> + 'a) -> Pin<Box<dyn Future<Output = T> + 'a>> {
    Box::pin(future)
}

/// The names registered with the epmd at `at` (see [`boxed`]).
async fn epmd_names(at: SocketAddr) -> Result<Vec<epmd::Registered>, DistError> {
    boxed(epmd::names(at, STEP_TIMEOUT)).await
}

/// One poll of `discovery` (see [`boxed`]).
async fn poll(
    discovery: &crate::discovery::Discovery,
) -> Result<crate::discovery::Poll, crate::discovery::PollError> {
    boxed(discovery.poll_full()).await
}

/// Runs every future to completion on this task, concurrently, results in
/// order. (No spawned tasks: each spawned future type costs the static
/// binary a task instantiation.)
async fn join_all(mut pending: Vec<Pending<'_>>) -> Vec<Section> {
    let mut done: Vec<Option<Section>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, slot) in pending.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(section) => *slot = Some(section),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// `a, b, c`, or `none`.
fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let shown: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    if shown.is_empty() {
        "none".to_string()
    } else {
        shown.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(title: &str, peer: Option<&str>, checks: Vec<Check>) -> Section {
        Section {
            title: title.into(),
            peer: peer.map(str::to_string),
            checks,
        }
    }

    fn connected() -> Check {
        Check::ok(peer::CONNECTED, "connected to demo@10.0.0.1")
    }

    #[test]
    fn verdicts() {
        let cookie = Check::failed("handshake", "rejected", "cookie differs", "use one cookie");
        let local_ok = section("this node", None, vec![Check::ok("epmd", "ok")]);
        // (sections, verdict, healthy)
        let cases = vec![
            (
                vec![local_ok.clone()],
                "no peers to check; all checks passed",
                true,
            ),
            (
                vec![
                    local_ok.clone(),
                    section("peer b", Some("demo@10.0.0.2"), vec![connected()]),
                ],
                "1 of 1 peer connected; all checks passed",
                true,
            ),
            (
                vec![
                    local_ok.clone(),
                    section("peer b", Some("demo@10.0.0.2"), vec![connected()]),
                    section(
                        "peer c",
                        Some("demo@10.0.0.3"),
                        vec![
                            cookie.clone(),
                            Check::failed("connected", "no", "not connected", "x"),
                        ],
                    ),
                ],
                "1 of 2 peers connected; demo@10.0.0.3: cookie differs",
                false,
            ),
            (
                vec![
                    section(
                        "discovery",
                        None,
                        vec![Check::failed(
                            "answer",
                            "none",
                            "the query returned no address",
                            "fix",
                        )],
                    ),
                    section("peer b", Some("demo@10.0.0.2"), vec![connected()]),
                ],
                "1 of 1 peer connected; discovery: the query returned no address",
                false,
            ),
        ];
        for (sections, verdict, healthy) in cases {
            let report = Report {
                node: "demo@10.0.0.1".into(),
                sections,
            };
            assert_eq!(report.verdict(), verdict);
            assert_eq!(report.healthy(), healthy);
            assert_eq!(
                report.exit_code(),
                if healthy {
                    ExitCode::Success
                } else {
                    ExitCode::NotReady
                }
            );
        }
    }

    #[test]
    fn text_and_json_carry_the_same_checks() {
        let report = Report {
            node: "demo@10.0.0.1".into(),
            sections: vec![section(
                "peer demo@10.0.0.3",
                Some("demo@10.0.0.3"),
                vec![
                    Check::ok("epmd", "demo at port 4000"),
                    Check::failed("handshake", "rejected", "cookie differs", "use one cookie"),
                    Check::skipped("connected", "the handshake failed"),
                ],
            )],
        };
        let text = report.to_text();
        for needle in [
            "peer demo@10.0.0.3\n",
            "  ✔ epmd       demo at port 4000\n",
            "  ✗ handshake  rejected\n      hint: use one cookie\n",
            "  – connected  the handshake failed\n",
            "verdict: 0 of 1 peer connected; demo@10.0.0.3: cookie differs\n",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
        let json = report.to_json();
        assert_eq!(json["healthy"], false);
        assert_eq!(json["peers"], 1);
        assert_eq!(json["connected"], 0);
        let checks = &json["sections"][0]["checks"];
        assert_eq!(checks[1]["status"], "failed");
        assert_eq!(checks[1]["hint"], "use one cookie");
        assert!(checks[0].get("hint").is_none());
        assert_eq!(checks[2]["status"], "skipped");
    }

    #[test]
    fn families() {
        for (address, proto, family) in [
            ("10.0.0.1", "inet_tcp", "IPv4"),
            ("::ffff:10.0.0.1", "inet_tcp", "IPv4"),
            ("fd00::1", "inet6_tcp", "IPv6"),
        ] {
            let ip: IpAddr = address.parse().expect("ip");
            assert_eq!(proto_dist_for(ip), proto, "{address}");
            assert_eq!(family_name(ip), family, "{address}");
        }
    }
}
