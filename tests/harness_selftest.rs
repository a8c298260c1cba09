//! Tests of the test harness itself (the testkit crate, tests/support): hosts reach each other over IPv4
//! and IPv6, dnsmasq answers A/AAAA/SRV inside a host, the demo releases boot in a
//! host with the variables set by hand, and teardown leaves nothing behind.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use testkit::net::owner_pid;
use testkit::{
    Net, Release, Zone, mix_release, relx_release, require, rpc_erl, try_rpc, wait_until,
};

const SHORT: Duration = Duration::from_secs(20);

/// Exit status of a TCP connect from `from` to `addr:port`, cut after 2 s.
/// (`ping` is not installed on a minimal Debian; bash's /dev/tcp is.)
fn tcp_connect(from: &testkit::Host, addr: IpAddr, port: u16) -> bool {
    let script = format!("exec 3<>/dev/tcp/{addr}/{port}");
    from.output("timeout", &["2", "bash", "-c", &script], SHORT)
        .status
        .success()
}

#[test]
fn hosts_reach_each_other_over_v4_and_v6() {
    require(&["epmd", "bash", "timeout"]);
    let mut net = Net::new("ping");
    let a = net.add_host("a", true, true);
    let b = net.add_host("b", true, true);
    // epmd in the foreground is a ready-made TCP listener on 4369 (v4 and v6).
    let _epmd_a = a.spawn(a.command("epmd"));
    let _epmd_b = b.spawn(b.command("epmd"));

    for (from, to) in [(&a, &b), (&b, &a)] {
        for addr in [IpAddr::V4(to.v4.unwrap()), IpAddr::V6(to.v6.unwrap())] {
            wait_until(SHORT, &format!("{} to reach {addr}", from.name), || {
                tcp_connect(from, addr, 4369)
            });
        }
    }

    // Pulling a's cable stops the traffic; plugging it back restores it.
    net.link_down(&a);
    assert!(
        !tcp_connect(&b, IpAddr::V4(a.v4.unwrap()), 4369),
        "b still reaches a with a's link down"
    );
    net.link_up(&a);
    wait_until(SHORT, "b to reach a again after link_up", || {
        tcp_connect(&b, IpAddr::V4(a.v4.unwrap()), 4369)
    });

    // Each host has its own hostname, and no IPv6 where it was not asked for.
    let out = a.output("hostname", &[], SHORT);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "a");
    let c = net.add_host("c", true, false);
    let out = c.output("ip", &["-6", "addr", "show", "dev", "eth0"], SHORT);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "",
        "v4-only host has IPv6"
    );
}

/// Resolves `name` with Erlang's own resolver (reads the host's /etc/resolv.conf), so
/// SRV records can be asked too. Returns the `~p` of the answer list.
fn erl_lookup(host: &testkit::Host, name: &str, kind: &str) -> String {
    let expr = format!(
        "io:format(\"~p~n\", [lists:sort(inet_res:lookup(\"{name}\", in, {kind}))]), halt()."
    );
    let out = host.output("erl", &["-noshell", "-eval", &expr], SHORT);
    assert!(out.status.success(), "erl lookup failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn dns_answers_a_aaaa_srv_inside_a_host() {
    let _heavy = testkit::heavy::shared();
    require(&["getent", "erl"]);
    let mut net = Net::new("dns");
    let a = net.add_host("a", true, true);
    let b = net.add_host("b", true, false);
    let six = net.add_host("six", false, true);
    let zone = Zone {
        search: vec!["svc.test".into()],
        a: vec![
            ("demo.svc.test".into(), a.v4.unwrap().into()),
            ("demo.svc.test".into(), b.v4.unwrap().into()),
            ("demo.svc.test".into(), a.v6.unwrap().into()),
            ("a.svc.test".into(), a.v4.unwrap().into()),
        ],
        srv: vec![(
            "_erlang._tcp.demo.svc.test".into(),
            "a.svc.test".into(),
            4369,
        )],
    };
    net.start_dns(&zone);

    // glibc through the search domain: both A records and the AAAA one.
    let out = a.output("getent", &["ahosts", "demo"], SHORT);
    let text = String::from_utf8_lossy(&out.stdout);
    for addr in [
        a.v4.unwrap().to_string(),
        b.v4.unwrap().to_string(),
        a.v6.unwrap().to_string(),
    ] {
        assert!(
            text.contains(&addr),
            "getent ahosts demo lacks {addr}:\n{text}"
        );
    }
    // An IPv6-only host reaches the server over IPv6.
    let aaaa = erl_lookup(&six, "demo.svc.test", "aaaa");
    let a6 = a.v6.unwrap().segments();
    assert!(
        aaaa.contains(&format!("{},{}", a6[0], a6[1])),
        "AAAA from six: {aaaa}"
    );
    let srv = erl_lookup(&b, "_erlang._tcp.demo.svc.test", "srv");
    assert!(srv.contains("4369,\"a.svc.test\""), "SRV answer: {srv}");

    // New records are served at once; a stopped server answers nothing.
    net.set_dns(&Zone {
        a: vec![("demo.svc.test".into(), b.v4.unwrap().into())],
        ..zone.clone()
    });
    let answer = erl_lookup(&a, "demo.svc.test", "a");
    let b4 = b.v4.unwrap().octets();
    assert_eq!(
        answer,
        format!("[{{{},{},{},{}}}]", b4[0], b4[1], b4[2], b4[3])
    );
    net.stop_dns();
    assert_eq!(erl_lookup(&a, "demo.svc.test", "a"), "[]");
    assert!(
        net.dns_log()
            .contains("query[SRV] _erlang._tcp.demo.svc.test")
    );
}

fn netns_list() -> String {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn teardown_leaves_no_namespace_and_no_process() {
    require(&["epmd", "sleep"]);
    let (prefix, pids, dir) = {
        let mut net = Net::new("down");
        let h = net.add_host("h", true, true);
        net.start_dns(&Zone::default());
        // A daemon that leaves our process group (epmd -daemon) is still found: it
        // lives in the namespace.
        let out = h.output("epmd", &["-daemon"], SHORT);
        assert!(out.status.success());
        let mut sleep = h.command("sleep");
        sleep.arg("1000");
        let sleeper = h.spawn(sleep);
        let mut pids = vec![sleeper.pid() as i32];
        wait_until(SHORT, "epmd -daemon to run in the namespace", || {
            common_ns_pids(&h.ns).len() >= 2
        });
        pids.extend(common_ns_pids(&h.ns));
        let prefix = net.prefix().to_string();
        assert!(netns_list().contains(&prefix));
        std::mem::forget(sleeper); // not killed by its own Drop: the Net must do it
        (prefix, pids, net.dir().to_path_buf())
    };
    assert!(
        !netns_list().contains(&prefix),
        "left behind:\n{}",
        netns_list()
    );
    assert!(!dir.exists(), "temp dir {} left behind", dir.display());
    let etc = std::fs::read_dir("/etc/netns")
        .map(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        })
        .unwrap_or(false);
    assert!(!etc, "/etc/netns entries of {prefix} left behind");
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Dead, or a zombie waiting for its parent (the forgotten Proc was ours).
        assert!(
            state.is_empty() || state.contains(") Z"),
            "process {pid} survived teardown: {state}"
        );
    }
}

fn common_ns_pids(ns: &str) -> Vec<i32> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .expect("ip netns pids");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

#[test]
fn stale_namespaces_of_dead_owners_are_removed() {
    testkit::require_root();
    // A pid that is surely dead: a child we started and reaped.
    let mut child = Command::new("true").spawn().expect("spawn true");
    let dead = child.id();
    child.wait().expect("wait true");
    let stale = format!("bu{dead}-0stale-h");
    let _ = Command::new("ip").args(["netns", "add", &stale]).status();
    std::fs::create_dir_all(format!("/etc/netns/{stale}")).expect("mkdir /etc/netns/..");
    assert!(netns_list().contains(&stale));
    testkit::net::remove_stale();
    assert!(
        !netns_list().contains(&stale),
        "stale namespace {stale} still there"
    );
    assert!(!std::path::Path::new(&format!("/etc/netns/{stale}")).exists());
}

/// The fixture finds the binary at run time (it is a library crate, which cargo gives no
/// `CARGO_BIN_EXE_beamup` nor `CARGO_TARGET_TMPDIR`): the same paths cargo names for this
/// test crate.
#[test]
fn the_fixture_finds_the_binary_cargo_built() {
    assert_eq!(
        testkit::beamup_bin(),
        std::path::PathBuf::from(env!("CARGO_BIN_EXE_beamup"))
    );
    assert_eq!(
        testkit::target_tmpdir(),
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
    );
}

#[test]
fn owner_pid_parses_only_harness_names() {
    let cases = [
        ("bu1234-0ping-a", Some(1234)),
        ("bu7-3dns-br", Some(7)),
        ("bu-demo", None),
        ("budemo-1", None),
        ("bu12x-a", None),
        ("other", None),
    ];
    for (name, want) in cases {
        assert_eq!(owner_pid(name), want, "name {name}");
    }
}

#[test]
fn base64_matches_rfc4648_vectors() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (input, want) in cases {
        assert_eq!(
            testkit::release::base64(input.as_bytes()),
            want,
            "input {input:?}"
        );
    }
}

/// Boots `release` on `host` with the variables beamup will export, set by hand, and
/// checks the node's name, longnames and that rpc/rpc_erl reach it.
fn boot_by_hand(host: &testkit::Host, release: &Release, addr: IpAddr) {
    let node = format!("demo@{addr}");
    let cookie = "harness-selftest-cookie";
    let v6 = addr.is_ipv6();
    let dir = testkit::TempDir::new("byhand");
    let mut cmd = host.command(release.bin());
    cmd.args(release.start_args());
    match release.kind {
        testkit::ReleaseKind::Mix => {
            cmd.env("RELEASE_NODE", &node)
                .env("RELEASE_DISTRIBUTION", "name")
                .env("RELEASE_COOKIE", cookie);
            if v6 {
                // Exactly once: ERL_AFLAGS as well would make it twice (see rpc's docs).
                cmd.env("ELIXIR_ERL_OPTIONS", "-proto_dist inet6_tcp");
            }
        }
        testkit::ReleaseKind::Relx => {
            let vm_args = dir.path().join("vm.args");
            let mut text = format!("-name {node}\n-setcookie {cookie}\n");
            if v6 {
                text.push_str("-proto_dist inet6_tcp\n");
            }
            testkit::release::write_private(&vm_args, &text);
            cmd.env("VMARGS_PATH", &vm_args);
        }
    }
    let vm = host.spawn(cmd);
    let env = [("RELEASE_NODE", node.as_str()), ("RELEASE_COOKIE", cookie)];
    wait_until(
        Duration::from_secs(60),
        &format!("{node} to answer rpc"),
        || {
            assert!(vm.alive(), "release exited early:\n{}", vm.log());
            let probe = match release.kind {
                testkit::ReleaseKind::Mix => "IO.puts(node())",
                testkit::ReleaseKind::Relx => "node().",
            };
            try_rpc(host, release, &env, probe).is_ok()
        },
    );
    assert_eq!(
        rpc_erl(host, release, &env, "{node(), net_kernel:longnames()}"),
        format!("{{'{node}',true}}")
    );
}

#[test]
fn releases_boot_by_hand_on_v4_and_v6_hosts() {
    let _heavy = testkit::heavy::shared();
    let mut net = Net::new("hand");
    let h4 = net.add_host("v4", true, false);
    let h6 = net.add_host("v6", false, true);
    for release in [mix_release(), relx_release()] {
        boot_by_hand(&h4, &release, IpAddr::V4(h4.v4.unwrap()));
        boot_by_hand(&h6, &release, IpAddr::V6(h6.v6.unwrap()));
    }
}
