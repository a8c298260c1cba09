//! The distribution client against real OTP nodes.
//!
//! Every test gets its own network namespace (`bu-dist-<pid>-<test>`) with only
//! `lo` up: its nodes and the epmd they start live there, the test thread joins
//! it with setns(2) so the client's sockets do too, and teardown kills every
//! process in the namespace (all started by the test) and deletes it. Nothing
//! leaves loopback. Needs root, `ip` (iproute2) and `erl` (Debian: erlang).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beamup::dist::{Atom, DistError, FixInteger, NodeEvent, Session, SessionOptions, Term};
use beamup::peer::PeerState;
use beamup::reporter::mesh::{Connector, LocalState, SyncCause};
use beamup::secret::Secret;
use nix::sched::{CloneFlags, setns};

/// Bound on every wait for a node to come up or a state to be reached.
const WAIT: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------- harness

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (install iproute2 / erlang)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed (these tests need root for network namespaces): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn random_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    let n = RandomState::new().hash_one(std::process::id());
    format!("{n:016x}")
}

/// A network namespace with `lo` up, a scratch dir, and the nodes started in it.
struct Netns {
    name: String,
    dir: PathBuf,
    /// The test thread's own namespace, restored on drop.
    home: Option<File>,
}

impl Netns {
    fn new(test: &str) -> Netns {
        let name = format!("bu-dist-{}-{test}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        // A leftover of a crashed run with the same pid would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns {
            name,
            dir,
            home: None,
        };
        run(Command::new("ip").args(["-n", &ns.name, "link", "set", "lo", "up"]));
        fs::create_dir_all(&ns.dir).expect("create scratch dir");
        ns
    }

    /// Moves the calling thread (the test's current-thread runtime) into the
    /// namespace, so sockets the client opens are on the namespace's loopback.
    fn enter(&mut self) {
        let home = File::open("/proc/thread-self/ns/net").expect("open own netns");
        let target = File::open(format!("/run/netns/{}", self.name)).expect("open test netns");
        setns(target.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns into test netns");
        self.home = Some(home);
    }

    /// Starts `erl` inside the namespace; does not wait for it.
    fn start(&self, name: &str, cookie: &str, extra: &[&str]) -> Node {
        let short = name.split('@').next().unwrap_or(name);
        let log = File::create(self.dir.join(format!("{short}.log"))).expect("create node log");
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, "erl", "-name", name])
            // A test-only random cookie; on the command line for simplicity.
            .args(["-setcookie", cookie, "-noinput"])
            .args(["-kernel", "net_ticktime", "4"])
            .args(extra)
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start erl: {e} (install erlang)"));
        Node {
            name: name.to_owned(),
            child,
        }
    }

    /// Starts a node and waits until epmd knows it.
    fn node(&self, name: &str, cookie: &str, extra: &[&str]) -> Node {
        let node = self.start(name, cookie, extra);
        self.wait_registered(&node);
        node
    }

    fn wait_registered(&self, node: &Node) {
        let short = node.name.split('@').next().unwrap_or(&node.name);
        let needle = format!("name {short} at port");
        let start = Instant::now();
        while start.elapsed() < WAIT {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.name, "epmd", "-names"])
                .output()
                .expect("run epmd -names");
            if String::from_utf8_lossy(&out.stdout).contains(&needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = fs::read_to_string(self.dir.join(format!("{short}.log"))).unwrap_or_default();
        panic!(
            "{} did not register with epmd within {WAIT:?}; its output:\n{log}",
            node.name
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(home) = self.home.take() {
            let _ = setns(home.as_fd(), CloneFlags::CLONE_NEWNET);
        }
        // Only processes of this namespace: the nodes and the epmd they started.
        let me = std::process::id();
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>()
                    && pid as u32 != me
                {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

struct Node {
    name: String,
    child: Child,
}

impl Node {
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn secret(cookie: &str) -> Secret {
    Secret::new(cookie)
}

fn own_name(host: &str) -> String {
    format!("beamup-{}@{host}", std::process::id())
}

fn set(nodes: &[&str]) -> BTreeSet<String> {
    nodes.iter().map(|s| s.to_string()).collect()
}

async fn connect(local: &str, own: &str, cookie: &Secret) -> Session {
    Session::connect(local, own, cookie)
        .await
        .unwrap_or_else(|e| panic!("connecting to {local}: {e}"))
}

/// A hidden-node session to `node` for asking it what it sees, named
/// `<tag>-<pid>@127.0.0.1`.
async fn probe(node: &str, tag: &str, cookie: &str) -> Session {
    let own = format!("{tag}-{}@127.0.0.1", std::process::id());
    connect(node, &own, &secret(cookie)).await
}

/// Polls `check` until it returns true, failing with `what` after WAIT.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not reached within {WAIT:?}");
}

async fn nodes_of(session: &Session) -> BTreeSet<String> {
    session
        .nodes()
        .await
        .unwrap_or_else(|e| panic!("nodes() on {}: {e}", session.local_node()))
        .into_iter()
        .collect()
}

async fn hidden_nodes_of(session: &Session) -> Vec<String> {
    let term = session
        .call("erlang", "nodes", vec![Term::from(Atom::from("hidden"))])
        .await
        .expect("erlang:nodes(hidden)");
    match term {
        Term::List(l) => l
            .elements
            .into_iter()
            .map(|t| match t {
                Term::Atom(a) => a.name,
                other => panic!("nodes(hidden) holds {other}"),
            })
            .collect(),
        other => panic!("nodes(hidden) returned {other}"),
    }
}

// ---------------------------------------------------------------- Session

#[tokio::test]
async fn connects_as_a_hidden_node_and_nodes_is_empty() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("hidden");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let own = own_name("127.0.0.1");

    let s = connect(&a.name, &own, &secret(&cookie)).await;
    assert!(s.is_alive());
    assert_eq!(s.nodes().await.expect("nodes()"), Vec::<String>::new());
    // We are connected, but only as a hidden node.
    assert_eq!(hidden_nodes_of(&s).await, vec![own.clone()]);
    // A call that fails on the node comes back as badrpc, not as a hang.
    let err = s
        .call("no_such_module", "f", vec![])
        .await
        .expect_err("undefined function");
    assert!(
        matches!(err, DistError::Rpc(ref m) if m.contains("undef")),
        "{err}"
    );
    assert!(s.is_alive(), "a failed call keeps the session");
}

#[tokio::test]
async fn connect_node_and_disconnect_node_change_the_local_nodes_view() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("connect");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    ns.enter();
    let own = own_name("127.0.0.1");
    let s = connect(&a.name, &own, &secret(&cookie)).await;

    assert_eq!(s.connect_node(&b.name).await, Ok(true));
    let seen = nodes_of(&s).await;
    assert!(seen.contains(&b.name), "a sees {seen:?}");
    assert!(
        !seen.contains(&own),
        "the hidden beamup node shows in nodes(): {seen:?}"
    );

    assert_eq!(s.disconnect_node(&b.name).await, Ok(true));
    eventually("a no longer lists b", || async {
        !nodes_of(&s).await.contains(&b.name)
    })
    .await;
    // Connecting to a node that does not exist is a plain false.
    assert_eq!(s.connect_node("nobody@127.0.0.1").await, Ok(false));
}

#[tokio::test]
async fn a_wrong_cookie_is_cookie_rejected_and_never_printed() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let wrong = format!("wrong-{}", random_token());
    let mut ns = Netns::new("cookie");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();

    let err = Session::connect(&a.name, &own_name("127.0.0.1"), &secret(&wrong))
        .await
        .expect_err("wrong cookie must fail");
    assert_eq!(
        err,
        DistError::CookieRejected {
            node: a.name.clone()
        }
    );
    let shown = format!("{err} / {err:?}");
    assert!(shown.contains("rejected the cookie"), "{shown}");
    assert!(
        !shown.contains(&wrong) && !shown.contains(&cookie),
        "cookie leaked: {shown}"
    );
}

#[tokio::test]
async fn a_node_not_started_yet_is_not_registered_and_no_epmd_is_unreachable() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("booting");
    ns.enter();
    // Nothing runs in the namespace yet: no epmd.
    let err = Session::connect("a@127.0.0.1", &own_name("127.0.0.1"), &secret(&cookie))
        .await
        .expect_err("no epmd");
    assert!(
        matches!(err, DistError::EpmdUnreachable { ref host, .. } if host == "127.0.0.1"),
        "{err:?}"
    );

    // b brings epmd up; a is still missing.
    let _b = ns.node("b@127.0.0.1", &cookie, &[]);
    let err = Session::connect("a@127.0.0.1", &own_name("127.0.0.1"), &secret(&cookie))
        .await
        .expect_err("a is not there");
    assert_eq!(
        err,
        DistError::NotRegistered {
            node: "a@127.0.0.1".into()
        }
    );
}

#[tokio::test]
async fn the_session_survives_three_tick_times_idle() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("ticks");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let s = connect(&a.name, &own_name("127.0.0.1"), &secret(&cookie)).await;

    // net_ticktime is 4 s: a silent peer is dropped after about 4 s.
    tokio::time::sleep(Duration::from_secs(13)).await;
    assert!(s.is_alive(), "the node dropped us: ticks not answered");
    assert_eq!(
        s.nodes().await.expect("nodes() after idling"),
        Vec::<String>::new()
    );
    // And the node still lists us: it did not drop and re-accept.
    assert_eq!(hidden_nodes_of(&s).await, vec![s.own_name().to_owned()]);
}

#[tokio::test]
async fn the_session_notices_the_local_node_going_away() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("gone");
    let mut a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let s = connect(&a.name, &own_name("127.0.0.1"), &secret(&cookie)).await;
    assert!(s.is_alive());

    a.kill();
    eventually("is_alive turns false", || async { !s.is_alive() }).await;
    let err = s.nodes().await.expect_err("calls fail once closed");
    assert_eq!(
        err,
        DistError::Closed {
            node: a.name.clone()
        }
    );
}

#[tokio::test]
async fn an_ipv6_node_works() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("ipv6");
    let inet6 = ["-proto_dist", "inet6_tcp"];
    let a = ns.node("a@::1", &cookie, &inet6);
    let b = ns.node("b@::1", &cookie, &inet6);
    ns.enter();
    let own = own_name("::1");

    let s = connect(&a.name, &own, &secret(&cookie)).await;
    assert_eq!(s.nodes().await.expect("nodes()"), Vec::<String>::new());
    assert_eq!(s.connect_node(&b.name).await, Ok(true));
    assert_eq!(nodes_of(&s).await, set(&["b@::1"]));
}

#[tokio::test]
async fn a_call_without_reply_times_out_instead_of_hanging() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("timeout");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let options = SessionOptions {
        call_timeout: Duration::from_secs(1),
        ..SessionOptions::default()
    };
    let s = Session::connect_with(&a.name, &own_name("127.0.0.1"), &secret(&cookie), &options)
        .await
        .expect("connect");
    let sleep = vec![erl_int(3_000)];
    let err = s
        .call("timer", "sleep", sleep)
        .await
        .expect_err("must time out");
    assert!(
        matches!(err, DistError::Timeout(ref m) if m.contains("timer:sleep/1")),
        "{err}"
    );
    assert!(s.is_alive(), "a timed-out call keeps the session");
    // The late reply is dropped quietly and the session keeps working.
    assert_eq!(
        s.nodes().await.expect("nodes() after a timeout"),
        Vec::<String>::new()
    );
}

fn erl_int(n: i32) -> beamup::dist::Term {
    Term::from(FixInteger::from(n))
}

// ---------------------------------------------------------------- Connector

#[tokio::test]
async fn connector_meshes_three_nodes_through_the_local_one() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("mesh");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    let c = ns.node("c@127.0.0.1", &cookie, &[]);
    ns.enter();
    let own = own_name("127.0.0.1");
    let mut connector = Connector::new(a.name.clone(), own.clone(), secret(&cookie), false);

    let peers = set(&[&a.name, &b.name, &c.name]);
    let report = connector.sync(&peers, &[], SyncCause::Poll).await;
    assert_eq!(report.local, LocalState::Connected, "{report:?}");
    for p in &report.peers {
        assert_eq!(p.state, PeerState::Connected, "{report:?}");
    }
    assert_eq!(
        report
            .peers
            .iter()
            .map(|p| p.node.as_str())
            .collect::<Vec<_>>(),
        vec![a.name.as_str(), b.name.as_str(), c.name.as_str()]
    );

    // a is connected to both; the mesh closes through OTP's transitive connects.
    let to_a = probe(&a.name, "probe-a", &cookie).await;
    assert_eq!(nodes_of(&to_a).await, set(&[&b.name, &c.name]));
    let to_b = probe(&b.name, "probe-b", &cookie).await;
    eventually("b sees a and c", || async {
        nodes_of(&to_b).await == set(&[&a.name, &c.name])
    })
    .await;

    // A second sync finds everything connected and asks nothing new.
    let again = connector.sync(&peers, &[], SyncCause::Poll).await;
    assert!(
        again.peers.iter().all(|p| p.state == PeerState::Connected),
        "{again:?}"
    );
    assert!(connector.is_connected());
}

#[tokio::test]
async fn connector_prunes_left_peers_only_with_prune() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("prune");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    ns.enter();
    let probe = probe(&a.name, "probe", &cookie).await;

    let both = set(&[&a.name, &b.name]);
    let only_a = set(&[&a.name]);
    let left = vec![b.name.clone()];

    let mut keep = Connector::new(
        a.name.clone(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    );
    let report = keep.sync(&both, &[], SyncCause::Poll).await;
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
    let report = keep.sync(&only_a, &left, SyncCause::Poll).await;
    assert!(report.disconnected.is_empty(), "{report:?}");
    assert!(
        nodes_of(&probe).await.contains(&b.name),
        "without prune b must stay"
    );
    drop(keep);

    let mut prune = Connector::new(
        a.name.clone(),
        format!("beamup-p-{}@127.0.0.1", std::process::id()),
        secret(&cookie),
        true,
    );
    let report = prune.sync(&only_a, &left, SyncCause::Poll).await;
    assert_eq!(report.local, LocalState::Connected, "{report:?}");
    assert_eq!(report.disconnected, left);
    eventually("a drops b", || async {
        !nodes_of(&probe).await.contains(&b.name)
    })
    .await;
    // Pruning a peer that is already gone is a no-op.
    let report = prune.sync(&only_a, &left, SyncCause::Poll).await;
    assert!(report.disconnected.is_empty(), "{report:?}");
}

#[tokio::test]
async fn connector_waits_while_the_vm_boots_then_connects() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("boot");
    ns.enter();
    let mut connector = Connector::new(
        "a@127.0.0.1".into(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    );
    let peers = set(&["a@127.0.0.1", "b@127.0.0.1"]);

    let report = connector.sync(&peers, &[], SyncCause::Poll).await;
    assert!(matches!(report.local, LocalState::Waiting(_)), "{report:?}");
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Unknown),
        "{report:?}"
    );

    // Start a (not waiting for it) and b; keep syncing like the reporter does.
    let _a = ns.start("a@127.0.0.1", &cookie, &[]);
    let _b = ns.node("b@127.0.0.1", &cookie, &[]);
    let start = Instant::now();
    let report = loop {
        let report = connector.sync(&peers, &[], SyncCause::Poll).await;
        if report.local == LocalState::Connected || start.elapsed() > WAIT {
            break report;
        }
        match &report.local {
            LocalState::Waiting(_) => {}
            other => panic!("while booting the state must be Waiting, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.local, LocalState::Connected, "{report:?}");
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
}

/// Registers `name` with the namespace's epmd (ALIVE2_REQ by hand) for a
/// listener that never answers: a node that hangs in connection setup.
/// Returns the sockets that keep the registration and the listener alive.
fn register_silent_node(name: &str) -> (std::net::TcpStream, std::net::TcpListener) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind silent listener");
    let port = listener.local_addr().expect("addr").port();
    let mut body = vec![b'x'];
    body.extend_from_slice(&port.to_be_bytes());
    body.extend_from_slice(&[77, 0]); // normal node, TCP/IPv4
    body.extend_from_slice(&6u16.to_be_bytes()); // highest version
    body.extend_from_slice(&6u16.to_be_bytes()); // lowest version
    body.extend_from_slice(&(name.len() as u16).to_be_bytes());
    body.extend_from_slice(name.as_bytes());
    body.extend_from_slice(&0u16.to_be_bytes()); // no extra
    let mut epmd = std::net::TcpStream::connect("127.0.0.1:4369").expect("connect epmd");
    epmd.write_all(&(body.len() as u16).to_be_bytes())
        .and_then(|_| epmd.write_all(&body))
        .expect("send ALIVE2_REQ");
    let mut head = [0u8; 2];
    epmd.read_exact(&mut head).expect("ALIVE2 response");
    assert!(
        matches!(head, [b'v' | b'y', 0]),
        "epmd refused to register {name}: {head:?}"
    );
    (epmd, listener)
}

#[tokio::test]
async fn connector_reports_a_peer_stuck_in_setup_as_connecting_without_holding_up_others() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("slow");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    ns.enter();
    let _silent = register_silent_node("slow");
    let options = SessionOptions {
        // Far below net_setuptime (7 s), which bounds the stuck connect on the node.
        call_timeout: Duration::from_secs(2),
        ..SessionOptions::default()
    };
    let mut connector = Connector::new(
        a.name.clone(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    )
    .with_options(options);

    let report = connector
        .sync(
            &set(&[&a.name, &b.name, "slow@127.0.0.1"]),
            &[],
            SyncCause::Poll,
        )
        .await;
    assert_eq!(report.local, LocalState::Connected, "{report:?}");
    let state_of = |node: &str| {
        report
            .peers
            .iter()
            .find(|p| p.node == node)
            .map(|p| p.state.clone())
    };
    assert_eq!(state_of(&b.name), Some(PeerState::Connected), "{report:?}");
    assert_eq!(
        state_of("slow@127.0.0.1"),
        Some(PeerState::Connecting),
        "{report:?}"
    );
    assert!(
        connector.is_connected(),
        "a slow peer must not cost the session"
    );
}

#[tokio::test]
async fn connector_reports_a_rejected_cookie() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("ccookie");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let wrong = format!("wrong-{}", random_token());
    let mut connector =
        Connector::new(a.name.clone(), own_name("127.0.0.1"), secret(&wrong), false);
    let report = connector.sync(&set(&[&a.name]), &[], SyncCause::Poll).await;
    assert_eq!(report.local, LocalState::CookieRejected, "{report:?}");
    let json = format!("{report:?}");
    assert!(
        !json.contains(&wrong) && !json.contains(&cookie),
        "cookie leaked: {json}"
    );
    // Within the backoff the state is repeated without a new attempt.
    let again = connector.sync(&set(&[&a.name]), &[], SyncCause::Poll).await;
    assert_eq!(again.local, LocalState::CookieRejected);
}

#[tokio::test]
async fn connector_reconnects_after_the_local_node_restarts() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("restart");
    let mut a = ns.node("a@127.0.0.1", &cookie, &[]);
    ns.enter();
    let mut connector = Connector::new(
        a.name.clone(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    );
    let peers = set(&[&a.name]);
    assert_eq!(
        connector.sync(&peers, &[], SyncCause::Poll).await.local,
        LocalState::Connected
    );

    a.kill();
    let _a2 = ns.node("a@127.0.0.1", &cookie, &[]);
    let start = Instant::now();
    let report = loop {
        let report = connector.sync(&peers, &[], SyncCause::Poll).await;
        if report.local == LocalState::Connected || start.elapsed() > WAIT {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report.local, LocalState::Connected, "{report:?}");
    assert!(connector.is_connected());
}

// ---------------------------------------------------------------- relay

/// How many processes of the node carry `beamup_relay` in their dictionary.
async fn relays_in(session: &Session) -> usize {
    let Term::List(pids) = session
        .call("erlang", "processes", vec![])
        .await
        .expect("erlang:processes()")
    else {
        panic!("erlang:processes() returned no list");
    };
    let mut relays = 0;
    for pid in pids.elements {
        let info = session
            .call(
                "erlang",
                "process_info",
                vec![pid, Term::from(Atom::from("dictionary"))],
            )
            .await
            .expect("erlang:process_info/2");
        // {dictionary, [{Key, Value}, ...]}, or undefined for a process gone meanwhile.
        if let Term::Tuple(t) = info
            && let Some(Term::List(dictionary)) = t.elements.get(1)
            && dictionary.elements.iter().any(|entry| {
                matches!(entry, Term::Tuple(kv)
                    if matches!(kv.elements.first(), Some(Term::Atom(a)) if a.name == "beamup_relay"))
            })
        {
            relays += 1;
        }
    }
    relays
}

/// The number of processes net_kernel monitors (monitor_nodes subscribers among them).
async fn net_kernel_monitors(session: &Session) -> usize {
    let net_kernel = session
        .call(
            "erlang",
            "whereis",
            vec![Term::from(Atom::from("net_kernel"))],
        )
        .await
        .expect("whereis(net_kernel)");
    match session
        .call(
            "erlang",
            "process_info",
            vec![net_kernel, Term::from(Atom::from("monitors"))],
        )
        .await
        .expect("process_info(net_kernel, monitors)")
    {
        Term::Tuple(t) => match t.elements.get(1) {
            Some(Term::List(l)) => l.elements.len(),
            other => panic!("monitors: {other:?}"),
        },
        other => panic!("process_info(net_kernel, monitors) returned {other}"),
    }
}

/// Issue 11: the relay the connector starts in the local node reports a
/// dropped connection as it happens (no poll involved), one event sync heals
/// it, and once the connector is gone nothing of it is left in the node.
#[tokio::test]
async fn the_relay_reports_a_drop_at_once_and_leaves_with_the_connector() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("relay");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    ns.enter();
    let probe = probe(&a.name, "probe", &cookie).await;
    let monitors_before = net_kernel_monitors(&probe).await;
    assert_eq!(relays_in(&probe).await, 0);

    let mut connector = Connector::new(
        a.name.clone(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    );
    let peers = set(&[&a.name, &b.name]);
    let report = connector.sync(&peers, &[], SyncCause::Poll).await;
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
    assert_eq!(relays_in(&probe).await, 1, "one relay per connector");
    let ready = tokio::time::timeout(WAIT, connector.events())
        .await
        .expect("the relay says it is ready")
        .expect("the session is open");
    assert!(ready.contains(&NodeEvent::Ready), "{ready:?}");

    // A forced disconnect reaches the connector as an event, and one sync heals it.
    let dropped = Instant::now();
    assert_eq!(probe.disconnect_node(&b.name).await, Ok(true));
    let events = tokio::time::timeout(WAIT, connector.events())
        .await
        .expect("the relay reports the drop")
        .expect("the session is open");
    let heard = dropped.elapsed();
    assert!(
        events.contains(&NodeEvent::Down(b.name.clone())),
        "{events:?}"
    );
    connector.observe(events);
    let report = connector.sync(&peers, &[], SyncCause::Event).await;
    let healed = dropped.elapsed();
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
    assert!(nodes_of(&probe).await.contains(&b.name));
    println!(
        "MEASURE relay: nodedown at the connector {:.1} ms after disconnect_node, healed after {:.1} ms",
        heard.as_secs_f64() * 1e3,
        healed.as_secs_f64() * 1e3
    );

    // Gone with the connection: the relay and its monitor_nodes subscription.
    drop(connector);
    eventually(
        "the relay to exit with the connector's connection",
        || async { relays_in(&probe).await == 0 },
    )
    .await;
    eventually("net_kernel to monitor what it did before", || async {
        net_kernel_monitors(&probe).await == monitors_before
    })
    .await;
}

/// Issue 11: a dial that hangs (a peer whose host swallows the connection,
/// here a registered name whose port never answers) does not hold up the
/// re-dial of a peer that drops meanwhile: the sync stops waiting at the
/// drop, and the next events are there at once.
#[tokio::test]
async fn a_hanging_dial_does_not_hold_up_a_drop() {
    let _heavy = testkit::heavy::shared();
    let cookie = random_token();
    let mut ns = Netns::new("hang");
    let a = ns.node("a@127.0.0.1", &cookie, &[]);
    let b = ns.node("b@127.0.0.1", &cookie, &[]);
    ns.enter();
    let _silent = register_silent_node("slow");
    let probe = probe(&a.name, "probe", &cookie).await;
    let mut connector = Connector::new(
        a.name.clone(),
        own_name("127.0.0.1"),
        secret(&cookie),
        false,
    )
    .with_connect_wait(Duration::from_secs(4));
    let meshed = set(&[&a.name, &b.name]);
    let report = connector.sync(&meshed, &[], SyncCause::Poll).await;
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
    // Let a-b outlive the quick-drop window, so its drop is re-dialed at once.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let with_slow = set(&[&a.name, &b.name, "slow@127.0.0.1"]);
    let started = Instant::now();
    let (report, dropped_at) =
        tokio::join!(connector.sync(&with_slow, &[], SyncCause::Poll), async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(probe.disconnect_node(&b.name).await, Ok(true));
            started.elapsed()
        });
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the sync waited {took:?} for the hanging dial (wait 4 s) although b dropped at {dropped_at:?}"
    );
    let slow = report.peers.iter().find(|p| p.node == "slow@127.0.0.1");
    assert_eq!(
        slow.map(|p| &p.state),
        Some(&PeerState::Connecting),
        "{report:?}"
    );
    let events = tokio::time::timeout(Duration::from_millis(100), connector.events())
        .await
        .expect("the drop is held for the next events call")
        .expect("the session is open");
    assert!(
        events.contains(&NodeEvent::Down(b.name.clone())),
        "{events:?}"
    );
    connector.observe(events);
    let report = connector.sync(&meshed, &[], SyncCause::Event).await;
    assert!(
        report.peers.iter().all(|p| p.state == PeerState::Connected),
        "{report:?}"
    );
    println!(
        "MEASURE hanging dial: the sync returned {:.0} ms after the drop at {:.0} ms",
        (took - dropped_at).as_secs_f64() * 1e3,
        dropped_at.as_secs_f64() * 1e3
    );
}
