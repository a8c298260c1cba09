//! Other Erlang/Elixir toolchains (issue 17): a Debian root per suite, built by
//! `scripts/toolchain-roots.sh` (bookworm = OTP 25 / Elixir 1.14, trixie = OTP 27 /
//! Elixir 1.18, sid = OTP 29 / Elixir 1.20), the demo releases built inside each root,
//! and hosts that run their commands chrooted into one ([`Host::in_root`]).
//!
//! A command in a root runs through [`CHROOT_SCRIPT`] in a mount namespace of its own:
//! inside a host that is the one `ip netns exec` already creates (it unshares the mount
//! namespace and makes `/` a recursive slave), for builds `unshare --mount`. There it
//! mounts /proc (beamup and the VM read it), /dev, /tmp (every test temp dir: logs,
//! cookies, TMPDIR, copies of releases), the host's /etc/resolv.conf and /etc/hosts, and
//! cargo's target dir (the beamup binary and the releases built per root) at the same
//! paths inside the root, so a path means the same thing inside and out. Those mounts
//! exist only in that namespace: they disappear with its last process, on every path
//! (a panic, a SIGKILL of the test, a crash), and the shared root is never mounted over
//! in the machine's namespace, where two tests or a `rm -rf` could trip on it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::release::build_release_in;
use super::{Release, ReleaseKind, beamup_bin, output_timeout, require_root};

/// `sh -c CHROOT_SCRIPT ROOT TARGET program args...` (run by the machine's sh): the
/// mounts described in the module docs, then `program` chrooted into ROOT in the
/// caller's working directory when the root has it (else `/`). `set -e`: a mount that
/// fails stops here with its error, never runs the program half set up.
pub const CHROOT_SCRIPT: &str = r#"set -e
root=$0 target=$1
shift
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /tmp "$root/tmp"
for f in /etc/resolv.conf /etc/hosts; do
  [ -e "$root$f" ] || : >"$root$f"
  mount --bind "$f" "$root$f"
done
mkdir -p "$root$target"
mount --bind "$target" "$root$target"
exec chroot "$root" /bin/sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" "$@""#;

/// One toolchain's root and what is in it (read from the root's `beamup-toolchain`).
#[derive(Debug, Clone)]
pub struct Toolchain {
    /// bookworm, trixie or sid.
    pub suite: String,
    pub root: PathBuf,
    /// `OTP_VERSION`, e.g. 29.1.2.
    pub otp: String,
    /// Debian package versions, e.g. 1.20.4.dfsg-1 and 3.28.0-1.
    pub elixir: String,
    pub rebar3: String,
}

/// cargo's target dir (the parent of CARGO_TARGET_TMPDIR): bound into every root so
/// that the beamup under test and the releases built per root have the same path inside.
pub fn target_dir() -> PathBuf {
    let tmp = super::target_tmpdir();
    let tmp = tmp.as_path();
    let dir = tmp
        .parent()
        .unwrap_or_else(|| panic!("CARGO_TARGET_TMPDIR {} has no parent", tmp.display()))
        .to_path_buf();
    assert!(
        beamup_bin().starts_with(&dir),
        "the beamup binary {} is outside the target dir {}: the roots would not see it",
        beamup_bin().display(),
        dir.display()
    );
    dir
}

/// The root of `suite`, built by `scripts/toolchain-roots.sh` when missing (cached under
/// /var/cache/beamup-roots; scripts/test.sh builds them before the tests, so here it
/// only finds them). A failed build fails the test with the script's output.
pub fn toolchain(suite: &str) -> Toolchain {
    static CACHE: OnceLock<Mutex<Vec<Toolchain>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut known = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tc) = known.iter().find(|tc| tc.suite == suite) {
        return tc.clone();
    }
    require_root();
    let script = super::repo_root().join("scripts/toolchain-roots.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(&script).arg(suite);
    // Cold, a root takes a minute or more to debootstrap from the archive.
    let out = output_timeout(cmd, Duration::from_secs(1200));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let root = stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{suite}=")))
        .filter(|_| out.status.success())
        .unwrap_or_else(|| {
            panic!(
                "scripts/toolchain-roots.sh {suite} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let root = PathBuf::from(root);
    let info_path = root.join("beamup-toolchain");
    let info = std::fs::read_to_string(&info_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", info_path.display()));
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key}= in {}:\n{info}", info_path.display()))
            .trim()
            .to_string()
    };
    let tc = Toolchain {
        suite: suite.to_string(),
        otp: field("otp"),
        elixir: field("elixir"),
        rebar3: field("rebar3"),
        root,
    };
    known.push(tc.clone());
    tc
}

impl Toolchain {
    /// `program` chrooted into the root (no network namespace): for builds and checks.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "slave", "--"]);
        self.wrap(&mut cmd);
        cmd.arg(program);
        cmd
    }

    /// Appends `sh -c CHROOT_SCRIPT ROOT TARGET` to `cmd` (whose next argument is then
    /// the program to run in the root), with the environment every root command gets.
    pub fn wrap(&self, cmd: &mut Command) {
        cmd.args(["sh", "-c", CHROOT_SCRIPT])
            .arg(&self.root)
            .arg(target_dir())
            // Elixir warns and misreads non-ASCII without a UTF-8 locale; every glibc
            // since 2.35 has C.UTF-8 built in.
            .env("LANG", "C.UTF-8")
            .env_remove("LC_ALL");
    }

    /// The OTP major release (`25`, `27`, `29`).
    pub fn otp_major(&self) -> u32 {
        self.otp
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("OTP version {:?} of {}", self.otp, self.suite))
    }

    /// The demo mix release built with this root's Elixir, cached per root.
    pub fn mix_release(&self) -> Release {
        self.release(ReleaseKind::Mix)
    }

    /// The demo rebar3/relx release built with this root's rebar3, cached per root.
    pub fn relx_release(&self) -> Release {
        self.release(ReleaseKind::Relx)
    }

    pub fn release(&self, kind: ReleaseKind) -> Release {
        let root_name = self
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Keyed by the root's name, which carries its content hash: a new root, new builds;
        // the builds of this suite's outdated roots go (the script removed those roots).
        let fixtures = super::target_tmpdir().join("beamup-fixtures");
        if let Ok(entries) = std::fs::read_dir(&fixtures) {
            let prefix = format!("{}-", self.suite);
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && name != root_name {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let base = fixtures.join(&root_name);
        let home = base.join("home");
        std::fs::create_dir_all(&home)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", home.display()));
        build_release_in(kind, &base, &|program| {
            let mut cmd = self.command(program);
            // mix and rebar3 keep caches under HOME; nothing here needs hex.
            cmd.env("HOME", &home)
                .env("MIX_HOME", home.join(".mix"))
                .env("HEX_OFFLINE", "1");
            for var in [
                "ERL_AFLAGS",
                "ERL_FLAGS",
                "ERL_ZFLAGS",
                "ELIXIR_ERL_OPTIONS",
            ] {
                cmd.env_remove(var);
            }
            cmd
        })
    }
}
