//! Facts `beamup --version` reports that only the build knows: the target triple (which of the
//! release binaries this is) and the git commit it was built from.
//!
//! The commit is `unknown` when the crate is not built from its own git checkout: a crates.io
//! build (`cargo install`, `cargo package`'s verify step, whose directory sits inside the
//! checkout's target/ and so must not borrow the checkout's commit), a source tarball, or a
//! Docker build context without `.git`. `BEAMUP_BUILD_COMMIT` overrides it for builds that know
//! better (a packager building from a tarball).

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=BEAMUP_TARGET={target}");

    println!("cargo:rerun-if-env-changed=BEAMUP_BUILD_COMMIT");
    let commit = match std::env::var("BEAMUP_BUILD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => git_commit().unwrap_or_else(|| "unknown".to_string()),
    };
    println!("cargo:rustc-env=BEAMUP_COMMIT={commit}");
}

/// The checkout's HEAD commit (12 hex digits), if the manifest directory is the top of a git
/// work tree; also registers the files whose change means a new commit.
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if Path::new(&top).canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    // A new commit, checkout or reset moves HEAD and appends to HEAD's reflog; HEAD itself
    // changes on a branch switch, the branch's loose ref on a commit. In a linked work tree these
    // live in different git dirs: `--git-path` resolves each. Only existing files are watched
    // (cargo reruns a build script every time for a missing one).
    let mut watched = vec!["HEAD".to_string(), "logs/HEAD".to_string()];
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&manifest_dir, &["rev-parse", "--git-path", &name]) {
            let path = manifest_dir.join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}
