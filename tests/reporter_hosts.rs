//! The reporter across several hosts: each host (a network namespace) boots the
//! real mix release through beamup, which forks the reporter; dnsmasq in its own
//! namespace is the DNS server every host's resolv.conf names.

use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::{Host, Net, Proc, TempDir, Zone, beamup_bin, mix_release, require, wait_until};

const LONG: Duration = Duration::from_secs(60);
const LEAVE_AFTER: usize = 3;

fn zone(hosts: &[&Host]) -> Zone {
    // Queried as the short name `demo`: it resolves through the search domain.
    Zone::service("demo", "svc.test", hosts)
}

fn node(host: &Host) -> String {
    format!("demo@{}", host.addr())
}

/// beamup in front of the release, as a Dockerfile's ENTRYPOINT + CMD would run it.
fn boot(host: &Host, dir: &Path, extra: &[&str]) -> (Proc, PathBuf) {
    let release = mix_release();
    let peers_file = dir.join(format!("{}.peers", host.name));
    let tmp = dir.join(format!("{}.tmp", host.name));
    std::fs::create_dir_all(&tmp).expect("release tmp dir");
    let leave_after = LEAVE_AFTER.to_string();
    let peers_arg = peers_file.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "--ip",
        "interface:eth0",
        "--query",
        "demo",
        "--interval",
        "1s",
        "--leave-after",
        &leave_after,
        "--peers-file",
        peers_arg,
    ];
    args.extend_from_slice(extra);
    let mut cmd = testkit::beamup_command(host, &release, &args);
    // Debug: one `poll ok` line per successful poll.
    cmd.env("BEAMUP_LOG", "debug")
        // The release is shared between hosts: each VM gets its own tmp dir.
        .env("RELEASE_TMP", &tmp);
    (host.spawn(cmd), peers_file)
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn sorted(mut nodes: Vec<String>) -> Vec<String> {
    nodes.sort();
    nodes
}

/// The successful polls' `seen=` counts, in log order, each with the line index.
fn polls(log: &str) -> Vec<(usize, usize)> {
    log.lines()
        .enumerate()
        .filter(|(_, line)| line.contains("poll ok"))
        .filter_map(|(i, line)| {
            let seen = line
                .split_whitespace()
                .find_map(|w| w.strip_prefix("seen="))?;
            Some((i, seen.parse().ok()?))
        })
        .collect()
}

/// The pid of the reporter that beamup forked: after the exec the VM has
/// beamup's pid, and the reporter is its child still running the beamup binary.
fn reporter_pid(vm_pid: u32) -> Option<u32> {
    let bin = std::fs::canonicalize(beamup_bin()).expect("beamup binary");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: u32 = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
            (ppid == vm_pid && exe == bin).then_some(pid)
        })
}

/// Running, not a zombie.
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .next()?
                .to_string();
            Some(state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

#[test]
fn three_hosts_report_each_other_through_dns() {
    let _heavy = testkit::heavy::shared();
    require(&["dnsmasq", "erl", "elixir"]);
    let release = mix_release();
    assert!(release.bin().exists());
    let mut net = Net::new("rep");
    let a = net.add_host("a", true, false);
    let b = net.add_host("b", true, false);
    let c = net.add_host("c", true, false);
    let full = zone(&[&a, &b, &c]);
    net.start_dns(&full);
    let dir = TempDir::new("reporter");

    let (proc_a, file_a) = boot(&a, dir.path(), &[]);
    let (proc_b, file_b) = boot(&b, dir.path(), &[]);
    let (mut proc_c, file_c) = boot(&c, dir.path(), &[]);

    // Each peers file lists exactly the two others, already after the first
    // successful poll (DNS knew all three from the start).
    for (host, proc, file, others) in [
        (&a, &proc_a, &file_a, [&b, &c]),
        (&b, &proc_b, &file_b, [&a, &c]),
        (&c, &proc_c, &file_c, [&a, &b]),
    ] {
        let want = sorted(others.iter().map(|h| node(h)).collect());
        wait_until(LONG, &format!("{}'s peers file", host.name), || {
            read_lines(file) == want
        });
        let first = polls(&proc.log());
        assert!(
            first.first().is_some_and(|(_, seen)| *seen == 2),
            "{}'s first successful poll should see both others: {first:?}\n{}",
            host.name,
            proc.log()
        );
        for other in others {
            assert!(
                proc.log()
                    .contains(&format!("peer joined peer={} peers=", node(other))),
                "{} did not log {} joining:\n{}",
                host.name,
                other.name,
                proc.log()
            );
        }
    }

    // kill -9 of c's VM takes its reporter along (PR_SET_PDEATHSIG), even
    // though the reporter sits in a process group of its own.
    let vm_c = proc_c.pid();
    let reporter_c = reporter_pid(vm_c).unwrap_or_else(|| {
        panic!(
            "no reporter child of c's VM (pid {vm_c}):\n{}",
            proc_c.log()
        )
    });
    assert!(running(reporter_c));
    // It takes no signal meant for the release: a process group of its own
    // (a terminal's Ctrl-C goes to the VM's group), and it holds neither the
    // release's stdin nor its stdout.
    let pgid = |pid: u32| -> String {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        stat.rsplit_once(')')
            .expect("comm")
            .1
            .split_whitespace()
            .nth(2)
            .expect("pgrp")
            .to_string()
    };
    assert_ne!(
        pgid(reporter_c),
        pgid(vm_c),
        "the reporter shares the VM's process group"
    );
    for fd in [0, 1] {
        let target = std::fs::read_link(format!("/proc/{reporter_c}/fd/{fd}")).expect("fd link");
        assert_eq!(
            target,
            std::path::Path::new("/dev/null"),
            "reporter fd {fd} is {target:?}"
        );
    }
    proc_c.kill9();
    wait_until(
        Duration::from_secs(1),
        "c's reporter to end with its VM",
        || !running(reporter_c),
    );

    // c leaves DNS: a and b report it left only on the LEAVE_AFTER-th successful
    // poll that misses it; after fewer it is still listed.
    let mark_a = proc_a.log().lines().count();
    let mark_b = proc_b.log().lines().count();
    net.set_dns(&zone(&[&a, &b]));
    for (host, proc, file, mark, other) in [
        (&a, &proc_a, &file_a, mark_a, &b),
        (&b, &proc_b, &file_b, mark_b, &a),
    ] {
        wait_until(LONG, &format!("{} to report c left", host.name), || {
            read_lines(file) == [node(other)]
        });
        let log = proc.log();
        let lines: Vec<&str> = log.lines().collect();
        let left_line = lines
            .iter()
            .enumerate()
            .skip(mark)
            .find(|(_, l)| l.contains(&format!("peer left peer={}", node(&c))))
            .map(|(i, _)| i)
            .unwrap_or_else(|| panic!("{} never logged c leaving:\n{log}", host.name));
        let missing: Vec<usize> = polls(&log)
            .into_iter()
            .filter(|(i, seen)| *i >= mark && *seen == 1)
            .map(|(i, _)| i)
            .collect();
        // The leave is logged inside the poll that makes it final, just before
        // that poll's own `poll ok` line.
        let before = missing.iter().filter(|i| **i < left_line).count();
        assert_eq!(
            before,
            LEAVE_AFTER - 1,
            "{}: c must stay through {} missing polls:\n{log}",
            host.name,
            LEAVE_AFTER - 1
        );
        assert!(
            missing.iter().any(|i| *i > left_line),
            "{}: the leaving poll's line is missing:\n{log}",
            host.name
        );
    }

    // DNS down: the peers are kept and the failure is logged; DNS back: the
    // reporter recovers.
    let failures = |p: &Proc| p.log().matches("peer discovery failed").count();
    let before = failures(&proc_a);
    net.stop_dns();
    wait_until(LONG, "a to log failed polls", || {
        failures(&proc_a) >= before + 2
    });
    assert_eq!(read_lines(&file_a), [node(&b)], "a lost its peers");
    let recovered = |p: &Proc| p.log().matches("peer discovery works again").count();
    let recovered_before = recovered(&proc_a);
    net.start_dns(&zone(&[&a, &b]));
    wait_until(LONG, "a to recover", || {
        recovered(&proc_a) > recovered_before
    });
    assert_eq!(read_lines(&file_a), [node(&b)]);
    assert!(proc_a.alive() && proc_b.alive());
}

#[test]
fn no_nameserver_gives_a_clear_message() {
    require(&["dnsmasq"]);
    let mut net = Net::new("nores");
    let h = net.add_host("h", true, false);
    net.start_dns(&zone(&[&h]));
    // A resolv.conf without any nameserver line (as a broken image might have).
    let conf = Path::new("/etc/netns").join(&h.ns).join("resolv.conf");
    std::fs::write(&conf, "search svc.test\n").expect("rewrite resolv.conf");

    let mut cmd = h.command(beamup_bin());
    cmd.args([
        "peers",
        "--ip",
        "interface:eth0",
        "--basename",
        "demo",
        "--query",
        "demo",
        "--dns-timeout",
        "1s",
        "--dns-attempts",
        "1",
    ]);
    let out = testkit::output_timeout(cmd, LONG);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "stderr:\n{stderr}");
    assert!(
        stderr.contains("no usable nameserver in /etc/resolv.conf")
            && stderr.contains("falling back to 127.0.0.11 then 127.0.0.1")
            && stderr.contains("--dns-server"),
        "stderr:\n{stderr}"
    );
    // The failure itself names where it asked.
    assert!(stderr.contains("(from fallback)"), "stderr:\n{stderr}");

    // With --dns-server the same host resolves its peers.
    let mut cmd = h.command(beamup_bin());
    cmd.args(["peers", "--ip", "interface:eth0", "--basename", "demo"])
        .args(["--query", "demo.svc.test", "--dns-server"])
        .arg(net.dns_addr().to_string());
    let out = testkit::output_timeout(cmd, LONG);
    assert!(out.status.success(), "{out:?}");
    // Only itself is registered, and the own node is never a peer.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
}

#[test]
fn peers_command_prints_and_watches() {
    require(&["dnsmasq"]);
    let mut net = Net::new("pcmd");
    let a = net.add_host("a", true, false);
    let b = net.add_host("b", true, false);
    let c = net.add_host("c", true, false);
    net.start_dns(&zone(&[&a, &b, &c]));

    let mut cmd = a.command(beamup_bin());
    cmd.args(["peers", "--ip", "interface:eth0", "--basename", "demo"])
        .args(["--query", "demo"]);
    let out = testkit::output_timeout(cmd, LONG);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{}\n{}\n", node(&b), node(&c))
    );

    // --watch: `+` for the initial peers, `-` once c is gone from DNS.
    let mut cmd = a.command(beamup_bin());
    cmd.args([
        "peers",
        "--watch",
        "--interval",
        "200ms",
        "--leave-after",
        "2",
    ])
    .args([
        "--ip",
        "interface:eth0",
        "--basename",
        "demo",
        "--query",
        "demo",
    ]);
    let watch = a.spawn(cmd);
    assert!(
        watch.wait_log(&format!("+{}", node(&c)), LONG),
        "{}",
        watch.log()
    );
    assert!(watch.log().contains(&format!("+{}\n", node(&b))));
    net.set_dns(&zone(&[&a, &b]));
    assert!(
        watch.wait_log(&format!("-{}", node(&c)), LONG),
        "{}",
        watch.log()
    );
    assert!(!watch.log().contains(&format!("-{}", node(&b))));

    // An unknown name (NXDOMAIN): exit 5
    // and the name in the message.
    let mut cmd = a.command(beamup_bin());
    cmd.args(["peers", "--ip", "interface:eth0", "--basename", "demo"])
        .args(["--query", "nope.svc.test"]);
    let out = testkit::output_timeout(cmd, LONG);
    assert_eq!(out.status.code(), Some(5), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("`nope.svc.test`"));
}

#[test]
fn connect_meshes_the_releases() {
    let _heavy = testkit::heavy::shared();
    require(&["dnsmasq", "erl", "elixir"]);
    let mut net = Net::new("conn");
    let a = net.add_host("a", true, false);
    let b = net.add_host("b", true, false);
    let c = net.add_host("c", true, false);
    net.start_dns(&zone(&[&a, &b, &c]));
    let dir = TempDir::new("connect");
    let extra = ["--connect", "--peers-format", "json"];
    let (proc_a, file_a) = boot(&a, dir.path(), &extra);
    let (_proc_b, _) = boot(&b, dir.path(), &extra);
    let (_proc_c, _) = boot(&c, dir.path(), &extra);

    // a's JSON peers file shows both peers connected.
    let states = |file: &Path| -> Vec<(String, String)> {
        testkit::peer_states(file)
            .into_iter()
            .map(|(node, (state, _))| (node, state))
            .collect()
    };
    let want = vec![
        (node(&b), "connected".to_string()),
        (node(&c), "connected".to_string()),
    ];
    wait_until(LONG, "a's peers file to show b and c connected", || {
        states(&file_a) == want
    });
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file_a).expect("read")).expect("json");
    assert_eq!(doc["node"], node(&a).as_str());
    assert!(
        !std::fs::read_to_string(&file_a)
            .expect("read")
            .contains("cookie"),
        "the peers file mentions the cookie"
    );

    // The release itself sees the mesh (the reporter is hidden, so not listed).
    let env = [("RELEASE_NODE", node(&a))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listed = testkit::rpc_erl(&a, &mix_release(), &env, "lists:sort(nodes()).");
    assert_eq!(
        listed,
        format!("['{}','{}']", node(&b), node(&c)),
        "a's log:\n{}",
        proc_a.log()
    );
}

#[test]
fn ipv6_and_srv_through_the_binary() {
    require(&["dnsmasq"]);
    let mut net = Net::new("six");
    let a = net.add_host("a", false, true);
    let b = net.add_host("b", false, true);
    let c = net.add_host("c", false, true);
    let mut z = zone(&[&a, &b, &c]);
    for h in [&b, &c] {
        z.a.push((format!("{}.svc.test", h.name), h.addr()));
        z.srv.push((
            "_erlang._tcp.demo.svc.test".into(),
            format!("{}.svc.test", h.name),
            4369,
        ));
    }
    net.start_dns(&z);
    let peers = |extra: &[&str]| {
        let mut cmd = a.command(beamup_bin());
        cmd.args(["peers", "--ip", "interface:eth0", "--basename", "demo"])
            .args(extra);
        let out = testkit::output_timeout(cmd, LONG);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // IPv6 peers are printed as Erlang names them: plain, compressed, no brackets.
    let want = format!("{}\n{}\n", node(&b), node(&c));
    assert!(node(&b).starts_with("demo@fd00:213:"), "{}", node(&b));
    assert_eq!(peers(&["--query", "demo"]), want);
    assert_eq!(
        peers(&["--record", "srv", "--query", "_erlang._tcp.demo.svc.test"]),
        want
    );
}

#[test]
fn an_over_cap_answer_keeps_the_last_good_peers() {
    let _heavy = testkit::heavy::shared();
    // Issue 16: an answer of thousands became thousands of peers, log lines
    // and a status file of megabytes. Over --max-peers (default 1,024) it is
    // a failed poll: the last good set stays in the peers and status files,
    // one warning per poll names the count, the cap and the flag.
    require(&["dnsmasq", "erl", "elixir"]);
    let mut net = Net::new("cap");
    let a = net.add_host("a", true, false);
    let b = net.add_host("b", true, false);
    let c = net.add_host("c", true, false);
    let good = zone(&[&a, &b, &c]);
    net.start_dns(&good);
    let dir = TempDir::new("overcap");
    let (proc_a, file_a) = boot(&a, dir.path(), &[]);
    let want = sorted(vec![node(&b), node(&c)]);
    wait_until(LONG, "a's peers file to list b and c", || {
        read_lines(&file_a) == want
    });

    let mut big = good.clone();
    for i in 0..1100 {
        big.a.push((
            "demo.svc.test".into(),
            format!("10.50.{}.{}", i / 250, i % 250 + 1)
                .parse()
                .expect("ip"),
        ));
    }
    let warnings = |p: &Proc| {
        p.log()
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("at least 1103 addresses"))
            .count()
    };
    net.set_dns(&big);
    wait_until(LONG, "a to log two over-cap polls", || {
        warnings(&proc_a) >= 2
    });
    let log = proc_a.log();
    let warning = log
        .lines()
        .find(|l| l.contains("at least 1103 addresses"))
        .expect("warning");
    for needle in ["1024", "--max-peers", "keeping the last known peers"] {
        assert!(warning.contains(needle), "no `{needle}` in {warning}");
    }
    assert_eq!(read_lines(&file_a), want, "the peers file changed");
    assert!(
        !log.contains("10.50."),
        "an over-cap peer was reported:\n{log}"
    );
    let status = std::fs::read_to_string(dir.path().join("a.tmp").join("beamup.status.json"))
        .expect("status file");
    assert!(
        status.len() < 4096 && !status.contains("10.50.") && status.contains(&node(&b)),
        "{status}"
    );
    // Back under the cap: a good poll again, the set unchanged.
    let recovered = |p: &Proc| p.log().matches("peer discovery works again").count();
    net.set_dns(&good);
    wait_until(LONG, "a to recover", || recovered(&proc_a) >= 1);
    assert_eq!(read_lines(&file_a), want);
    assert!(proc_a.alive());
}

#[test]
fn over_cap_answers_add_no_atoms_to_the_vm() {
    let _heavy = testkit::heavy::shared();
    // Issue 16: with --connect every discovered node name became an atom in
    // the release's VM (atoms are never freed), so an answer of thousands
    // that changes at every poll would fill the atom table in ~10 polls.
    // Over the cap nothing reaches the VM: its atom count stays flat.
    require(&["dnsmasq", "erl", "elixir"]);
    let mut net = Net::new("atoms");
    let a = net.add_host("a", true, false);
    let b = net.add_host("b", true, false);
    let good = zone(&[&a, &b]);
    net.start_dns(&good);
    let dir = TempDir::new("atoms");
    let extra = ["--connect", "--peers-format", "json"];
    let (proc_a, file_a) = boot(&a, dir.path(), &extra);
    let (_proc_b, _) = boot(&b, dir.path(), &extra);
    let connected = |file: &Path| {
        testkit::peer_states(file)
            .into_iter()
            .map(|(node, (state, _))| (node, state))
            .collect::<Vec<_>>()
    };
    let want = vec![(node(&b), "connected".to_string())];
    wait_until(LONG, "a's peers file to show b connected", || {
        connected(&file_a) == want
    });
    let env = [("RELEASE_NODE", node(&a))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let atoms = || -> i64 {
        let out = testkit::rpc_erl(&a, &mix_release(), &env, "erlang:system_info(atom_count).");
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("atom_count: {out}"))
    };
    // What asking costs by itself (the rpc's own hidden node, ...).
    let before = atoms();
    let calibrated = atoms();
    let per_ask = calibrated - before;

    // Polls that ended, good (`poll ok`, at debug level) or failed.
    let ended = |p: &Proc| {
        let log = p.log();
        log.matches("poll ok").count() + log.matches("peer discovery failed").count()
    };
    for round in 0..10u8 {
        // A different answer at every poll: 1,100 + round new addresses
        // besides a and b.
        let mut big = good.clone();
        let extra = 1100 + usize::from(round);
        for i in 0..extra {
            big.a.push((
                "demo.svc.test".into(),
                format!("10.{}.{}.{}", 50 + round, i / 250, i % 250 + 1)
                    .parse()
                    .expect("ip"),
            ));
        }
        net.set_dns(&big);
        // Two more polls: the second one began after the new answer.
        let mark = ended(&proc_a);
        wait_until(LONG, &format!("round {round}'s polls"), || {
            ended(&proc_a) >= mark + 2
        });
    }
    let after = atoms();
    let grown = after - calibrated - per_ask;
    eprintln!(
        "atom_count: {before} before, {calibrated} after one more rpc, {after} after 10 over-cap polls \
         (+{grown} beyond the rpc's own)"
    );
    assert!(
        grown < 100,
        "the VM's atom count grew by {grown} over 10 polls of over-cap answers \
         ({calibrated} -> {after}); a's log ends:\n{}",
        proc_a
            .log()
            .lines()
            .rev()
            .take(10)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(connected(&file_a), want, "a's peers changed");
    for round in 0..10 {
        let count = 1100 + round + 2;
        assert!(
            proc_a
                .log()
                .contains(&format!("at least {count} addresses")),
            "no over-cap warning for round {round}"
        );
    }
    assert!(
        !proc_a.log().contains("10.50."),
        "an over-cap peer was used"
    );
}
