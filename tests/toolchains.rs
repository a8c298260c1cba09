//! Issue 17: beamup on the Erlang and Elixir people run today, not only on the machine's
//! Debian 12 toolchain. Each toolchain is a Debian root from the archive
//! (`scripts/toolchain-roots.sh`); every host of a test runs its commands chrooted into
//! one (`testkit::chroot`), with the demo mix and relx releases built by that root's
//! Elixir and rebar3:
//!
//! | root     | OTP | Elixir | rebar3 |
//! |----------|-----|--------|--------|
//! | bookworm | 25  | 1.14   | 3.19   |
//! | trixie   | 27  | 1.18   | 3.24   |
//! | sid      | 29  | 1.20   | 3.28   |
//!
//! The scenario ([`scenario`]), on two hosts of one family (IPv4-only or IPv6-only)
//! booted through `beamup --connect` (host a with `--init`), discovering each other in
//! DNS with `--interval 30s`: the node is `demo@<address>` with long names (and
//! `-proto_dist inet6_tcp` on IPv6); the two mesh; `erlang:disconnect_node/1` run in a
//! is healed within 2 s (30 s between polls: only the relay's re-dial can do that);
//! `beamup rpc` and `beamup remote` from a fresh process; the release's own `rpc` (mix:
//! through the README's env.sh line; relx: `beamup -- bin/demo rpc`); `beamup doctor`
//! healthy (exit 0) and with another cookie (exit 1, the cookie named as the cause);
//! SIGTERM to `--init` beamup stops the release gracefully (exit 0).
//!
//! The time budget: one cell of the full scenario costs about 5-10 s once the roots and the
//! releases are cached (two VM boots, a dozen rpc VMs of ~0.3 s), so every cell runs all of it:
//! 3 toolchains x (mix, relx) x (IPv4, IPv6), about 2 minutes in all. Cutting the middle
//! toolchain to a smoke would save ~30 s, less than one root's cold build; the cold cost is the
//! roots (debootstrap, once per machine) and the release builds (once per root).
//! [`otp27_and_otp29_nodes_mesh_in_one_cluster`] adds a cluster of two versions, as during a
//! rolling upgrade (OTP supports distribution with the two previous majors).
//!
//! One scenario at a time ([`serial`]): each boots two VMs and a dozen rpc VMs on a
//! two-core machine.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use testkit::boot::ip_source;
use testkit::chroot::{Toolchain, toolchain};
use testkit::{
    Cookie, Host, Net, Proc, Release, ReleaseKind, TempDir, Zone, beamup_bin, beamup_command,
    copy_release, on_terminal, output_timeout, rpc_erl, wait_node, wait_until,
};

/// A deadline for conditions, not a timing assertion.
const LONG: Duration = Duration::from_secs(90);
const DOMAIN: &str = "svc.test";
/// No poll can explain a heal: the relay's re-dial on the nodedown must do it.
const SLOW_INTERVAL: &str = "30s";
/// "Well inside one interval" (the relay heals in ~100 ms; rpc VMs are not involved:
/// the whole measurement runs inside the VM).
const HEAL_BOUND_MS: i64 = 2_000;
use testkit::CONTAINER_PATH as PATH;
use testkit::{succeeded as ok, text};
/// The line README documents for `rel/env.sh.eex`.
const ENV_SH_LINE: &str = "\nif [ -z \"${RELEASE_NODE:-}\" ] && command -v beamup >/dev/null 2>&1; then eval \"$(beamup env)\"; fi\n";

/// A release running behind beamup on one chrooted host.
struct Member {
    host: Host,
    /// The release it runs (its toolchain's build).
    release: Release,
    node: String,
    /// The container's own variables (`docker exec` has them, not beamup's exports).
    container_env: Vec<(String, String)>,
    vm: Proc,
}

impl Member {
    /// `program args` inside the host's root with only the container's environment.
    fn fresh(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let home = &self.host.log_dir;
        testkit::exec_command(&self.host, program, args, home, &self.container_env)
    }

    fn beamup(&self, args: &[&str]) -> Output {
        output_timeout(self.fresh(beamup_bin(), args), LONG)
    }
}

/// Boots `release` through `beamup --connect` on `host`, discovering `demo.svc.test`.
fn boot(host: &Host, release: &Release, cookie: &Cookie, init: bool) -> Member {
    let tmp = host.log_dir.join(format!("{}.release-tmp", host.name));
    std::fs::create_dir_all(&tmp).expect("create the release tmp dir");
    let tmp = tmp.to_string_lossy().into_owned();
    let source = ip_source(host);
    let query = format!("demo.{DOMAIN}");
    let cookie_path = cookie.path.to_string_lossy().into_owned();
    let mut args = vec![
        "--ip",
        &source,
        "--query",
        &query,
        "--interval",
        SLOW_INTERVAL,
        "--connect",
        "--cookie-file",
        &cookie_path,
    ];
    if init {
        args.push("--init");
    }
    let mut cmd = beamup_command(host, release, &args);
    // The release is shared between the hosts: each VM gets its own tmp dir, which is
    // also how `docker exec` finds the boot record (the image's RELEASE_TMP).
    cmd.env("RELEASE_TMP", &tmp).env("BEAMUP_LOG", "debug");
    let tmpdir = cmd
        .get_envs()
        .find(|(k, _)| *k == "TMPDIR")
        .and_then(|(_, v)| v)
        .expect("beamup_command sets TMPDIR")
        .to_string_lossy()
        .into_owned();
    Member {
        host: host.clone(),
        release: release.clone(),
        node: format!("demo@{}", host.addr()),
        container_env: vec![("TMPDIR".into(), tmpdir), ("RELEASE_TMP".into(), tmp)],
        vm: host.spawn(cmd),
    }
}

/// Asks `m`'s node an Erlang expression (see `testkit::rpc_erl`).
fn ask(m: &Member, cookie: &Cookie, expr: &str) -> String {
    let env = [
        ("RELEASE_NODE", m.node.as_str()),
        ("RELEASE_COOKIE", cookie.value.as_str()),
    ];
    rpc_erl(&m.host, &m.release, &env, expr)
}

/// Waits until `m`'s node answers rpc (it registered with its epmd and is reachable).
fn wait_up(m: &Member, cookie: &Cookie) {
    let env = [
        ("RELEASE_NODE", m.node.as_str()),
        ("RELEASE_COOKIE", cookie.value.as_str()),
    ];
    wait_node(&m.host, &m.release, &m.vm, &env);
}

/// Waits until every member's `nodes()` is exactly the other members.
fn wait_mesh(members: &[&Member], cookie: &Cookie, what: &str) {
    let deadline = Instant::now() + LONG;
    loop {
        let views: Vec<(String, String)> = members
            .iter()
            .map(|m| {
                let mut others: Vec<&str> = members
                    .iter()
                    .filter(|o| o.node != m.node)
                    .map(|o| o.node.as_str())
                    .collect();
                others.sort();
                let want = format!(
                    "[{}]",
                    others
                        .iter()
                        .map(|n| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(",")
                );
                // `~p` folds a long list over lines: compare without the spaces.
                let got = ask(m, cookie, "lists:sort(nodes())").replace(' ', "");
                (want, got)
            })
            .collect();
        if views.iter().all(|(want, got)| want == got) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: (want, got) per member: {views:?}\nfirst member's log:\n{}",
            members[0].vm.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cell's release; for mix a private copy whose env.sh has the README's line.
fn release_for(tc: &Toolchain, kind: ReleaseKind) -> (Option<TempDir>, Release) {
    let built = tc.release(kind);
    if kind == ReleaseKind::Relx {
        return (None, built);
    }
    let (dir, copy) = copy_release(&built);
    let mut env_sh = std::fs::read_to_string(copy.env_sh()).expect("read env.sh");
    env_sh.push_str(ENV_SH_LINE);
    std::fs::write(copy.env_sh(), env_sh).expect("write env.sh");
    (Some(dir), copy)
}

/// Erlang, run inside a VM: `erlang:disconnect_node(Peer)`, then waits (up to 5 s, in
/// the VM) for the peer to be back in `nodes()`; the milliseconds it took, or `timeout`.
fn heal_expr(peer: &str) -> String {
    format!(
        "P = '{peer}', T0 = erlang:monotonic_time(millisecond), \
         true = erlang:disconnect_node(P), \
         W = fun Wait(N) -> case lists:member(P, nodes()) of \
           true -> erlang:monotonic_time(millisecond) - T0; \
           false when N > 0 -> timer:sleep(10), Wait(N - 1); \
           false -> timeout end end, \
         W(500)."
    )
}

/// `beamup doctor` on `m`'s host with `cookie`: (exit code, stdout).
fn doctor(m: &Member, release: &Release, cookie: &Cookie) -> (i32, String) {
    let source = ip_source(&m.host);
    let query = format!("demo.{DOMAIN}");
    let cookie_path = cookie.path.to_string_lossy().into_owned();
    let mut cmd = beamup_command(
        &m.host,
        release,
        &[
            "doctor",
            "--ip",
            &source,
            "--query",
            &query,
            "--cookie-file",
            &cookie_path,
        ],
    );
    cmd.env("RELEASE_TMP", &m.container_env[1].1);
    let out = output_timeout(cmd, LONG);
    let mut report = text(&out.stdout);
    report.push_str(&text(&out.stderr));
    (out.status.code().unwrap_or(-1), report)
}

fn scenario(suite: &str, kind: ReleaseKind, v4: bool) {
    let _heavy = testkit::heavy::exclusive();
    let tc = toolchain(suite);
    let started = Instant::now();
    let (_copy, release) = release_for(&tc, kind);
    let tag = format!(
        "{}{}{}",
        &suite[..2],
        if kind == ReleaseKind::Mix { "m" } else { "r" },
        if v4 { 4 } else { 6 }
    );
    let mut net = Net::new(&tag);
    let a = net.add_host("a", v4, !v4).in_root(&tc);
    let b = net.add_host("b", v4, !v4).in_root(&tc);
    net.start_dns(&Zone::service("demo", DOMAIN, &[&a, &b]));
    let cookie = Cookie::new();
    let ma = boot(&a, &release, &cookie, true);
    let mb = boot(&b, &release, &cookie, false);
    let ask = |m: &Member, expr: &str| ask(m, &cookie, expr);
    wait_up(&ma, &cookie);
    wait_up(&mb, &cookie);
    let booted = started.elapsed();

    // --- the toolchain is the one of the root, the name is the address --------------
    let otp = ask(&ma, "erlang:system_info(otp_release)");
    assert_eq!(otp, format!("\"{}\"", tc.otp_major()), "OTP of {suite}");
    assert_eq!(ask(&ma, "node()"), format!("'{}'", ma.node));
    assert_eq!(ask(&ma, "net_kernel:longnames()"), "true");
    if !v4 {
        assert_eq!(
            ask(&ma, "init:get_argument(proto_dist)"),
            r#"{ok,[["inet6_tcp"]]}"#
        );
    }

    // --- mesh ---------------------------------------------------------------------------
    let mesh = |what: &str| wait_mesh(&[&ma, &mb], &cookie, what);
    mesh("the two nodes to mesh");
    let meshed = started.elapsed();

    // --- the reporters saw their VM register: the watch passes this OTP's epmd's answer ---
    for m in [&ma, &mb] {
        assert!(
            testkit::saw_registration(&m.vm.log()),
            "{}'s reporter did not see its VM (OTP {}) register:\n{}",
            m.host.name,
            tc.otp_major(),
            m.vm.log()
        );
    }

    // --- beamup rpc from a fresh process ----------------------------------------------------
    let expr = match kind {
        ReleaseKind::Mix => "IO.puts(node())",
        ReleaseKind::Relx => "node().",
    };
    let out = ok(&ma.beamup(&["rpc", expr]), "beamup rpc");
    assert!(out.contains(&ma.node), "beamup rpc printed {out:?}");

    // --- a forced disconnect healed by the relay, not by a poll --------------------------
    let heal = ask(&ma, &heal_expr(&mb.node));
    let heal_ms: i64 = heal.parse().unwrap_or_else(|_| {
        panic!(
            "disconnect_node in a: {heal} (not healed within 5 s, --interval {SLOW_INTERVAL})\n\
             a's log:\n{}",
            ma.vm.log()
        )
    });
    assert!(
        heal_ms <= HEAL_BOUND_MS,
        "healed only after {heal_ms} ms (bound {HEAL_BOUND_MS} ms at --interval {SLOW_INTERVAL})"
    );
    mesh("the mesh after the heal");

    // --- beamup remote -----------------------------------------------------------------
    let (remote_input, prompt) = match kind {
        ReleaseKind::Mix => (
            "IO.puts(\"remote-answer \" <> Atom.to_string(node()))\n",
            format!("{})1> ", ma.node),
        ),
        ReleaseKind::Relx => (
            "io:format(\"remote-answer ~s~n\", [node()]).\n",
            format!("{})1> ", ma.node),
        ),
    };
    let needle = format!("remote-answer {}", ma.node);
    let shell = format!("{} remote", beamup_bin().display());
    let mut tty = ma.fresh("script", &["-qfec", &shell, "/dev/null"]);
    tty.env("TERM", "xterm");
    let printed = on_terminal(tty, &prompt, remote_input, &needle, LONG);
    assert!(
        printed.contains(&needle),
        "beamup remote printed:\n{printed}"
    );

    // --- the release's own rpc ------------------------------------------------------------
    match kind {
        ReleaseKind::Mix => {
            // beamup on PATH, as /usr/local/bin/beamup is in the image.
            let bin = TempDir::new("tcbin");
            std::os::unix::fs::symlink(beamup_bin(), bin.path().join("beamup")).expect("link");
            let mut cmd = ma.fresh(release.bin(), &["rpc", "IO.puts(node())"]);
            cmd.env("PATH", format!("{}:{PATH}", bin.path().display()));
            let printed = ok(
                &output_timeout(cmd, LONG),
                "bin/demo rpc with the env.sh line",
            );
            assert_eq!(printed.trim(), ma.node);
        }
        ReleaseKind::Relx => {
            let bin = release.bin();
            let out = ma.beamup(&["--", &bin.to_string_lossy(), "rpc", "erlang", "node"]);
            let printed = ok(&out, "beamup -- bin/demo rpc erlang node");
            assert!(printed.contains(&ma.node), "{printed:?}");
        }
    }

    // --- doctor: healthy, then with another cookie ------------------------------------------
    let (code, report) = doctor(&ma, &release, &cookie);
    assert_eq!(code, 0, "doctor on a healthy pair:\n{report}");
    assert!(
        report.contains("verdict: 1 of 1 peer connected; all checks passed"),
        "{report}"
    );
    let other = Cookie::new();
    let (code, report) = doctor(&ma, &release, &other);
    assert_eq!(code, 1, "doctor with another cookie:\n{report}");
    assert!(
        report.contains("rejected the cookie") && report.contains("another cookie"),
        "doctor with another cookie does not name the cookie:\n{report}"
    );
    for m in [&ma, &mb] {
        assert!(
            !m.vm.log().contains(&cookie.value),
            "the cookie is in {}'s log",
            m.host.name
        );
    }

    // --- --init: SIGTERM stops the release gracefully -------------------------------------
    let mut ma = ma;
    ma.vm.signal(Signal::SIGTERM);
    let status = ma
        .vm
        .wait_exit(LONG)
        .unwrap_or_else(|| panic!("a did not stop after SIGTERM:\n{}", ma.vm.log()));
    let log = ma.vm.log();
    assert_eq!(status.code(), Some(0), "--init exit after SIGTERM:\n{log}");
    assert!(
        log.contains("forwarded to the release signal=SIGTERM"),
        "{log}"
    );
    assert!(log.contains("release exited status=0"), "{log}");
    wait_until(LONG, "b to see a leave", || ask(&mb, "nodes()") == "[]");
    println!(
        "MEASURE {suite} (OTP {}, Elixir {}, rebar3 {}) {kind:?} {}: booted {:.1} s, \
         meshed {:.1} s, relay heal {heal_ms} ms, done {:.1} s",
        tc.otp,
        tc.elixir,
        tc.rebar3,
        if v4 { "IPv4" } else { "IPv6" },
        booted.as_secs_f64(),
        meshed.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    drop(net);
}

/// Each root holds the toolchain the README's table names, and the beamup under test
/// (a glibc build of the machine's Debian 12) runs in it.
#[test]
fn each_root_has_its_toolchain_and_runs_beamup() {
    for (suite, otp, elixir, rebar3) in [
        ("bookworm", "25.", "1.14.", "3.19."),
        ("trixie", "27.", "1.18.", "3.24."),
        ("sid", "29.", "1.20.", "3.28."),
    ] {
        let tc = toolchain(suite);
        assert!(tc.otp.starts_with(otp), "{suite}: OTP {}", tc.otp);
        assert!(
            tc.elixir.starts_with(elixir),
            "{suite}: Elixir {}",
            tc.elixir
        );
        assert!(
            tc.rebar3.starts_with(rebar3),
            "{suite}: rebar3 {}",
            tc.rebar3
        );
        let mut cmd = tc.command(beamup_bin());
        cmd.arg("--version");
        let out = output_timeout(cmd, LONG);
        let printed = ok(&out, &format!("beamup --version in the {suite} root"));
        assert!(printed.starts_with("beamup "), "{printed}");
    }
}

#[test]
fn sid_otp29_mix_ipv4() {
    scenario("sid", ReleaseKind::Mix, true);
}

#[test]
fn sid_otp29_mix_ipv6() {
    scenario("sid", ReleaseKind::Mix, false);
}

#[test]
fn sid_otp29_relx_ipv4() {
    scenario("sid", ReleaseKind::Relx, true);
}

#[test]
fn sid_otp29_relx_ipv6() {
    scenario("sid", ReleaseKind::Relx, false);
}

#[test]
fn trixie_otp27_mix_ipv4() {
    scenario("trixie", ReleaseKind::Mix, true);
}

#[test]
fn trixie_otp27_mix_ipv6() {
    scenario("trixie", ReleaseKind::Mix, false);
}

#[test]
fn trixie_otp27_relx_ipv4() {
    scenario("trixie", ReleaseKind::Relx, true);
}

#[test]
fn trixie_otp27_relx_ipv6() {
    scenario("trixie", ReleaseKind::Relx, false);
}

#[test]
fn bookworm_otp25_mix_ipv4() {
    scenario("bookworm", ReleaseKind::Mix, true);
}

#[test]
fn bookworm_otp25_mix_ipv6() {
    scenario("bookworm", ReleaseKind::Mix, false);
}

#[test]
fn bookworm_otp25_relx_ipv4() {
    scenario("bookworm", ReleaseKind::Relx, true);
}

#[test]
fn bookworm_otp25_relx_ipv6() {
    scenario("bookworm", ReleaseKind::Relx, false);
}

/// A cluster of two versions, as during a rolling upgrade: an OTP 27 / Elixir 1.18 mix node
/// and an OTP 29 relx node (rebar3 3.28), IPv6-only, each through its own toolchain's beamup
/// boot, mesh; a forced disconnect between them is healed by the relay on either side.
#[test]
fn otp27_and_otp29_nodes_mesh_in_one_cluster() {
    let _heavy = testkit::heavy::exclusive();
    let (old, new) = (toolchain("trixie"), toolchain("sid"));
    let (old_release, new_release) = (old.mix_release(), new.relx_release());
    let mut net = Net::new("tcmixed");
    let a = net.add_host("a", false, true).in_root(&old);
    let b = net.add_host("b", false, true).in_root(&new);
    net.start_dns(&Zone::service("demo", DOMAIN, &[&a, &b]));
    let cookie = Cookie::new();
    let ma = boot(&a, &old_release, &cookie, false);
    let mb = boot(&b, &new_release, &cookie, false);
    wait_up(&ma, &cookie);
    wait_up(&mb, &cookie);
    assert_eq!(
        ask(&ma, &cookie, "erlang:system_info(otp_release)"),
        "\"27\""
    );
    assert_eq!(
        ask(&mb, &cookie, "erlang:system_info(otp_release)"),
        "\"29\""
    );
    wait_mesh(&[&ma, &mb], &cookie, "an OTP 27 and an OTP 29 node to mesh");
    for (from, to) in [(&ma, &mb), (&mb, &ma)] {
        let heal = ask(from, &cookie, &heal_expr(&to.node));
        let heal_ms: i64 = heal.parse().unwrap_or_else(|_| {
            panic!(
                "disconnect_node in {}: {heal}\nits log:\n{}",
                from.host.name,
                from.vm.log()
            )
        });
        assert!(
            heal_ms <= HEAL_BOUND_MS,
            "{} -> {}: healed only after {heal_ms} ms",
            from.host.name,
            to.host.name
        );
        wait_mesh(&[&ma, &mb], &cookie, "the mesh after the heal");
    }
    drop(net);
}
