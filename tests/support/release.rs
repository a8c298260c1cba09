//! The demo releases (tests/fixtures/demo_mix, tests/fixtures/demo_relx), built once
//! per cargo target dir and reused, and [`rpc`] to ask a running node something.
//!
//! Builds go to `<target>/tmp/beamup-fixtures/<kind>/` ([`super::target_tmpdir`]), guarded by
//! a `flock` so that processes running at the same time (the tests, a benchmark) build each
//! release only once. A stamp
//! (hash of the fixture sources) decides when to rebuild. No step needs the network:
//! the fixtures have no dependencies, so neither mix nor rebar3 talks to hex.

use std::collections::hash_map::DefaultHasher;
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use super::net::Host;
use super::{TempDir, output_timeout, require, run_ok};

/// How the release was built, which decides how its start script is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseKind {
    /// `mix release`: `bin/<name> start`, named through RELEASE_NODE/RELEASE_DISTRIBUTION.
    Mix,
    /// rebar3/relx extended start script: `bin/<name> foreground`, named through the
    /// one `-name` line of the vm.args that VMARGS_PATH points at.
    Relx,
}

/// A built release. The roots returned by [`mix_release`]/[`relx_release`] are shared
/// by every test: never write into them, use [`copy_release`] for a private copy.
#[derive(Debug, Clone)]
pub struct Release {
    pub root: PathBuf,
    pub name: String,
    pub kind: ReleaseKind,
}

impl Release {
    /// `<root>/bin/<name>`, the start script.
    pub fn bin(&self) -> PathBuf {
        self.root.join("bin").join(&self.name)
    }

    /// The arguments that run the release in the foreground (what a Dockerfile's CMD has).
    pub fn start_args(&self) -> &'static [&'static str] {
        match self.kind {
            ReleaseKind::Mix => &["start"],
            ReleaseKind::Relx => &["foreground"],
        }
    }

    /// The release version, from `releases/start_erl.data` ("<erts vsn> <rel vsn>").
    pub fn vsn(&self) -> String {
        let data = self.root.join("releases").join("start_erl.data");
        let text = std::fs::read_to_string(&data)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", data.display()));
        text.split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("unexpected {}: {text:?}", data.display()))
            .to_string()
    }

    /// `releases/<vsn>/env.sh` of a mix release (sourced by its start script).
    pub fn env_sh(&self) -> PathBuf {
        self.root.join("releases").join(self.vsn()).join("env.sh")
    }
}

/// The demo mix release (app `demo`, no deps), built once and shared read-only.
pub fn mix_release() -> Release {
    static CACHE: OnceLock<Release> = OnceLock::new();
    CACHE.get_or_init(|| build_cached(ReleaseKind::Mix)).clone()
}

/// The demo rebar3 release (app `demo`, relx extended start script, erts included).
pub fn relx_release() -> Release {
    static CACHE: OnceLock<Release> = OnceLock::new();
    CACHE
        .get_or_init(|| build_cached(ReleaseKind::Relx))
        .clone()
}

/// A private copy of `r` that a test may modify (env.sh, vm.args, ...); the copy
/// lives as long as the returned [`TempDir`].
pub fn copy_release(r: &Release) -> (TempDir, Release) {
    let dir = TempDir::new("rel");
    let root = dir.path().join(&r.name);
    // `cp -a` keeps modes and symlinks exactly (erts' binaries, bin/ scripts).
    run_ok(
        "cp",
        &["-a", &r.root.to_string_lossy(), &root.to_string_lossy()],
    );
    let copy = Release {
        root,
        name: r.name.clone(),
        kind: r.kind,
    };
    (dir, copy)
}

fn fixture_source(kind: ReleaseKind) -> PathBuf {
    let dir = match kind {
        ReleaseKind::Mix => "demo_mix",
        ReleaseKind::Relx => "demo_relx",
    };
    super::repo_root().join("tests").join("fixtures").join(dir)
}

fn build_cached(kind: ReleaseKind) -> Release {
    let tools: &[&str] = match kind {
        ReleaseKind::Mix => &["erl", "elixir", "mix"],
        ReleaseKind::Relx => &["erl", "rebar3"],
    };
    require(tools);
    let base = super::target_tmpdir().join("beamup-fixtures");
    build_release_in(kind, &base, &|program| Command::new(program))
}

/// Builds the demo release of `kind` under `base/<mix|relx>/` once (flock, stamp), each
/// build step started by `command(program)`: the machine's toolchain, or another one
/// such as a chroot into a Debian root ([`super::chroot::Toolchain::mix_release`]).
pub fn build_release_in(
    kind: ReleaseKind,
    base: &Path,
    command: &dyn Fn(&str) -> Command,
) -> Release {
    let label = match kind {
        ReleaseKind::Mix => "mix",
        ReleaseKind::Relx => "relx",
    };
    std::fs::create_dir_all(base)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", base.display()));

    // One builder at a time across test processes; the others wait, then find the stamp.
    let lock_path = base.join(format!("{label}.lock"));
    let lock_file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    let _lock: Flock<File> = Flock::lock(lock_file, FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("cannot lock {}: {e}", lock_path.display()));

    let source = fixture_source(kind);
    let work = base.join(label);
    let src = work.join("src");
    let root = match kind {
        ReleaseKind::Mix => src.join("_build/prod/rel/demo"),
        ReleaseKind::Relx => src.join("_build/default/rel/demo"),
    };
    let release = Release {
        root,
        name: "demo".to_string(),
        kind,
    };
    let stamp_path = work.join("stamp");
    let stamp = fingerprint(&source);
    let current = std::fs::read_to_string(&stamp_path).unwrap_or_default();
    if current == stamp && release.bin().is_file() {
        return release;
    }

    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", work.display()));
    run_ok(
        "cp",
        &["-a", &source.to_string_lossy(), &src.to_string_lossy()],
    );
    // Whatever a developer built inside the fixture dir must not leak into the copy.
    let _ = std::fs::remove_dir_all(src.join("_build"));

    let mut cmd = match kind {
        ReleaseKind::Mix => {
            let mut c = command("mix");
            c.args(["release", "--overwrite", "--quiet"])
                .env("MIX_ENV", "prod");
            c
        }
        ReleaseKind::Relx => {
            let mut c = command("rebar3");
            c.arg("release");
            c
        }
    };
    cmd.current_dir(&src).stdin(Stdio::null());
    let out = output_timeout(cmd, Duration::from_secs(300));
    if !out.status.success() || !release.bin().is_file() {
        panic!(
            "building the demo {label} release in {} failed ({}):\n{}{}",
            src.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(&stamp_path, stamp)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", stamp_path.display()));
    release
}

/// A hash of every fixture source file (path and content), skipping build outputs.
fn fingerprint(dir: &Path) -> String {
    fn walk(dir: &Path, rel: &Path, files: &mut Vec<(PathBuf, PathBuf)>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == "_build" || name == "deps" {
                continue;
            }
            let path = entry.path();
            let rel_path = rel.join(&name);
            if path.is_dir() {
                walk(&path, &rel_path, files);
            } else {
                files.push((rel_path, path));
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, Path::new(""), &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    // Bump when the build recipe above changes.
    "recipe-1".hash(&mut hasher);
    for (rel, path) in files {
        rel.hash(&mut hasher);
        std::fs::read(&path).unwrap_or_default().hash(&mut hasher);
    }
    format!("{:016x}\n", hasher.finish())
}

/// Asks the RUNNING node of `release` on `host` something and returns stdout, trimmed.
///
/// - mix: `expr` is Elixir, run by `bin/<name> rpc` (a hidden VM per call); it must print
///   what it wants returned, e.g. `IO.puts(node())`.
/// - relx: `expr` is Erlang (ending with `.`), run by `bin/<name> eval`, which prints the
///   value with `~p`. `USE_NODETOOL=1` is forced: OTP 25's erl_call, the script's default,
///   cannot reach IPv6 nodes (`erl_call: can't ei_gethostbyname(::1)`).
///
/// `env` carries what reaching the node needs: RELEASE_NODE, RELEASE_COOKIE, optionally
/// RELEASE_DISTRIBUTION (default `name`). For an IPv6 node name, `-proto_dist inet6_tcp`
/// is added exactly once (given twice, OTP 25 silently falls back to IPv4 `inet_tcp`). For relx,
/// unless `env` has VMARGS_PATH, a vm.args with `-name`, `-setcookie` (and `-proto_dist`)
/// is written for the script, which reads the node name and cookie only from there.
pub fn rpc(host: &Host, release: &Release, env: &[(&str, &str)], expr: &str) -> String {
    try_rpc(host, release, env, expr).unwrap_or_else(|e| panic!("{e}"))
}

/// [`rpc`] that returns the failure (e.g. the node is not up yet) instead of panicking.
pub fn try_rpc(
    host: &Host,
    release: &Release,
    env: &[(&str, &str)],
    expr: &str,
) -> Result<String, String> {
    let get = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
    let node = get("RELEASE_NODE")
        .unwrap_or_else(|| panic!("rpc needs RELEASE_NODE in env to know which node to ask"));
    let ipv6 = node
        .split_once('@')
        .is_some_and(|(_, host_part)| host_part.contains(':'));

    let mut cmd = host.command(release.bin());
    // The test process' own VM options must not leak into the probe VM.
    for var in [
        "ELIXIR_ERL_OPTIONS",
        "ERL_AFLAGS",
        "ERL_FLAGS",
        "ERL_ZFLAGS",
    ] {
        cmd.env_remove(var);
    }
    let _vm_args_dir;
    match release.kind {
        ReleaseKind::Mix => {
            cmd.arg("rpc").arg(expr);
            if get("RELEASE_DISTRIBUTION").is_none() {
                cmd.env("RELEASE_DISTRIBUTION", "name");
            }
            if ipv6 && get("ELIXIR_ERL_OPTIONS").is_none() && get("ERL_AFLAGS").is_none() {
                cmd.env("ELIXIR_ERL_OPTIONS", "-proto_dist inet6_tcp");
            }
        }
        ReleaseKind::Relx => {
            cmd.arg("eval").arg(expr).env("USE_NODETOOL", "1");
            if get("VMARGS_PATH").is_none() {
                let dir = TempDir::new("rpcvm");
                let path = dir.path().join("vm.args");
                let name_flag = match get("RELEASE_DISTRIBUTION") {
                    Some("sname") => "-sname",
                    _ => "-name",
                };
                let mut text = format!("{name_flag} {node}\n");
                if let Some(cookie) = get("RELEASE_COOKIE").or(get("RELX_COOKIE")) {
                    text.push_str(&format!("-setcookie {cookie}\n"));
                }
                if ipv6 {
                    text.push_str("-proto_dist inet6_tcp\n");
                }
                write_private(&path, &text);
                cmd.env("VMARGS_PATH", &path);
                _vm_args_dir = dir;
            }
        }
    }
    cmd.envs(env.iter().copied());
    let out = output_timeout(cmd, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        return Err(format!(
            "rpc {expr:?} to {node} ({:?}) failed ({}):\n{stdout}\n{}",
            release.kind,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(stdout)
}

/// Like [`rpc`], but `erl_expr` is an Erlang expression for both kinds and the answer is
/// its value printed with `~p` on one line (newlines of long terms folded into spaces),
/// e.g. `rpc_erl(.., "node().")` gives `'demo@10.213.1.10'` for mix and relx alike.
pub fn rpc_erl(host: &Host, release: &Release, env: &[(&str, &str)], erl_expr: &str) -> String {
    let mut expr = erl_expr.trim().to_string();
    if !expr.ends_with('.') {
        expr.push('.');
    }
    let raw = match release.kind {
        ReleaseKind::Relx => rpc(host, release, env, &expr),
        ReleaseKind::Mix => {
            // Base64 keeps quotes and `#{}` in the Erlang text away from Elixir and the shell.
            let elixir = format!(
                "{{:ok, t, _}} = :erl_scan.string(String.to_charlist(Base.decode64!(\"{}\"))); \
                 {{:ok, e}} = :erl_parse.parse_exprs(t); \
                 {{:value, v, _}} = :erl_eval.exprs(e, []); \
                 IO.puts(:io_lib.format(~c\"~p\", [v]))",
                base64(expr.as_bytes())
            );
            rpc(host, release, env, &elixir)
        }
    };
    fold_lines(&raw)
}

fn fold_lines(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Writes a file readable only by its owner (it may hold the cookie).
pub fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Waits until the node answers [`try_rpc`]: up to 90 s for it to register with its
/// epmd (one VM boots in ~1 s, several on 2 cores take longer), then up to 20 s more for
/// an answer, so a node that is up but unreachable (e.g. listening on the wrong address
/// family) fails in seconds, not minutes. Fails at once, with the log, when `vm` exits.
pub fn wait_node(host: &Host, release: &Release, vm: &super::net::Proc, env: &[(&str, &str)]) {
    let node = env
        .iter()
        .find(|(k, _)| *k == "RELEASE_NODE")
        .map(|(_, v)| *v)
        .unwrap_or("?");
    let name_part = node.split('@').next().unwrap_or(node);
    let start = std::time::Instant::now();
    let mut registered_at: Option<std::time::Instant> = None;
    let probe = match release.kind {
        ReleaseKind::Mix => ":ok",
        ReleaseKind::Relx => "ok.",
    };
    loop {
        if !vm.alive() {
            panic!(
                "the release exited before {node} answered; its output:\n{}",
                vm.log()
            );
        }
        let last = match try_rpc(host, release, env, probe) {
            Ok(_) => return,
            Err(e) => e,
        };
        if registered_at.is_none() {
            let names = host.output("epmd", &["-names"], Duration::from_secs(10));
            let names = String::from_utf8_lossy(&names.stdout);
            if names.contains(&format!("name {name_part} at port")) {
                registered_at = Some(std::time::Instant::now());
            }
        }
        let gave_up = match registered_at {
            Some(at) => at.elapsed() >= Duration::from_secs(20),
            None => start.elapsed() >= Duration::from_secs(90),
        };
        if gave_up {
            // What listens inside the host tells "not up" from "up on the wrong family".
            let sockets = host.output("ss", &["-ltnp"], Duration::from_secs(10));
            let state = if registered_at.is_some() {
                "registered with epmd but did not answer for 20 s"
            } else {
                "did not register with epmd within 90 s"
            };
            panic!(
                "{node} {state}.\nlast rpc error: {last}\n\
                 listening sockets in {}:\n{}\nrelease output:\n{}",
                host.name,
                String::from_utf8_lossy(&sockets.stdout),
                vm.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
