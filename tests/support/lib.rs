//! The shared fixture of beamup's integration tests (tests/tests.rs) and benchmarks
//! (bench/*.rs), in the spirit of fd's `tests/testenv/mod.rs`; a crate of its own
//! (`beamup-testkit`, lib name `testkit`) so it is compiled once for all of them:
//!
//! - [`beamup_bin`], [`require`], [`wait_until`], [`TempDir`], [`output_timeout`]: basics;
//! - [`heavy`]: the lock every test that boots BEAM VMs, containers or builds takes;
//! - [`release`]: the demo mix and rebar3 releases, built once per target dir and cached;
//! - [`chroot`]: the Debian roots of other OTP/Elixir versions, hosts chrooted into them;
//! - [`net`]: several "hosts" on one machine (network namespaces on a bridge), dnsmasq,
//!   processes started inside them; everything is torn down on `Drop`, also on panic.
//!
//! Every test gets the real tools (erl, elixir, rebar3, dnsmasq, iproute2); a missing
//! prerequisite fails loudly with what to install, never skips.

pub mod boot;
pub mod chroot;
pub mod heavy;
pub mod net;
pub mod pid1;
pub mod release;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use net::{Host, Net, Proc, Zone};
pub use release::{
    Release, ReleaseKind, copy_release, mix_release, relx_release, rpc, rpc_erl, try_rpc, wait_node,
};

/// The beamup binary cargo built for this test run.
///
/// `CARGO_BIN_EXE_beamup` exists only when compiling a test or bench target, not this
/// library, so it is found the way that variable's value is made: cargo builds the bin
/// before any test or bench and puts it in the profile dir (`target[/<triple>]/<profile>/`),
/// the parent of `deps/` where the test or bench executable itself runs from.
/// (tests/harness_selftest.rs checks that both agree.)
pub fn beamup_bin() -> PathBuf {
    profile_dir().join("beamup")
}

/// `target[/<triple>]/<profile>`: where cargo put the running test or bench executable
/// (in its `deps/`) and the beamup binary.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test executable");
    match exe.parent() {
        Some(deps) if deps.file_name() == Some(OsStr::new("deps")) => deps
            .parent()
            .expect("deps/ has a parent: the profile dir")
            .to_path_buf(),
        _ => panic!(
            "{} is not a cargo test or bench executable (expected it in <target>/<profile>/deps/)",
            exe.display()
        ),
    }
}

/// The target dir's scratch space, what `CARGO_TARGET_TMPDIR` names for tests and
/// benches (`<target>/tmp`): the profile dir's nearest ancestor holding the
/// `CACHEDIR.TAG` cargo writes at the target dir's root.
pub fn target_tmpdir() -> PathBuf {
    let profile = profile_dir();
    let root = profile
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .unwrap_or_else(|| profile.parent().unwrap_or(&profile));
    root.join("tmp")
}

/// The repository's root (this crate lives in `tests/support`).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Fails the test when one of `tools` is not on PATH.
pub fn require(tools: &[&str]) {
    for tool in tools {
        if which(tool).is_none() {
            panic!("missing {tool}: run scripts/test.sh which installs it");
        }
    }
}

/// Fails the test unless it runs as root (namespaces, veths and bridges need it).
pub fn require_root() {
    if !nix::unistd::geteuid().is_root() {
        panic!(
            "this test creates network namespaces and must run as root: run scripts/test.sh as root"
        );
    }
}

/// The full path of `tool` found on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Polls `f` every 50 ms until it returns true; panics naming `what` after `timeout`.
/// (A deadline for a condition, not a timing assertion: `timeout` is generous.)
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` to completion with stdout/stderr captured; kills it and panics if it
/// takes longer than `timeout` (so a hung rpc fails the test instead of hanging it).
pub fn output_timeout(mut cmd: Command, timeout: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let dir = TempDir::new("out");
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let stdout = std::fs::File::create(&out_path).expect("create stdout capture file");
    let stderr = std::fs::File::create(&err_path).expect("create stderr capture file");
    // Files rather than pipes: a grandchild that keeps the pipe open (epmd started by
    // the VM) would otherwise block the read after the command itself exited.
    cmd.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {shown}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{shown} did not finish within {timeout:?}; output so far:\n{}{}",
                    String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()),
                    String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default())
                );
            }
            Err(e) => panic!("waiting for {shown}: {e}"),
        }
    };
    Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    }
}

/// Runs a setup command (ip, cp, ...) and panics with its output unless it succeeds.
pub fn run_ok(program: impl AsRef<OsStr>, args: &[&str]) -> String {
    let program = program.as_ref();
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{program:?} {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A directory removed with everything in it on Drop (also when the test panics).
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A fresh directory `beamup-<tag>-<pid>-<n>-<nanos>` under the system temp dir.
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("beamup-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A distribution cookie in a 0600 file (as a Docker secret would be), for
/// `--cookie-file`; tests check that `value` never shows up in any log.
#[derive(Debug)]
pub struct Cookie {
    pub value: String,
    pub path: PathBuf,
    _dir: TempDir,
}

impl Cookie {
    pub fn new() -> Cookie {
        let dir = TempDir::new("cookie");
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let value = format!("secret{}x{nanos:x}", std::process::id());
        let path = dir.path().join("cookie");
        release::write_private(&path, &value);
        Cookie {
            value,
            path,
            _dir: dir,
        }
    }
}

impl Default for Cookie {
    fn default() -> Self {
        Cookie::new()
    }
}

/// `beamup <args> -- <release bin> <start args>` inside `host` (not started yet).
///
/// TMPDIR is a fresh dir inside the Net's temp dir: beamup renders vm.args to
/// `$TMPDIR/beamup/`, and hosts share one filesystem (unlike containers), so two
/// beamups with the default /tmp would overwrite each other's files.
pub fn beamup_command(host: &Host, release: &Release, args: &[&str]) -> Command {
    beamup_command_via(host, &[], release, args)
}

/// [`beamup_command`] run through `wrapper` (a program and its arguments that end by
/// running the rest of the command line, e.g. `unshare --pid --fork`).
pub fn beamup_command_via(
    host: &Host,
    wrapper: &[&str],
    release: &Release,
    args: &[&str],
) -> Command {
    beamup_command_with(&beamup_bin(), host, wrapper, release, args)
}

/// [`beamup_command_via`] with another beamup binary (the benchmarks time the static one).
pub fn beamup_command_with(
    bin: &Path,
    host: &Host,
    wrapper: &[&str],
    release: &Release,
    args: &[&str],
) -> Command {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let tmp = host.log_dir.join(format!(
        "tmp-{}-{}",
        host.name,
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&tmp)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", tmp.display()));
    let mut cmd = match wrapper.split_first() {
        None => host.command(bin),
        Some((program, rest)) => {
            let mut cmd = host.command(program);
            cmd.args(rest).arg(bin);
            cmd
        }
    };
    cmd.args(args)
        .arg("--")
        .arg(release.bin())
        .args(release.start_args());
    // The test runner's own settings must not configure the beamup under test.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("BEAMUP_")
            || key.starts_with("RELEASE_")
            || key.starts_with("RELX_")
            || matches!(
                key.as_str(),
                "ELIXIR_ERL_OPTIONS" | "ERL_AFLAGS" | "ERL_FLAGS" | "ERL_ZFLAGS" | "VMARGS_PATH"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("TMPDIR", &tmp);
    cmd
}

/// A JSON peers file (`--peers-format json`) as peer → (state, reason); empty
/// while the file is missing or half-written.
pub fn peer_states(path: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Default::default();
    };
    doc["peers"]
        .as_array()
        .map(|peers| {
            peers
                .iter()
                .map(|p| {
                    let field = |k: &str| p[k].as_str().unwrap_or("").to_string();
                    (field("node"), (field("state"), field("reason")))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a `--connect` reporter's debug log shows it found its VM by the
/// registration watch (epmd's answer on `lo`, README step 6), not by a timed look.
pub fn saw_registration(log: &str) -> bool {
    log.contains("epmd's answers on lo are watched")
        && log.contains("epmd answered a registration on lo")
}

/// Bytes a command printed, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// What a command that must succeed printed on stdout; fails the test with
/// `what`, its status and both outputs otherwise.
pub fn succeeded(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// PATH as a container's image sets it.
pub const CONTAINER_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `program args` inside `host` as `docker exec` / `kubectl exec` run a command: with
/// only the container's own environment (`container_env`, PATH, HOME, LANG), never
/// what beamup exported at boot.
pub fn exec_command(
    host: &Host,
    program: impl AsRef<OsStr>,
    args: &[&str],
    home: &Path,
    container_env: &[(String, String)],
) -> Command {
    let mut cmd = host.command(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", CONTAINER_PATH)
        .env("HOME", home)
        .env("LANG", "C.UTF-8")
        .envs(container_env.iter().map(|(k, v)| (k, v)));
    cmd
}

/// Runs `cmd` on a terminal (`script -qfec` gives it a pty, as `docker exec -it` does;
/// without a tty iex ignores `--remsh`), types `input` once the output shows `prompt`
/// (typeahead is dropped while the shell connects) and waits up to `timeout` until the
/// output shows `needle`; then kills it (its process group) and returns the output.
pub fn on_terminal(
    mut cmd: Command,
    prompt: &str,
    input: &str,
    needle: &str,
    timeout: Duration,
) -> String {
    use std::io::Write as _;
    use std::os::unix::process::CommandExt as _;
    let dir = TempDir::new("tty");
    let out_path = dir.path().join("out");
    cmd.stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).expect("stdout capture file"))
        .stderr(Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().expect("spawn the terminal command");
    let mut stdin = child.stdin.take().expect("stdin");
    let deadline = Instant::now() + timeout;
    let mut typed = false;
    let output = loop {
        let output =
            String::from_utf8_lossy(&std::fs::read(&out_path).unwrap_or_default()).into_owned();
        if !typed && output.contains(prompt) {
            stdin.write_all(input.as_bytes()).expect("type the input");
            typed = true;
        }
        let exited = child.try_wait().expect("wait").is_some();
        if output.contains(needle) || exited || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(stdin);
    // Our child leads its own process group; its pty session goes with it.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(-(child.id() as i32)),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.wait();
    output
}
