//! Operating a running node (issue 8 section 3): real mix and relx releases booted
//! through beamup in namespace hosts, IPv4 and IPv6-only, then operated from a FRESH
//! process that has only the container's own environment (what `docker exec` gets:
//! PATH, HOME, TMPDIR, RELEASE_TMP when the "image" sets it; none of beamup's exports):
//! `beamup rpc` / `remote` / `pid` / `stop`, `beamup -- bin/demo rpc ...`, the
//! release's own `bin/demo rpc` through the documented env.sh line, and
//! `beamup status --min-peers` over a 3-node `--connect` cluster.
//!
//! One test at a time ([`serial`]): each boots up to three VMs on a two-core machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use testkit::boot::ip_source;
use testkit::{
    Cookie, Host, Net, Proc, Release, ReleaseKind, TempDir, Zone, beamup_bin, beamup_command,
    copy_release, mix_release, relx_release, wait_node, wait_until,
};

/// A deadline for conditions, not a timing assertion.
const LONG: Duration = Duration::from_secs(60);
use testkit::CONTAINER_PATH as PATH;
use testkit::{succeeded as ok, text};

/// A release running behind beamup, and the "container environment" it was given.
struct Booted {
    host: Host,
    node: String,
    /// The cookie's value (never to be printed anywhere).
    cookie: String,
    /// The container's own variables (TMPDIR, maybe RELEASE_TMP), as `docker exec` has them.
    container_env: Vec<(String, String)>,
    vm: Proc,
}

impl Booted {
    /// `program args` inside the host with only the container's environment.
    fn fresh(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let home = Path::new("/root");
        testkit::exec_command(&self.host, program, args, home, &self.container_env)
    }

    fn beamup(&self, args: &[&str]) -> Output {
        testkit::output_timeout(self.fresh(beamup_bin(), args), LONG)
    }

    /// The directory beamup rendered into (and recorded the boot in).
    fn render_dir(&self) -> PathBuf {
        let get = |k: &str| {
            self.container_env
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| PathBuf::from(v))
        };
        get("RELEASE_TMP").unwrap_or_else(|| {
            get("TMPDIR")
                .expect("TMPDIR")
                .join("beamup")
                .join(&self.node)
        })
    }
}

/// Boots `release` through beamup on `host` with a cookie file (so the ops commands
/// must read the cookie again from it) and `extra` flags.
fn boot(
    host: &Host,
    release: &Release,
    cookie: &Cookie,
    extra: &[&str],
    container_env: &[(&str, &str)],
) -> Booted {
    let source = ip_source(host);
    let mut args = vec![
        "--ip",
        source.as_str(),
        "--cookie-file",
        cookie.path.to_str().expect("utf8 path"),
    ];
    args.extend_from_slice(extra);
    let mut cmd = beamup_command(host, release, &args);
    cmd.envs(container_env.iter().copied());
    let tmpdir = cmd
        .get_envs()
        .find(|(k, _)| *k == "TMPDIR")
        .and_then(|(_, v)| v)
        .expect("beamup_command sets TMPDIR")
        .to_string_lossy()
        .into_owned();
    let mut env: Vec<(String, String)> = vec![("TMPDIR".into(), tmpdir)];
    env.extend(
        container_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let node = format!("demo@{}", host.addr());
    let vm = host.spawn(cmd);
    wait_node(
        host,
        release,
        &vm,
        &[
            ("RELEASE_NODE", node.as_str()),
            ("RELEASE_COOKIE", cookie.value.as_str()),
        ],
    );
    Booted {
        host: host.clone(),
        node,
        cookie: cookie.value.clone(),
        container_env: env,
        vm,
    }
}

/// Names, sizes and modification times under `dir`: "changed nothing on disk".
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .expect("read the render dir")
        .flatten()
        .map(|e| {
            let meta = e.metadata().expect("metadata");
            (
                e.file_name().to_string_lossy().into_owned(),
                (meta.len(), meta.modified().expect("mtime")),
            )
        })
        .collect()
}

/// rpc, passthrough, remote, pid and stop from a fresh process, for one release and
/// address family.
fn operate(release: &Release, tag: &str, v4: bool) {
    let _heavy = testkit::heavy::exclusive();
    let mut net = Net::new(tag);
    let host = net.add_host("n1", v4, !v4);
    let cookie = Cookie::new();
    let mut b = boot(&host, release, &cookie, &[], &[]);
    let dir = b.render_dir();
    let state_path = dir.join("beamup.state.json");
    let state_text = std::fs::read_to_string(&state_path).expect("the boot record");
    let state: serde_json::Value = serde_json::from_str(&state_text).expect("JSON");
    assert_eq!(state["node"], b.node.as_str());
    assert_eq!(state["pid"], b.vm.pid());
    assert!(
        state["cookie"]
            .as_str()
            .is_some_and(|c| c.starts_with("file:")),
        "{state}"
    );
    assert!(
        !state_text.contains(&b.cookie),
        "the cookie is in the boot record"
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&state_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    if !v4 {
        assert!(state["inet6"].is_string(), "{state}");
    }

    // rpc: Elixir through mix's `rpc`, Erlang through relx's `eval`.
    let (expr, remote_input) = match release.kind {
        ReleaseKind::Mix => (
            "IO.puts(node())",
            "IO.puts(\"remote-answer \" <> Atom.to_string(node()))\n",
        ),
        ReleaseKind::Relx => ("node().", "io:format(\"remote-answer ~s~n\", [node()]).\n"),
    };
    let out = ok(&b.beamup(&["rpc", expr]), "beamup rpc");
    assert!(out.contains(&b.node), "beamup rpc printed {out:?}");

    // The release's own command through beamup: the same identity, nothing rendered,
    // no reporter forked.
    let mut cmd = b.fresh(
        beamup_bin(),
        &["--", release.bin().to_str().expect("utf8"), "rpc"],
    );
    let rpc_args: Vec<&str> = match release.kind {
        ReleaseKind::Mix => vec![expr],
        ReleaseKind::Relx => vec!["erlang", "node"],
    };
    cmd.args(&rpc_args).env("BEAMUP_LOG", "debug");
    let before = snapshot(&dir);
    let out = testkit::output_timeout(cmd, LONG);
    let printed = ok(&out, "beamup -- bin/demo rpc");
    assert!(printed.contains(&b.node), "{printed:?}");
    let log = text(&out.stderr);
    assert!(!log.contains("reporter forked"), "{log}");
    assert!(
        !log.contains("starting"),
        "the release command booted: {log}"
    );
    assert_eq!(snapshot(&dir), before, "a non-boot command rendered files");

    // remote: a piped expression is answered by the running node.
    let needle = format!("remote-answer {}", b.node);
    let shell = format!("{} remote", beamup_bin().display());
    let mut tty = b.fresh("script", &["-qfec", &shell, "/dev/null"]);
    // `docker exec -it` passes TERM; without it iex falls back to a limited shell.
    tty.env("TERM", "xterm");
    let printed =
        testkit::on_terminal(tty, &format!("{})1> ", b.node), remote_input, &needle, LONG);
    assert!(
        printed.contains(&needle),
        "beamup remote printed:\n{printed}"
    );

    // pid: the VM's OS pid, which is beamup's (the exec kept it).
    let out = ok(&b.beamup(&["pid"]), "beamup pid");
    assert_eq!(out.trim(), b.vm.pid().to_string());

    // Nothing printed the cookie.
    assert!(!b.vm.log().contains(&b.cookie));

    // stop: the node stops gracefully.
    // relx's `stop` waits until the VM's pid is gone: reap the VM meanwhile (in a
    // container the VM is PID 1 and its exit ends everything).
    let mut stop = b.fresh(beamup_bin(), &["stop"]);
    stop.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut stop = stop.spawn().expect("beamup stop");
    let status =
        b.vm.wait_exit(LONG)
            .expect("the node stops after beamup stop");
    assert!(status.success(), "the release exited with {status}");
    let deadline = Instant::now() + LONG;
    let stopped = loop {
        if let Some(s) = stop.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "beamup stop did not return");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(stopped.success(), "beamup stop exited with {stopped}");
    let out = b.beamup(&["rpc", expr]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    // The release's own command through beamup says the same, and boots nothing.
    let mut cmd = b.fresh(
        beamup_bin(),
        &["--", release.bin().to_str().expect("utf8"), "rpc"],
    );
    cmd.args(&rpc_args);
    let out = testkit::output_timeout(cmd, LONG);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out.stderr));
    drop(net);
}

#[test]
fn mix_ipv4_rpc_remote_pid_stop_from_a_fresh_process() {
    operate(&mix_release(), "opmix4", true);
}

#[test]
fn mix_ipv6_rpc_remote_pid_stop_from_a_fresh_process() {
    operate(&mix_release(), "opmix6", false);
}

#[test]
fn relx_ipv4_rpc_remote_pid_stop_from_a_fresh_process() {
    operate(&relx_release(), "oprelx4", true);
}

#[test]
fn relx_ipv6_rpc_remote_pid_stop_from_a_fresh_process() {
    operate(&relx_release(), "oprelx6", false);
}

/// Without beamup nothing is found: a clear line and exit 6, status exit 1.
#[test]
fn nothing_started_here_is_a_clear_error() {
    let dir = TempDir::new("opnone");
    let run = |args: &[&str]| {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(args)
            .env_clear()
            .env("PATH", PATH)
            .env("TMPDIR", dir.path())
            .stdin(Stdio::null());
        cmd.output().expect("run beamup")
    };
    let out = run(&["rpc", "IO.puts(node())"]);
    assert_eq!(out.status.code(), Some(6));
    let err = text(&out.stderr);
    assert!(
        err.contains("no node started through beamup here") && err.contains("RELEASE_TMP"),
        "{err}"
    );
    let out = run(&["status", "--min-peers", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("not ready: "), "{out:?}");
    assert!(
        std::fs::read_dir(dir.path()).expect("ls").next().is_none(),
        "status wrote something"
    );
}

/// The documented env.sh line makes the release's OWN `bin/demo rpc` work from a
/// fresh process (RELEASE_TMP set by the "image" this time).
#[test]
fn env_sh_line_gives_the_release_script_the_identity() {
    let _heavy = testkit::heavy::exclusive();
    let (_copy, release) = copy_release(&mix_release());
    let mut env_sh = std::fs::read_to_string(release.env_sh()).expect("env.sh");
    env_sh.push_str(ENV_SH_LINE);
    std::fs::write(release.env_sh(), env_sh).expect("write env.sh");
    let mut net = Net::new("openvsh");
    let host = net.add_host("n1", false, true);
    let tmp = net.dir().join("release-tmp");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    let tmp = tmp.to_str().expect("utf8").to_string();
    let cookie = Cookie::new();
    let b = boot(&host, &release, &cookie, &[], &[("RELEASE_TMP", &tmp)]);
    // beamup on PATH, as /usr/local/bin/beamup is in the image.
    let bin = TempDir::new("opbin");
    std::os::unix::fs::symlink(beamup_bin(), bin.path().join("beamup")).expect("link");
    let mut cmd = b.fresh(release.bin(), &["rpc", "IO.puts(node())"]);
    cmd.env("PATH", format!("{}:{PATH}", bin.path().display()));
    let out = testkit::output_timeout(cmd, LONG);
    let printed = ok(&out, "bin/demo rpc with the env.sh line");
    assert_eq!(printed.trim(), b.node);
    assert!(!text(&out.stderr).contains(&b.cookie));
    // `beamup env` never prints the cookie itself.
    let out = ok(&b.beamup(&["env"]), "beamup env");
    assert!(out.contains("export RELEASE_NODE="), "{out}");
    assert!(!out.contains(&b.cookie), "beamup env printed the cookie");
    drop(net);
}

/// The line README documents for `rel/env.sh.eex`.
const ENV_SH_LINE: &str = "\nif [ -z \"${RELEASE_NODE:-}\" ] && command -v beamup >/dev/null 2>&1; then eval \"$(beamup env)\"; fi\n";

/// `beamup status --min-peers 2` turns 0 once a 3-node `--connect` cluster meshes,
/// 1 after a peer is gone, 1 when the reporter is dead; it changes nothing on disk.
#[test]
fn status_follows_the_cluster_and_the_reporter() {
    let _heavy = testkit::heavy::exclusive();
    let mut net = Net::new("opstat");
    let hosts: Vec<Host> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| net.add_host(n, true, false))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&Zone::service("demo", "svc.test", &refs));
    let release = mix_release();
    let flags = [
        "--query",
        "demo",
        "--connect",
        "--interval",
        "1s",
        "--leave-after",
        "2",
    ];
    let cookie = Cookie::new();
    let mut members: Vec<Booted> = hosts
        .iter()
        .map(|host| boot(host, &release, &cookie, &flags, &[]))
        .collect();
    let status = |m: &Booted, args: &[&str]| {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        let out = m.beamup(&all);
        (out.status.code(), text(&out.stdout))
    };

    wait_until(
        LONG,
        "`status --min-peers 2` to pass on every member",
        || {
            members
                .iter()
                .all(|m| status(m, &["--min-peers", "2"]).0 == Some(0))
        },
    );
    let (_, line) = status(&members[0], &["--min-peers", "2"]);
    assert!(line.starts_with("ready: 2 of 2 peers connected"), "{line}");
    let (code, line) = status(&members[0], &["--min-peers", "3"]);
    assert_eq!(code, Some(1), "{line}");
    let (code, json) = status(&members[0], &["--json", "--min-peers", "2"]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&json).expect("status --json");
    assert_eq!(doc["ready"], true, "{doc}");
    assert_eq!(doc["counted"], 2, "{doc}");
    assert_eq!(doc["node"], members[0].node.as_str());
    let reporter = doc["status"]["reporter_pid"]
        .as_i64()
        .expect("reporter_pid") as i32;

    // A peer is gone: its neighbours are no longer ready for 2 peers.
    members[2].vm.kill9();
    wait_until(LONG, "`status --min-peers 2` to fail after n3 died", || {
        status(&members[0], &["--min-peers", "2"]).0 == Some(1)
    });
    let (_, line) = status(&members[0], &["--min-peers", "2"]);
    assert!(line.starts_with("not ready: 1 of"), "{line}");
    assert_eq!(status(&members[0], &["--min-peers", "1"]).0, Some(0));

    // The reporter dies: stale, whatever the peers were.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(reporter),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill the reporter of n1");
    wait_until(LONG, "`status` to fail once the reporter is dead", || {
        status(&members[0], &[]).0 == Some(1)
    });
    let (_, line) = status(&members[0], &[]);
    assert!(
        line.contains(&format!("reporter (pid {reporter})")) && line.contains("gone"),
        "{line}"
    );

    // Read-only: status changes nothing in the render directory.
    let dir = members[0].render_dir();
    let before = snapshot(&dir);
    status(&members[0], &["--json"]);
    status(&members[0], &["--min-peers", "1"]);
    assert_eq!(snapshot(&dir), before);
    drop(members);
    drop(net);
}
