//! Discovery against a real DNS server: dnsmasq on a loopback address of its
//! own, started by each test and killed at its end.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use beamup::discovery::{Capped, Discovery, PollError, RecordKind, Settings};

/// A directory removed on drop (also when the test panics).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("beamup-disco-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// dnsmasq serving `*.test` from a hosts file (re-read on SIGHUP) and the
/// given extra options, answering NXDOMAIN for unknown `.test` names.
struct Dnsmasq {
    child: Option<Child>,
    addr: SocketAddr,
    hosts: PathBuf,
    log: PathBuf,
    _dir: TempDir,
}

impl Dnsmasq {
    /// `port` None: a free port on `ip`.
    fn start(tag: &str, ip: &str, port: Option<u16>, hosts: &str, extra: &[String]) -> Dnsmasq {
        let which = Command::new("sh")
            .args(["-c", "command -v dnsmasq"])
            .output()
            .expect("run sh");
        assert!(
            which.status.success(),
            "dnsmasq is not installed: apt-get install dnsmasq-base"
        );
        let dir = TempDir::new(tag);
        let ip: IpAddr = ip.parse().expect("loopback ip");
        let port = port.unwrap_or_else(|| free_port(ip));
        let hosts_path = dir.0.join("hosts");
        std::fs::write(&hosts_path, hosts).expect("write hosts");
        let log = dir.0.join("dnsmasq.log");
        let log_file = std::fs::File::create(&log).expect("create log");
        let child = Command::new("dnsmasq")
            .args([
                "--no-daemon",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--log-queries",
                "--pid-file=",
                "--local=/test/",
                "--user=root",
            ])
            .arg(format!("--listen-address={ip}"))
            .arg(format!("--port={port}"))
            .arg(format!("--addn-hosts={}", hosts_path.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("spawn dnsmasq");
        let mut dns = Dnsmasq {
            child: Some(child),
            addr: SocketAddr::new(ip, port),
            hosts: hosts_path,
            log,
            _dir: dir,
        };
        dns.wait_ready();
        dns
    }

    /// dnsmasq answers TCP as soon as it answers UDP.
    fn wait_ready(&mut self) {
        for _ in 0..200 {
            if TcpStream::connect(self.addr).is_ok() {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("dnsmasq exited with {status}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "dnsmasq not answering on {}: {}",
            self.addr,
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        text
    }

    /// Replaces the hosts file and waits until dnsmasq has re-read it.
    fn set_hosts(&self, hosts: &str) {
        assert!(
            self.rewrite_hosts(hosts),
            "dnsmasq did not re-read its hosts file: {}",
            self.log_text()
        );
    }

    /// Replaces the hosts file, sends SIGHUP, and tells whether dnsmasq said
    /// it re-read the file within 10 s. dnsmasq 2.90 puts the re-read off
    /// while a client holds a TCP connection to it open (checked here): a
    /// client that keeps its connection never gets the new records.
    fn rewrite_hosts(&self, hosts: &str) -> bool {
        let reads = |text: &str| {
            text.matches(&format!("read {}", self.hosts.display()))
                .count()
        };
        let before = reads(&self.log_text());
        std::fs::write(&self.hosts, hosts).expect("rewrite hosts");
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP");
        assert!(status.success());
        for _ in 0..200 {
            if reads(&self.log_text()) > before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port(ip: IpAddr) -> u16 {
    let listener = TcpListener::bind((ip, 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn settings(query: &str, record: RecordKind, server: SocketAddr, own: &str) -> Settings {
    let own_address: IpAddr = own.parse().expect("own address");
    Settings {
        query: Some(query.to_string()),
        record,
        dns_server: Some(server),
        timeout: Duration::from_secs(1),
        attempts: 2,
        max_srv_targets: beamup::discovery::DEFAULT_MAX_SRV_TARGETS,
        max_peers: beamup::discovery::DEFAULT_MAX_PEERS,
        static_peers: Vec::new(),
        basename: "demo".into(),
        own_node: beamup::naming::node_name("demo", own_address),
        own_address,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn poll(discovery: &Discovery) -> Result<BTreeSet<String>, PollError> {
    let settings = discovery.settings();
    // A liveness guard only: the poll bounds itself to timeout × attempts.
    let guard = settings.timeout * settings.attempts as u32 + Duration::from_secs(10);
    runtime()
        .block_on(async { tokio::time::timeout(guard, discovery.poll()).await })
        .expect("poll did not end within its own deadline")
}

fn nodes(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|n| n.to_string()).collect()
}

const HOSTS: &str = "\
10.9.0.1 web.test
10.9.0.2 web.test
10.9.0.3 web.test
fd00::1 web.test
fd00::2 web.test
fd00::3 web.test
10.9.0.11 n1.test
10.9.0.12 n2.test
fd00::11 n1.test
10.9.0.21 only4.test
";

#[test]
fn record_kinds() {
    let dns = Dnsmasq::start(
        "kinds",
        "127.0.0.51",
        None,
        HOSTS,
        &[
            "--srv-host=_epmd._tcp.svc.test,n1.test,4369".into(),
            "--srv-host=_epmd._tcp.svc.test,n2.test,4369".into(),
            // A target with no address (gone): not a peer, not an error.
            "--srv-host=_epmd._tcp.svc.test,gone.test,4369".into(),
        ],
    );
    // (query, record kind, own address, expected peers)
    let table: [(&str, RecordKind, &str, &[&str]); 7] = [
        (
            "web.test",
            RecordKind::A,
            "10.9.0.1",
            &["demo@10.9.0.2", "demo@10.9.0.3"],
        ),
        (
            "web.test",
            RecordKind::Aaaa,
            "fd00::2",
            &["demo@fd00::1", "demo@fd00::3"],
        ),
        (
            "web.test",
            RecordKind::AAndAaaa,
            "10.9.0.3",
            &[
                "demo@10.9.0.1",
                "demo@10.9.0.2",
                "demo@fd00::1",
                "demo@fd00::2",
                "demo@fd00::3",
            ],
        ),
        // The own address written another way is still excluded.
        (
            "web.test",
            RecordKind::Aaaa,
            "fd00:0:0:0:0:0:0:3",
            &["demo@fd00::1", "demo@fd00::2"],
        ),
        // SRV targets resolved in the own address' family.
        (
            "_epmd._tcp.svc.test",
            RecordKind::Srv,
            "10.9.0.99",
            &["demo@10.9.0.11", "demo@10.9.0.12"],
        ),
        (
            "_epmd._tcp.svc.test",
            RecordKind::Srv,
            "fd00::99",
            &["demo@fd00::11"],
        ),
        // The name exists but has no AAAA: an empty, successful answer.
        ("only4.test", RecordKind::Aaaa, "fd00::99", &[]),
    ];
    for (query, kind, own, want) in table {
        let discovery = Discovery::new(settings(query, kind, dns.addr, own)).expect("discovery");
        let got = poll(&discovery).unwrap_or_else(|e| panic!("{query} {kind:?}: {e}"));
        assert_eq!(got, nodes(want), "{query} {kind:?} own {own}");
    }
}

#[test]
fn static_peers_merged() {
    let dns = Dnsmasq::start("static", "127.0.0.52", None, HOSTS, &[]);
    let mut s = settings("web.test", RecordKind::A, dns.addr, "10.9.0.1");
    s.static_peers = vec![
        "other@10.8.0.1".into(),
        "demo@10.9.0.2".into(),
        "demo@10.9.0.1".into(),
    ];
    let discovery = Discovery::new(s).expect("discovery");
    assert_eq!(
        poll(&discovery).expect("poll"),
        nodes(&["demo@10.9.0.2", "demo@10.9.0.3", "other@10.8.0.1"])
    );
}

#[test]
fn nxdomain_is_classified() {
    let dns = Dnsmasq::start("nx", "127.0.0.53", None, HOSTS, &[]);
    for kind in [
        RecordKind::A,
        RecordKind::Aaaa,
        RecordKind::AAndAaaa,
        RecordKind::Srv,
    ] {
        let discovery =
            Discovery::new(settings("nope.test", kind, dns.addr, "10.9.0.1")).expect("discovery");
        let err = poll(&discovery).expect_err("nope.test must not resolve");
        assert_eq!(
            err,
            PollError::NxDomain {
                query: "nope.test".into()
            },
            "{kind:?}"
        );
        assert!(err.to_string().contains("check --query"), "{err}");
    }
}

#[test]
fn stopped_server_fails_within_its_deadline() {
    let mut dns = Dnsmasq::start("stopped", "127.0.0.54", None, HOSTS, &[]);
    let discovery =
        Discovery::new(settings("web.test", RecordKind::A, dns.addr, "10.9.0.1")).expect("new");
    assert_eq!(poll(&discovery).expect("poll while up").len(), 2);
    dns.stop();
    match poll(&discovery) {
        Err(PollError::Failed { query, reason }) => {
            assert_eq!(query, "web.test");
            assert!(
                reason.contains(&dns.addr.to_string()),
                "the reason names the server: {reason}"
            );
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}

#[test]
fn five_hundred_records_come_over_tcp() {
    // 500 A records are ~8 KB: far over any UDP answer size, so dnsmasq sets
    // TC and the resolver has to ask again over TCP.
    let hosts: String = (0..500)
        .map(|i| format!("10.77.{}.{} big.test\n", i / 250, i % 250 + 1))
        .collect();
    let dns = Dnsmasq::start("big", "127.0.0.55", None, &hosts, &[]);
    let discovery =
        Discovery::new(settings("big.test", RecordKind::A, dns.addr, "10.9.0.1")).expect("new");
    let peers = poll(&discovery).expect("poll");
    assert_eq!(peers.len(), 500);
    assert!(peers.contains("demo@10.77.0.1") && peers.contains("demo@10.77.1.250"));
}

#[test]
fn changed_record_seen_on_next_poll() {
    // Answers carry a 5-minute TTL (and a negative one): a caching resolver
    // would keep the old set.
    let dns = Dnsmasq::start(
        "change",
        "127.0.0.56",
        None,
        HOSTS,
        &["--local-ttl=300".into(), "--neg-ttl=300".into()],
    );
    let discovery =
        Discovery::new(settings("web.test", RecordKind::A, dns.addr, "10.9.0.1")).expect("new");
    assert_eq!(
        poll(&discovery).expect("first poll"),
        nodes(&["demo@10.9.0.2", "demo@10.9.0.3"])
    );
    dns.set_hosts("10.9.0.1 web.test\n10.9.0.4 web.test\n");
    assert_eq!(
        poll(&discovery).expect("second poll"),
        nodes(&["demo@10.9.0.4"])
    );
    // Also from "exists" to NXDOMAIN and back: negative answers are not
    // cached either.
    dns.set_hosts("10.9.0.1 other.test\n");
    assert!(matches!(poll(&discovery), Err(PollError::NxDomain { .. })));
    dns.set_hosts("10.9.0.5 web.test\n");
    assert_eq!(poll(&discovery).expect("poll"), nodes(&["demo@10.9.0.5"]));
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

#[test]
fn short_name_through_search_domain_of_resolv_conf() {
    // The system path: resolv.conf names the server (port 53, so dnsmasq gets
    // a loopback address of its own) and the search domains, as Kubernetes
    // writes it (ndots:5).
    let dns = Dnsmasq::start("search", "127.0.0.57", Some(53), HOSTS, &[]);
    let dir = TempDir::new("search-conf");
    let conf = dir.0.join("resolv.conf");
    write(
        &conf,
        "nameserver 127.0.0.57\nsearch ns1.svc.test svc.test test\noptions ndots:5\n",
    );
    let mut s = settings("web", RecordKind::A, dns.addr, "10.9.0.1");
    s.dns_server = None;
    let discovery = Discovery::with_resolv_conf(s, &conf).expect("discovery");
    assert!(
        discovery
            .servers()
            .is_some_and(|s| s.starts_with("127.0.0.57:53")),
        "{:?}",
        discovery.servers()
    );
    assert_eq!(
        poll(&discovery).expect("short name"),
        nodes(&["demo@10.9.0.2", "demo@10.9.0.3"])
    );

    // --dns-server keeps the search domains of resolv.conf.
    let dns2 = Dnsmasq::start("search2", "127.0.0.58", None, HOSTS, &[]);
    let s = settings("web", RecordKind::A, dns2.addr, "10.9.0.1");
    let discovery = Discovery::with_resolv_conf(s, &conf).expect("discovery");
    assert_eq!(
        poll(&discovery).expect("short name via --dns-server"),
        nodes(&["demo@10.9.0.2", "demo@10.9.0.3"])
    );
}

#[test]
fn missing_resolv_conf_falls_back_and_says_so() {
    let dir = TempDir::new("noconf");
    let empty = dir.0.join("resolv.conf");
    write(&empty, "search svc.test\n");
    for conf in [dir.0.join("missing"), empty] {
        let mut s = settings(
            "web.test",
            RecordKind::A,
            "127.0.0.1:53".parse().expect("a"),
            "10.9.0.1",
        );
        s.dns_server = None;
        let discovery = Discovery::with_resolv_conf(s, &conf).expect("discovery");
        assert_eq!(
            discovery.servers(),
            Some("127.0.0.11:53, 127.0.0.1:53 (from fallback)"),
            "{conf:?}"
        );
    }
}

#[test]
fn unreachable_answers_are_not_peers() {
    // A poisoned or misconfigured record set: only the routable unicast
    // addresses are peers, and an IPv4-mapped IPv6 address is the IPv4 node.
    let hosts = "\
10.9.0.40 mixed.test
127.0.0.1 mixed.test
0.0.0.0 mixed.test
224.0.0.1 mixed.test
169.254.1.1 mixed.test
255.255.255.255 mixed.test
fd00::40 mixed.test
::1 mixed.test
fe80::1 mixed.test
ff02::1 mixed.test
::ffff:10.9.0.41 mixed.test
::ffff:127.0.0.1 mixed.test
";
    let dns = Dnsmasq::start("mixed", "127.0.0.59", None, hosts, &[]);
    let discovery = Discovery::new(settings(
        "mixed.test",
        RecordKind::AAndAaaa,
        dns.addr,
        "10.9.0.1",
    ))
    .expect("discovery");
    assert_eq!(
        poll(&discovery).expect("poll"),
        nodes(&["demo@10.9.0.40", "demo@10.9.0.41", "demo@fd00::40"])
    );
}

/// `count` A records of `name`, from 10.`second`.0.1 on (none of them loopback).
fn many_hosts(name: &str, second: u8, count: usize) -> String {
    (0..count)
        .map(|i| format!("10.{second}.{}.{} {name}\n", i / 250, i % 250 + 1))
        .collect()
}

/// `beamup peers` against `dns` (own address 10.9.0.1 from the environment,
/// so no namespace is needed).
fn peers_command(dns: &Dnsmasq, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beamup"));
    cmd.args([
        "peers",
        "--ip",
        "env:BEAMUP_TEST_OWN_IP",
        "--basename",
        "demo",
    ])
    .arg("--dns-server")
    .arg(dns.addr.to_string())
    .args(args)
    .env("BEAMUP_TEST_OWN_IP", "10.9.0.1")
    .env_remove("BEAMUP_LOG");
    run_bounded(cmd, Duration::from_secs(60))
}

/// Runs `cmd` to its end, killing it after `limit` (a hung poll fails the test
/// instead of hanging it).
fn run_bounded(mut cmd: Command, limit: Duration) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn beamup");
    let start = std::time::Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("beamup output")
}

#[test]
fn tcp_sized_answer_changed_between_polls_is_seen() {
    // 150 A records do not fit a UDP answer: each poll goes over TCP, and
    // dnsmasq answers a TCP connection from a child forked when it opened,
    // holding the records of that moment. A resolver that kept its
    // connection across polls would print the first set forever (issue 16).
    let dns = Dnsmasq::start(
        "tcpchange",
        "127.0.0.60",
        None,
        &many_hosts("big.test", 77, 150),
        &[],
    );
    let discovery =
        Discovery::new(settings("big.test", RecordKind::A, dns.addr, "10.9.0.1")).expect("new");
    // One runtime for every poll, as the reporter and `peers --watch` have:
    // a connection the resolver keeps lives as long as the runtime.
    let runtime = runtime();
    // Each poll is followed by a short interval on the same runtime, during
    // which its tasks (a connection's, if kept) go on running.
    let poll = |round: &str| {
        runtime.block_on(async {
            let peers = tokio::time::timeout(Duration::from_secs(20), discovery.poll())
                .await
                .unwrap_or_else(|_| panic!("poll {round} did not end"))
                .unwrap_or_else(|e| panic!("poll {round}: {e}"));
            tokio::time::sleep(Duration::from_millis(200)).await;
            peers
        })
    };
    let first = poll("first");
    assert_eq!(first.len(), 150);
    assert!(first.contains("demo@10.77.0.1"), "{first:?}");
    for (round, second) in [78u8, 79, 77].into_iter().enumerate() {
        let reread = dns.rewrite_hosts(&many_hosts("big.test", second, 150));
        let peers = poll(&round.to_string());
        assert!(
            reread,
            "dnsmasq put its re-read off: a TCP connection stayed open"
        );
        assert_eq!(peers.len(), 150, "poll {round}");
        assert!(
            peers
                .iter()
                .all(|p| p.starts_with(&format!("demo@10.{second}."))),
            "poll {round} still shows an old answer: {:?}",
            peers.iter().take(3).collect::<Vec<_>>()
        );
    }
}

#[test]
fn peers_watch_sees_a_changed_tcp_answer() {
    // The reproduction: `beamup peers --watch --interval 1s` while the
    // server's 150-record answer is rotated.
    let dns = Dnsmasq::start(
        "watchtcp",
        "127.0.0.61",
        None,
        &many_hosts("big.test", 77, 150),
        &[],
    );
    let dir = TempDir::new("watchtcp-out");
    let out_path = dir.0.join("stdout");
    let mut child = Command::new(env!("CARGO_BIN_EXE_beamup"))
        .args(["peers", "--watch", "--interval", "1s", "--leave-after", "1"])
        .args(["--ip", "env:BEAMUP_TEST_OWN_IP", "--basename", "demo"])
        .args(["--query", "big.test", "--dns-server"])
        .arg(dns.addr.to_string())
        .env("BEAMUP_TEST_OWN_IP", "10.9.0.1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn beamup peers --watch");
    let read = || std::fs::read_to_string(&out_path).unwrap_or_default();
    let wait_for = |needle: &str| {
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if read().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    };
    let first = wait_for("+demo@10.77.0.150\n");
    let reread = dns.rewrite_hosts(&many_hosts("big.test", 78, 150));
    let joined = first && wait_for("+demo@10.78.0.150\n");
    let left = joined && wait_for("-demo@10.77.0.150\n");
    let _ = child.kill();
    let _ = child.wait();
    let text = read();
    assert!(first, "the first answer was never printed:\n{text}");
    assert!(
        joined && left,
        "the rotated answer was never seen (dnsmasq re-read its file: {reread}; {} lines):\n{}",
        text.lines().count(),
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn over_cap_answers_fail_the_poll_with_the_cap_in_the_message() {
    // 1,100 A records (over the default 1,024), 300 SRV targets (over the
    // default 256) and 30 SRV targets of 40 addresses each (1,200 addresses
    // in all): each is a failed poll, exit 5, and the message names the
    // count, the cap and the flag that raises it.
    let mut hosts = many_hosts("big.test", 77, 1100);
    for target in 0..30 {
        for i in 0..40 {
            hosts.push_str(&format!("10.80.{target}.{} t{target}.wide.test\n", i + 1));
        }
    }
    for target in 0..300 {
        hosts.push_str(&format!(
            "10.81.{}.{} t{target}.many.test\n",
            target / 250,
            target % 250 + 1
        ));
    }
    let mut extra: Vec<String> = (0..300)
        .map(|t| format!("--srv-host=_epmd._tcp.many.test,t{t}.many.test,4369"))
        .collect();
    extra.extend((0..30).map(|t| format!("--srv-host=_epmd._tcp.wide.test,t{t}.wide.test,4369")));
    let dns = Dnsmasq::start("overcap", "127.0.0.62", None, &hosts, &extra);

    // (arguments, what the message must name)
    let table: [(&[&str], &[&str]); 3] = [
        (&["--query", "big.test"], &["1100", "1024", "--max-peers"]),
        (
            &["--record", "srv", "--query", "_epmd._tcp.many.test"],
            &["300 SRV targets", "256", "--max-srv-targets"],
        ),
        (
            &["--record", "srv", "--query", "_epmd._tcp.wide.test"],
            &["1024", "--max-peers"],
        ),
    ];
    for (args, needles) in table {
        let out = peers_command(&dns, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(5), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} printed peers");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{args:?}: no `{needle}` in {stderr}"
            );
        }
    }

    // Raised caps let the same answers through.
    let table: [(&[&str], usize); 3] = [
        (&["--query", "big.test", "--max-peers", "1100"], 1100),
        (
            &[
                "--record",
                "srv",
                "--query",
                "_epmd._tcp.many.test",
                "--max-srv-targets",
                "300",
            ],
            300,
        ),
        (
            &[
                "--record",
                "srv",
                "--query",
                "_epmd._tcp.wide.test",
                "--max-peers",
                "1200",
            ],
            1200,
        ),
    ];
    for (args, want) in table {
        let out = peers_command(&dns, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).lines().count(),
            want,
            "{args:?}"
        );
    }
    // An answer exactly at the cap is a good one.
    let out = peers_command(&dns, &["--query", "big.test", "--max-peers", "1101"]);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn caps_are_typed_failures_of_the_poll() {
    let dns = Dnsmasq::start(
        "caps",
        "127.0.0.63",
        None,
        HOSTS,
        &[
            "--srv-host=_epmd._tcp.svc.test,n1.test,4369".into(),
            "--srv-host=_epmd._tcp.svc.test,n2.test,4369".into(),
            "--srv-host=_epmd._tcp.svc.test,n2.test,4370".into(),
            "--srv-host=_epmd._tcp.svc.test,gone.test,4369".into(),
        ],
    );
    let with_caps = |query: &str, kind, srv_targets, peers| {
        let mut s = settings(query, kind, dns.addr, "10.9.0.1");
        s.max_srv_targets = srv_targets;
        s.max_peers = peers;
        poll(&Discovery::new(s).expect("discovery"))
    };
    let too_large = |query: &str, what, count, cap| {
        Err(PollError::TooLarge {
            query: query.into(),
            what,
            count,
            cap,
        })
    };
    // 3 A and 3 AAAA records: each family fits 3, both together do not.
    assert_eq!(
        with_caps("web.test", RecordKind::A, 256, 3).map(|p| p.len()),
        Ok(2)
    );
    assert_eq!(
        with_caps("web.test", RecordKind::A, 256, 2),
        too_large("web.test", Capped::Addresses, 3, 2)
    );
    assert_eq!(
        with_caps("web.test", RecordKind::AAndAaaa, 256, 5),
        too_large("web.test", Capped::Addresses, 6, 5)
    );
    // SRV: three distinct targets (n2 twice, on two ports), then their
    // addresses (n1 and n2 have one each, gone.test none).
    let srv = "_epmd._tcp.svc.test";
    assert_eq!(
        with_caps(srv, RecordKind::Srv, 3, 2).map(|p| p.len()),
        Ok(2)
    );
    assert_eq!(
        with_caps(srv, RecordKind::Srv, 2, 1024),
        too_large(srv, Capped::SrvTargets, 3, 2)
    );
    let err = with_caps(srv, RecordKind::Srv, 3, 1).expect_err("over --max-peers");
    assert!(
        matches!(
            err,
            PollError::TooLarge {
                what: Capped::Addresses,
                count: 2,
                cap: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    for needle in [srv, "at least 2 addresses", "1", "--max-peers"] {
        assert!(text.contains(needle), "no `{needle}` in {text}");
    }
}
