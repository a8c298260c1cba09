//! `beamup doctor` (issue 12) against real clusters: network-namespace hosts booting
//! the demo mix release through beamup, dnsmasq answering the discovery queries. Each
//! fault is set up for real (another cookie, a host with no VM, a node whose
//! distribution port listens on loopback only, a cut cable, another name part, an IPv6
//! node among IPv4 ones, queries that miss) and the test asserts doctor's ✗ line for
//! it, its hint, the verdict and the exit code; a healthy cluster exits 0.
//!
//! The tests run one at a time ([`serial`]) and share one cluster between the faults
//! it can show at once: the machine has two cores and each VM takes ~100 MiB.

use std::net::IpAddr;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use testkit::boot::ip_source;
use testkit::{
    Cookie, Host, Net, Proc, TempDir, Zone, beamup_command, mix_release, output_timeout, require,
};

/// Bound on waiting for a cluster state: a deadline, not a timing assertion.
const LONG: Duration = Duration::from_secs(90);
const DOMAIN: &str = "svc.test";

/// A network of IPv4-only hosts.
fn ipv4_hosts<const N: usize>(tag: &str, names: [&str; N]) -> (Net, [Host; N]) {
    let mut net = Net::new(tag);
    let hosts = names.map(|name| net.add_host(name, true, false));
    (net, hosts)
}

/// A zone under [`DOMAIN`] where each `(name, hosts)` group resolves to its hosts.
fn zone(groups: &[(&str, &[&Host])]) -> Zone {
    Zone {
        search: vec![DOMAIN.into()],
        a: groups
            .iter()
            .flat_map(|(g, hs)| hs.iter().map(move |h| (format!("{g}.{DOMAIN}"), h.addr())))
            .collect(),
        srv: Vec::new(),
    }
}

/// Boots the demo release through beamup on `host`, with `extra` flags after the
/// common ones (`--ip`, `--cookie-file`, `--interval 1s`).
fn boot(host: &Host, dir: &Path, cookie: &Cookie, ip: &str, extra: &[&str]) -> Proc {
    let release = mix_release();
    let tmp = dir.join(format!("{}.tmp", host.name));
    std::fs::create_dir_all(&tmp).expect("create the release tmp dir");
    let cookie_path = cookie.path.display().to_string();
    let mut args = vec![
        "--ip",
        ip,
        "--cookie-file",
        &cookie_path,
        "--interval",
        "1s",
    ];
    args.extend_from_slice(extra);
    let mut cmd = beamup_command(host, &release, &args);
    // The release is shared between hosts: each VM gets its own tmp dir.
    cmd.env("RELEASE_TMP", &tmp);
    host.spawn(cmd)
}

/// What one `beamup doctor` run printed.
struct Report {
    code: i32,
    text: String,
    stderr: String,
}

impl Report {
    /// The line of check `name` in the section whose title starts with `section`:
    /// (mark, detail, hint).
    fn line(&self, section: &str, name: &str) -> (char, String, String) {
        let mut inside = false;
        let mut lines = self.text.lines().peekable();
        while let Some(line) = lines.next() {
            if !line.starts_with(' ') {
                inside = line.starts_with(section);
                continue;
            }
            let Some(rest) = line.strip_prefix("  ") else {
                continue;
            };
            let mut chars = rest.chars();
            let mark = chars.next().unwrap_or(' ');
            let body = chars.as_str().trim_start();
            if inside && body.split_whitespace().next() == Some(name) {
                let detail = body[name.len()..].trim().to_string();
                let hint = lines
                    .peek()
                    .and_then(|next| next.trim().strip_prefix("hint: "))
                    .unwrap_or("")
                    .to_string();
                return (mark, detail, hint);
            }
        }
        panic!("no `{name}` line in section `{section}` of:\n{}", self.text);
    }

    /// Asserts check `name` of `section` has `mark`, its detail holding `detail` and
    /// its hint (empty when none) holding `hint`.
    fn assert_line(&self, section: &str, name: &str, mark: char, detail: &str, hint: &str) {
        let (got_mark, got_detail, got_hint) = self.line(section, name);
        let what = format!("`{name}` of `{section}`");
        assert_eq!(got_mark, mark, "{what} is not {mark}:\n{}", self.text);
        assert!(
            got_detail.contains(detail) && got_hint.contains(hint),
            "{what}: {got_detail:?} (hint {got_hint:?}) lacks {detail:?} or {hint:?}:\n{}",
            self.text
        );
    }

    fn assert_failed(&self, section: &str, name: &str, detail: &str, hint: &str) {
        self.assert_line(section, name, '✗', detail, hint);
    }

    fn assert_ok(&self, section: &str, name: &str, detail: &str) {
        self.assert_line(section, name, '✔', detail, "");
    }

    fn verdict(&self) -> &str {
        self.text
            .lines()
            .find_map(|l| l.strip_prefix("verdict: "))
            .unwrap_or_else(|| panic!("no verdict line in:\n{}", self.text))
    }
}

/// `beamup doctor <args> -- bin/demo start` inside `host`.
fn doctor(host: &Host, args: &[&str]) -> Report {
    let mut all = vec!["doctor"];
    all.extend_from_slice(args);
    let cmd = beamup_command(host, &mix_release(), &all);
    let out: Output = output_timeout(cmd, Duration::from_secs(60));
    Report {
        code: out.status.code().unwrap_or(-1),
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs doctor until `ready` holds (the VMs boot and mesh meanwhile); the last run.
fn doctor_until(host: &Host, args: &[&str], what: &str, ready: impl Fn(&Report) -> bool) -> Report {
    let deadline = Instant::now() + LONG;
    loop {
        let report = doctor(host, args);
        if ready(&report) {
            return report;
        }
        if Instant::now() >= deadline {
            panic!(
                "timed out after {LONG:?} waiting for {what}; last doctor run (exit {}):\n{}\n{}",
                report.code, report.text, report.stderr
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Doctor's own view of this node: registered and reached (the VM is up).
fn node_up(r: &Report) -> bool {
    r.text.contains("✔ nodes")
}

fn node(host: &Host) -> String {
    format!("demo@{}", host.addr())
}

fn assert_secret(report: &Report, cookies: &[&Cookie]) {
    for cookie in cookies {
        assert!(
            !report.text.contains(&cookie.value) && !report.stderr.contains(&cookie.value),
            "a cookie appears in doctor's output"
        );
    }
}

/// The `--ip` source for a dual-stack host's IPv6 address (its /64).
fn v6_source(host: &Host) -> String {
    let v6 = host.v6.expect("an IPv6 address");
    let s = v6.segments();
    format!("cidr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
}

/// A healthy pair exits 0 with every check ✔; the same node then asked about a wider
/// query meets a peer with another cookie and a listed host that runs no VM (so no
/// epmd), then queries that miss: one not listing its own address, one that does not
/// exist, one with no address of the asked family.
#[test]
fn healthy_pair_then_cookie_no_epmd_and_missing_queries() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (mut net, hosts) = ipv4_hosts("doca", ["h1", "h2", "h3", "h4"]);
    let [h1, h2, h3, h4] = &hosts;
    net.start_dns(&zone(&[
        ("demo", &[h1, h2]),
        ("mixed", &[h1, h2, h3, h4]),
        ("elsewhere", &[h2, h3]),
    ]));
    let dir = TempDir::new("doca");
    let good = Cookie::new();
    let other = Cookie::new();
    let connect = ["--query", "demo", "--connect"];
    let _vms = [
        boot(h1, dir.path(), &good, &ip_source(h1), &connect),
        boot(h2, dir.path(), &good, &ip_source(h2), &connect),
        boot(h3, dir.path(), &other, &ip_source(h3), &[]),
    ];
    let cookie_file = good.path.display().to_string();
    let ip1 = ip_source(h1);
    let base = ["--ip", ip1.as_str(), "--cookie-file", cookie_file.as_str()];
    let with = |extra: &[&'static str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |args: &[String]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        doctor(h1, &args)
    };

    // --- healthy: exit 0, every line ✔ -------------------------------------------------
    let healthy_args = with(&["--query", "demo"]);
    let healthy_argv: Vec<&str> = healthy_args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let healthy = doctor_until(h1, &healthy_argv, "the pair to mesh", |r| r.code == 0);
    println!(
        "MEASURE healthy pair: doctor exit 0 {:.1} s after the boots started",
        started.elapsed().as_secs_f64()
    );
    assert!(!healthy.text.contains('✗'), "{}", healthy.text);
    let me = node(h1);
    let peer2 = node(h2);
    healthy.assert_ok(
        "this node",
        "address",
        &format!("{} (from {ip1})", h1.addr()),
    );
    healthy.assert_ok(
        "this node",
        "cookie",
        &format!("from --cookie-file {cookie_file}"),
    );
    healthy.assert_ok("this node", "epmd", "`demo` registered at port");
    healthy.assert_ok("this node", "reachable", "with that cookie");
    healthy.assert_ok("this node", "mode", "long names, -proto_dist inet_tcp");
    healthy.assert_ok("this node", "nodes", &peer2);
    healthy.assert_ok(
        "discovery",
        "query",
        &format!("`demo` (--record a), asking {}:53", net.dns_addr()),
    );
    healthy.assert_ok(
        "discovery",
        "answer",
        &format!("{}, {}", h1.addr(), h2.addr()),
    );
    healthy.assert_ok("discovery", "own", "is in the answer");
    let p2 = format!("peer {peer2}");
    healthy.assert_ok(&p2, "epmd", "`demo` registered at port");
    healthy.assert_ok(&p2, "port", "accepts connections");
    healthy.assert_ok(&p2, "handshake", "accepted our name beamup-");
    healthy.assert_ok(&p2, "family", "IPv4");
    healthy.assert_ok(&p2, "connected", &format!("in {me}'s nodes()"));
    assert_eq!(
        healthy.verdict(),
        "1 of 1 peer connected; all checks passed"
    );

    // The same checks as one JSON object.
    let json_args = with(&["--query", "demo", "--json"]);
    let json = run(&json_args);
    assert_eq!(json.code, 0, "{}", json.text);
    let doc: serde_json::Value = serde_json::from_str(&json.text).expect("doctor --json is JSON");
    assert_eq!(doc["healthy"], true);
    assert_eq!(doc["node"], me.as_str());
    assert_eq!(doc["peers"], 1);
    assert_eq!(doc["connected"], 1);
    let names: Vec<Vec<&str>> = doc["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .map(|s| {
            s["checks"]
                .as_array()
                .expect("checks")
                .iter()
                .map(|c| c["name"].as_str().unwrap_or(""))
                .collect()
        })
        .collect();
    assert_eq!(
        names,
        [
            vec![
                "address",
                "node",
                "cookie",
                "epmd",
                "reachable",
                "mode",
                "nodes"
            ],
            vec!["query", "answer", "own"],
            vec!["epmd", "port", "handshake", "family", "connected"],
        ]
    );

    // --- another cookie, and a listed host with no VM ---------------------------------
    let p3 = format!("peer {}", node(h3));
    let mixed_args = with(&["--query", "mixed"]);
    let mixed_argv: Vec<&str> = mixed_args.iter().map(String::as_str).collect();
    let mixed = doctor_until(h1, &mixed_argv, "h3 to register", |r| {
        r.line(&p3, "epmd").0 == '✔'
    });
    assert_eq!(mixed.code, 1, "{}", mixed.text);
    println!("DOCTOR OUTPUT (query mixed):\n{}", mixed.text);
    mixed.assert_failed(
        &p3,
        "handshake",
        "rejected our challenge reply: it uses another cookie than this node",
        "give every node the same cookie",
    );
    let p4 = format!("peer {}", node(h4));
    mixed.assert_failed(
        &p4,
        "epmd",
        "Connection refused",
        "nothing listens on port 4369 there: no VM runs on that host",
    );
    let (mark, _, _) = mixed.line(&p4, "handshake");
    assert_eq!(mark, '–', "{}", mixed.text);
    mixed.assert_ok(&p2, "connected", &me);
    assert_eq!(
        mixed.verdict(),
        format!(
            "1 of 3 peers connected; {}: cookie differs; {}: epmd not running",
            node(h3),
            node(h4)
        )
    );
    assert_secret(&mixed, &[&good, &other]);

    // --- a query that does not list this node ----------------------------------------------
    let elsewhere = run(&with(&["--query", "elsewhere"]));
    assert_eq!(elsewhere.code, 1, "{}", elsewhere.text);
    elsewhere.assert_failed(
        "discovery",
        "own",
        &format!("{} (from {ip1}) is not in the answer", h1.addr()),
        &format!("this host's addresses: eth0 {}", h1.addr()),
    );
    assert!(
        elsewhere
            .verdict()
            .contains("discovery: own address not in the answer"),
        "{}",
        elsewhere.text
    );

    // --- a query that does not exist, and one without addresses of the asked family -----
    // Fully qualified: the bare `nosuchservice.` the search would end with is outside
    // this dnsmasq's zone, so refused (a real resolver forwards it and gets NXDOMAIN).
    let missing = run(&with(&["--query", "nosuchservice.svc.test."]));
    assert_eq!(missing.code, 1, "{}", missing.text);
    missing.assert_failed(
        "discovery",
        "answer",
        "`nosuchservice.svc.test.` does not exist (NXDOMAIN",
        "check --query",
    );
    assert_eq!(
        missing.verdict(),
        "no peers to check; discovery: the query does not exist (NXDOMAIN)"
    );
    let a_records = format!(
        "has addresses for --record a ({}, {})",
        h1.addr(),
        h2.addr()
    );
    let wrong_family = run(&with(&["--query", "demo.svc.test.", "--record", "aaaa"]));
    assert_eq!(wrong_family.code, 1, "{}", wrong_family.text);
    wrong_family.assert_failed(
        "discovery",
        "answer",
        "`demo.svc.test.` returned no address for --record aaaa",
        &a_records,
    );
    assert!(
        wrong_family
            .verdict()
            .contains("discovery: the query returned no address"),
        "{}",
        wrong_family.text
    );
    // Through the search domain the empty answer is followed by the refused `demo.`,
    // whose error is reported: the other family is named all the same.
    let short = run(&with(&["--query", "demo", "--record", "aaaa"]));
    assert_eq!(short.code, 1, "{}", short.text);
    short.assert_failed("discovery", "answer", "`demo`", &a_records);
}

/// Peers that answer the query but cannot be reached as `demo`: one runs under another
/// name part, one's distribution port listens on loopback only (epmd answers, the port
/// does not), one host's cable is pulled (nothing answers: one timeout).
#[test]
fn other_name_part_unreachable_port_and_dead_peer() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (mut net, hosts) = ipv4_hosts("docb", ["p1", "p2", "p3", "p4"]);
    let [p1, p2, p3, p4] = &hosts;
    net.start_dns(&Zone::service("demo", DOMAIN, &[p1, p2, p3, p4]));
    let dir = TempDir::new("docb");
    let cookie = Cookie::new();
    let loopback_only = dir.path().join("loopback.vm.args");
    std::fs::write(
        &loopback_only,
        "-kernel inet_dist_use_interface {127,0,0,1}\n",
    )
    .expect("write vm.args");
    let loopback_only = loopback_only.display().to_string();
    let _vms = [
        boot(
            p1,
            dir.path(),
            &cookie,
            &ip_source(p1),
            &["--query", "demo"],
        ),
        boot(
            p2,
            dir.path(),
            &cookie,
            &ip_source(p2),
            &["--basename", "other"],
        ),
        boot(
            p3,
            dir.path(),
            &cookie,
            &ip_source(p3),
            &["--vm-args", &loopback_only],
        ),
    ];
    net.link_down(p4);

    let cookie_file = cookie.path.display().to_string();
    let ip1 = ip_source(p1);
    let args = [
        "--ip",
        ip1.as_str(),
        "--cookie-file",
        cookie_file.as_str(),
        "--query",
        "demo",
    ];
    let (s2, s3, s4) = (
        format!("peer {}", node(p2)),
        format!("peer {}", node(p3)),
        format!("peer {}", node(p4)),
    );
    let report = doctor_until(p1, &args, "p1, p2 and p3 to register", |r| {
        node_up(r)
            && !r.line(&s2, "epmd").1.contains("no node registered")
            && r.line(&s3, "epmd").0 == '✔'
    });
    assert_eq!(report.code, 1, "{}", report.text);
    report.assert_failed(
        &s2,
        "epmd",
        "has no `demo`; registered: `other` at port",
        "give every node the same --basename",
    );
    report.assert_failed(
        &s3,
        "port",
        "Connection refused",
        "open the nodes' distribution ports between them",
    );
    // Silence (a timeout) while ARP still tries, "no route to host" once it gave up.
    report.assert_failed(
        &s4,
        "epmd",
        &format!("{}:4369", p4.addr()),
        "the host is down or cut off from this one",
    );
    let verdict = report.verdict();
    let head = format!(
        "0 of 3 peers connected; {}: registered as `other`, not `demo`; {}: distribution \
         port unreachable; {}: ",
        node(p2),
        node(p3),
        node(p4)
    );
    assert!(
        verdict.starts_with(&head) && verdict.contains("unreachable"),
        "{}",
        report.text
    );

    // The dead peer costs one step timeout, whatever else is checked meanwhile.
    let started = Instant::now();
    let again = doctor(p1, &args);
    let took = started.elapsed();
    assert_eq!(again.code, 1, "{}", again.text);
    println!(
        "MEASURE doctor with a dead peer (and two broken ones): {:.2} s",
        took.as_secs_f64()
    );
}

/// An IPv6 node (inet6_tcp) whose query also returns IPv4 peers: doctor reaches the
/// IPv4 peer itself, and says this node cannot.
#[test]
fn ipv6_node_next_to_an_ipv4_peer() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let mut net = Net::new("docc");
    let q1 = net.add_host("q1", true, true);
    let q2 = net.add_host("q2", true, false);
    let v6: IpAddr = IpAddr::V6(q1.v6.expect("q1 has IPv6"));
    net.start_dns(&Zone {
        search: vec![DOMAIN.into()],
        a: vec![
            (format!("demo.{DOMAIN}"), v6),
            (format!("demo.{DOMAIN}"), q2.addr()),
        ],
        srv: Vec::new(),
    });
    let dir = TempDir::new("docc");
    let cookie = Cookie::new();
    let source6 = v6_source(&q1);
    let _vms = [
        boot(&q1, dir.path(), &cookie, &source6, &[]),
        boot(&q2, dir.path(), &cookie, &ip_source(&q2), &[]),
    ];
    let cookie_file = cookie.path.display().to_string();
    let args = [
        "--ip",
        source6.as_str(),
        "--cookie-file",
        cookie_file.as_str(),
        "--query",
        "demo",
        "--record",
        "a+aaaa",
    ];
    let s2 = format!("peer {}", node(&q2));
    let report = doctor_until(&q1, &args, "q1 and q2 to register", |r| {
        node_up(r) && r.line(&s2, "epmd").0 == '✔'
    });
    assert_eq!(report.code, 1, "{}", report.text);
    let me = format!("demo@{v6}");
    report.assert_ok(
        "this node",
        "node",
        &format!("{me} (long names, IPv6 address: -proto_dist inet6_tcp)"),
    );
    report.assert_ok("this node", "mode", "long names, -proto_dist inet6_tcp");
    report.assert_ok("discovery", "own", "is in the answer");
    report.assert_ok(&s2, "handshake", "accepted our name");
    report.assert_failed(
        &s2,
        "family",
        "the peer's address is IPv4 but this node speaks inet6_tcp: it cannot dial it",
        "run every node on one address family",
    );
    report.assert_failed(&s2, "connected", "not in", "fix the ✗ above first");
    assert_eq!(
        report.verdict(),
        format!(
            "0 of 1 peer connected; {}: IPv4 peer, this node speaks inet6_tcp",
            node(&q2)
        )
    );
}

/// `beamup doctor` / `beamup peers` with no flags and no release command, as `docker
/// exec c beamup doctor` runs them: only the container's environment (here RELEASE_TMP).
fn bare(host: &Host, tmp: &Path, args: &[&str]) -> Report {
    let mut cmd = host.command(testkit::beamup_bin());
    cmd.args(args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("RELEASE_TMP", tmp);
    let out: Output = output_timeout(cmd, Duration::from_secs(60));
    Report {
        code: out.status.code().unwrap_or(-1),
        text: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Issue 16: discovery given as flags at boot (the usual CMD form, which `docker exec`
/// never sees). `beamup doctor` and `beamup peers` with no flags next to the node take
/// the node's discovery from its boot record: the peer with another cookie is a ✗ (not
/// "no peers to check; all checks passed"), and `peers` lists both peers. Away from any
/// booted node, doctor with no discovery flags fails instead of guessing.
#[test]
fn day_two_commands_use_the_node_as_booted() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (mut net, hosts) = ipv4_hosts("docd", ["h1", "h2", "h3"]);
    let [h1, h2, h3] = &hosts;
    net.start_dns(&zone(&[("demo", &[h1, h2, h3])]));
    let dir = TempDir::new("docd");
    let good = Cookie::new();
    let other = Cookie::new();
    let connect = ["--query", "demo", "--connect"];
    let _vms = [
        boot(h1, dir.path(), &good, &ip_source(h1), &connect),
        boot(h2, dir.path(), &good, &ip_source(h2), &connect),
        boot(h3, dir.path(), &other, &ip_source(h3), &connect),
    ];
    let tmp1 = dir.path().join("h1.tmp");
    let s2 = format!("peer {}", node(h2));
    let s3 = format!("peer {}", node(h3));
    let deadline = Instant::now() + LONG;
    let report = loop {
        let r = bare(h1, &tmp1, &["doctor"]);
        let meshed = r.text.contains(&s2) && r.line(&s2, "connected").0 == '✔';
        if meshed && r.text.contains(&s3) && r.line(&s3, "handshake").0 == '✗' {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for h1 to mesh with h2; last doctor run (exit {}):\n{}\n{}",
            r.code,
            r.text,
            r.stderr
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(report.code, 1, "{}", report.text);
    report.assert_ok("this node", "node", &node(h1));
    report.assert_failed(&s3, "handshake", "cookie", "cookie");
    report.assert_failed(&s3, "connected", "not in", "");
    assert!(
        !report.verdict().contains("all checks passed"),
        "{}",
        report.verdict()
    );
    assert!(report.verdict().contains(&node(h3)), "{}", report.verdict());
    assert_secret(&report, &[&good, &other]);

    // `beamup peers`, no flags: what the node discovers (its own node left out).
    let peers = bare(h1, &tmp1, &["peers"]);
    assert_eq!(peers.code, 0, "{}\n{}", peers.text, peers.stderr);
    let listed: Vec<&str> = peers.text.lines().collect();
    assert_eq!(listed, [node(h2), node(h3)], "{}", peers.text);

    // Not next to a node booted through beamup, and no discovery flags: a ✗, never
    // "all checks passed".
    let empty = TempDir::new("docd-none");
    let away = bare(
        h1,
        empty.path(),
        &["doctor", "--ip", &ip_source(h1), "--basename", "demo"],
    );
    assert_eq!(away.code, 1, "{}\n{}", away.text, away.stderr);
    away.assert_failed(
        "discovery",
        "query",
        "cannot tell what this node discovers",
        "docker exec",
    );
    assert!(
        !away.verdict().contains("all checks passed"),
        "{}",
        away.text
    );
}
