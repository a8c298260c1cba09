//! One cookie for the release and for `--connect` (issue 9, "Secrets"), on
//! real hosts (network namespaces) with real releases and dnsmasq:
//! - mix: `--cookie-file` and an environment RELEASE_COOKIE that differ; the
//!   release and the reporter both use the file's, so the nodes mesh (before,
//!   the reporter took the environment's and was rejected forever);
//! - relx: no cookie given at all; the reporter finds the one the release
//!   uses in its vm.args `-setcookie` line (before: exit 3, "--connect needs
//!   the release's cookie"); or RELX_COOKIE in the environment, which beamup
//!   makes the VM's too.
//!
//! Every run logs at `BEAMUP_LOG=trace` (libraries included), and no cookie
//! may appear in any log or peers file.

use std::path::PathBuf;
use std::time::Duration;

use testkit::boot::ip_source;
use testkit::{
    Cookie, Host, Net, Proc, Release, ReleaseKind, TempDir, Zone, beamup_command, mix_release,
    peer_states, relx_release, require, rpc_erl, wait_until,
};

const LONG: Duration = Duration::from_secs(90);
/// The cookie in tests/fixtures/demo_relx/config/vm.args.
const RELX_FIXTURE_COOKIE: &str = "demo_fixture_cookie";

struct Member {
    host: Host,
    node: String,
    peers_file: PathBuf,
    proc: Proc,
}

/// beamup --connect on each host, `demo.svc.test` answering every host.
fn boot_all(
    tag: &str,
    release: &Release,
    extra_args: &[&str],
    env: &[(&str, &str)],
) -> (Net, TempDir, Vec<Member>) {
    let mut net = Net::new(tag);
    let hosts: Vec<Host> = ["c1", "c2"]
        .iter()
        .map(|n| net.add_host(n, true, false))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&Zone::service("demo", "svc.test", &refs));
    let dir = TempDir::new(&format!("cookie{tag}"));
    let members = hosts
        .into_iter()
        .map(|host| {
            let peers_file = dir.path().join(format!("{}.peers.json", host.name));
            let tmp = dir.path().join(format!("{}.tmp", host.name));
            std::fs::create_dir_all(&tmp).expect("tmp dir");
            let source = ip_source(&host);
            let peers = peers_file.display().to_string();
            let mut args = vec![
                "--ip",
                &source,
                "--query",
                "demo",
                "--interval",
                "1s",
                "--connect",
                "--peers-file",
                &peers,
                "--peers-format",
                "json",
            ];
            args.extend_from_slice(extra_args);
            let mut cmd = beamup_command(&host, release, &args);
            cmd.env("BEAMUP_LOG", "trace").envs(env.iter().copied());
            if release.kind == ReleaseKind::Mix {
                // The mix release is shared: each VM gets its own tmp dir.
                cmd.env("RELEASE_TMP", &tmp);
            }
            Member {
                node: format!("demo@{}", host.addr()),
                peers_file,
                proc: host.spawn(cmd),
                host,
            }
        })
        .collect();
    (net, dir, members)
}

/// Both reporters show the other connected, and both releases list the
/// other in `nodes()` (asked with `cookie`).
fn assert_meshed(release: &Release, members: &[Member], cookie: &str) {
    for (m, other) in [(&members[0], &members[1]), (&members[1], &members[0])] {
        wait_until(
            LONG,
            &format!(
                "{}'s peers file to show {} connected",
                m.host.name, other.node
            ),
            || {
                assert!(m.proc.alive(), "{} exited:\n{}", m.host.name, m.proc.log());
                peer_states(&m.peers_file)
                    .get(&other.node)
                    .is_some_and(|(state, _)| state == "connected")
            },
        );
        let env = [
            ("RELEASE_NODE", m.node.as_str()),
            ("RELEASE_COOKIE", cookie),
        ];
        assert_eq!(
            rpc_erl(&m.host, release, &env, "nodes()."),
            format!("['{}']", other.node),
            "{}",
            m.proc.log()
        );
    }
}

/// No `secrets` in any log (trace level) or peers file.
fn assert_secret(members: &[Member], secrets: &[&str]) {
    for m in members {
        let log = m.proc.log();
        let file = std::fs::read_to_string(&m.peers_file).unwrap_or_default();
        assert!(log.contains("TRACE"), "the log is not at trace level");
        for s in secrets {
            assert!(!log.contains(s), "a cookie shows in {}'s log", m.host.name);
            assert!(
                !file.contains(s),
                "a cookie shows in {}'s peers file",
                m.host.name
            );
        }
    }
}

#[test]
fn cookie_file_wins_over_the_environment_for_release_and_reporter() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir"]);
    let release = mix_release();
    let good = Cookie::new();
    let stale = Cookie::new();
    assert_ne!(good.value, stale.value);
    let file = good.path.display().to_string();
    let (_net, _dir, members) = boot_all(
        "file",
        &release,
        &["--cookie-file", &file],
        &[("RELEASE_COOKIE", &stale.value)],
    );
    assert_meshed(&release, &members, &good.value);
    for m in &members {
        assert!(
            m.proc.log().contains(
                "RELEASE_COOKIE in the environment differs from the cookie of --cookie-file"
            ),
            "no warning about the differing cookie:\n{}",
            m.proc.log()
        );
    }
    assert_secret(&members, &[&good.value, &stale.value]);
}

#[test]
fn relx_with_connect_uses_the_cookie_of_its_vm_args() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "rebar3"]);
    let release = relx_release();
    let (_net, _dir, members) = boot_all("relx", &release, &[], &[]);
    assert_meshed(&release, &members, RELX_FIXTURE_COOKIE);
    assert_secret(&members, &[RELX_FIXTURE_COOKIE]);
}

/// RELX_COOKIE in the environment: relx's `foreground` never passes it to the
/// VM (only its rpc helpers read it), so beamup writes it as the rendered
/// vm.args' `-setcookie`; the VMs and the reporters all use it.
#[test]
fn relx_cookie_from_the_environment_reaches_the_vm_and_the_reporter() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "rebar3"]);
    let release = relx_release();
    let cookie = Cookie::new();
    let (_net, _dir, members) =
        boot_all("relxenv", &release, &[], &[("RELX_COOKIE", &cookie.value)]);
    assert_meshed(&release, &members, &cookie.value);
    assert_secret(&members, &[&cookie.value, RELX_FIXTURE_COOKIE]);
}

/// A `--query` naming the cookie is refused (exit 3): the query is sent to
/// DNS servers, exported as DNS_CLUSTER_QUERY and logged. The query cannot
/// be exported under a cookie variable either (exit 2).
#[test]
fn a_query_never_carries_the_cookie() {
    let dir = TempDir::new("cookiequery");
    let cookie = Cookie::new();
    let cases: [(&[&str], i32, &str); 3] = [
        (
            &["--query", "${RELEASE_COOKIE}.svc"],
            3,
            "--query `${RELEASE_COOKIE}.svc` names RELEASE_COOKIE",
        ),
        (&["--query", "x${RELX_COOKIE:-y}"], 3, "names RELX_COOKIE"),
        (
            &["--query", "demo", "--export-query", "RELEASE_COOKIE"],
            2,
            "--export-query RELEASE_COOKIE",
        ),
    ];
    for (args, code, needle) in cases {
        let mut cmd = std::process::Command::new(testkit::beamup_bin());
        cmd.args(["inspect", "--ip", "cidr:127.0.0.0/8", "--basename", "demo"])
            .arg("--cookie-file")
            .arg(&cookie.path)
            .args(args)
            .env("TMPDIR", dir.path())
            .env("BEAMUP_PLATFORM", "none")
            .env_remove("RELEASE_COOKIE")
            .env_remove("RELX_COOKIE");
        let out = testkit::output_timeout(cmd, Duration::from_secs(30));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !err.contains(&cookie.value),
            "{args:?}: the cookie shows: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: inspect printed a config");
    }
}
