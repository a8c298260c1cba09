//! Processes: checking the command, forking the reporter, exec'ing the
//! release, or with `--init` supervising both.
//!
//! By default the release keeps beamup's PID (PID 1 in a container) so
//! `docker stop`'s SIGTERM reaches the VM, which since OTP 19.3 runs
//! `init:stop()` on it. The reporter is forked while beamup is
//! single-threaded, in its own process group (a terminal's Ctrl-C is the
//! release's, not the reporter's), with PR_SET_PDEATHSIG so it ends with the
//! release (tini's `-p`). With `--init` ([`init`]) beamup stays PID 1 instead.

pub mod init;
pub mod signals;

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid, fork, getpid, getppid};

use crate::exit_codes::{ExitCode, Failure};

/// Finds the program like execvp does, so a missing or non-executable command
/// is reported before anything else happens (127 / 126, the shell's codes).
pub fn resolve_program(program: &str, path_var: Option<&OsStr>) -> Result<PathBuf, Failure> {
    if program.is_empty() {
        return Err(Failure::msg(
            ExitCode::Usage,
            "the command after `--` is empty",
        ));
    }
    if program.contains('/') {
        return check_executable(Path::new(program));
    }
    let dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    let mut not_executable = None;
    for dir in &dirs {
        let candidate = dir.join(program);
        if candidate.exists() {
            match check_executable(&candidate) {
                Ok(p) => return Ok(p),
                Err(e) => not_executable = not_executable.or(Some(e)),
            }
        }
    }
    Err(not_executable.unwrap_or_else(|| {
        Failure::msg(
            ExitCode::NotFound,
            format!(
                "command `{program}` not found in PATH ({}): give its full path, e.g. -- /app/bin/my_app start",
                std::env::join_paths(&dirs)
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ),
        )
    }))
}

fn check_executable(path: &Path) -> Result<PathBuf, Failure> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::msg(
            ExitCode::NotFound,
            format!(
                "command `{}` not found ({e}): check the path given after `--`",
                path.display()
            ),
        )
    })?;
    if meta.is_dir() {
        return Err(Failure::msg(
            ExitCode::NotExecutable,
            format!("command `{}` is a directory, not a program", path.display()),
        ));
    }
    let any_x = meta.permissions().mode() & 0o111 != 0;
    if !any_x || nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(Failure::msg(
            ExitCode::NotExecutable,
            format!(
                "command `{}` is not executable: `chmod +x` it or check the mount's noexec flag",
                path.display()
            ),
        ));
    }
    Ok(path.to_path_buf())
}

/// The number of threads of this process (1 when it is safe to fork).
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Forks the reporter. In the child, `child` runs and never returns; in the
/// parent this returns the child's PID.
pub fn fork_reporter(child: impl FnOnce()) -> Result<Pid, Failure> {
    let parent = getpid();
    match fork_single_threaded("the reporter")? {
        Some(pid) => Ok(pid),
        None => {
            // The reporter runs for the node's life: its allocations are
            // the system allocator's, not the boot's arena.
            crate::arena::close();
            prepare_reporter(parent);
            child();
            std::process::exit(0)
        }
    }
}

/// fork(2), refused while another thread exists: forking a multi-threaded
/// process leaves locks held by the other threads locked forever in the
/// child. `Some(pid)` in the parent, `None` in the child.
fn fork_single_threaded(what: &str) -> Result<Option<Pid>, Failure> {
    let threads = thread_count();
    if threads > 1 {
        return Err(Failure::msg(
            ExitCode::Config,
            format!(
                "internal: beamup has {threads} threads before forking {what}; refusing to fork"
            ),
        ));
    }
    // SAFETY: single-threaded (checked above), so the child may run any code.
    match unsafe { fork() } {
        Err(e) => Err(Failure::msg(
            ExitCode::Config,
            format!("cannot fork {what}: {e}"),
        )),
        Ok(ForkResult::Parent { child }) => Ok(Some(child)),
        Ok(ForkResult::Child) => Ok(None),
    }
}

fn prepare_reporter(parent: Pid) {
    signals::harden_reporter();
    // Its own process group: signals a terminal sends to the foreground group
    // (Ctrl-C) are meant for the release.
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // End when the parent ends: the VM after the exec (the exec keeps the PID
    // and the thread), or beamup with `--init`. SIGKILL, which nothing can
    // ignore or hang on.
    let _ = nix::sys::prctl::set_pdeathsig(Some(Signal::SIGKILL));
    // The parent may have died (and we were reparented) before prctl took effect.
    if getppid() != parent {
        std::process::exit(0);
    }
    // Hold nothing the release's readers wait on: stdin and stdout are the
    // release's; the reporter only writes logs to stderr.
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

/// The release command, checked and converted for execve before anything is
/// forked, so a NUL byte is a usage error of beamup, not of a child.
#[derive(Debug)]
pub struct Launch {
    program: PathBuf,
    path: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
}

impl Launch {
    pub fn new(
        program: &Path,
        args: &[String],
        env: &[(OsString, OsString)],
    ) -> Result<Launch, Failure> {
        let c = |s: &[u8]| CString::new(s.to_vec());
        let argv: Result<Vec<CString>, _> = args.iter().map(|a| c(a.as_bytes())).collect();
        let envp: Result<Vec<CString>, _> = env
            .iter()
            .map(|(k, v)| {
                let mut kv = k.as_bytes().to_vec();
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv)
            })
            .collect();
        let (Ok(argv), Ok(envp), Ok(path)) = (argv, envp, c(program.as_os_str().as_bytes())) else {
            return Err(Failure::msg(
                ExitCode::Usage,
                "the command or environment contains a NUL byte",
            ));
        };
        Ok(Launch {
            program: program.to_path_buf(),
            path,
            argv,
            envp,
        })
    }

    /// Replaces this process with the release. Returns only on failure.
    pub fn exec(&self) -> Failure {
        signals::restore_for_release();
        let err = nix::unistd::execve(&self.path, &self.argv, &self.envp).err();
        let code = match err {
            Some(nix::errno::Errno::ENOENT) => ExitCode::NotFound,
            _ => ExitCode::NotExecutable,
        };
        Failure::msg(
            code,
            format!(
                "cannot exec `{}`: {}",
                self.program.display(),
                err.map(|e| e.desc().to_string()).unwrap_or_default()
            ),
        )
    }
}

/// The one way beamup builds an async runtime: by hand (no
/// `#[tokio::main]`) and current-thread, because a reporter is forked later
/// and no thread may be alive at fork time (beamup's own, and the reporter
/// child's, which was forked from a single-threaded process). `io` enables
/// the I/O and time drivers (an epoll instance and an eventfd): a boot whose
/// address comes from the environment or an interface needs neither.
pub fn runtime(io: bool) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    if io {
        builder.enable_all();
    }
    anyhow::Context::context(builder.build(), "while starting the async runtime")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_programs() {
        let path = OsString::from("/nonexistent:/bin:/usr/bin");
        assert_eq!(
            resolve_program("true", Some(&path)).unwrap(),
            PathBuf::from("/bin/true")
        );
        let e = resolve_program("no-such-beamup-cmd", Some(&path)).unwrap_err();
        assert_eq!(e.code, ExitCode::NotFound);
        assert!(
            e.error
                .to_string()
                .contains("not found in PATH (/nonexistent:/bin:/usr/bin)")
        );
        assert_eq!(
            resolve_program("/etc/passwd", None).unwrap_err().code,
            ExitCode::NotExecutable
        );
        assert_eq!(
            resolve_program("/tmp", None).unwrap_err().code,
            ExitCode::NotExecutable
        );
        assert_eq!(
            resolve_program("/no/such", None).unwrap_err().code,
            ExitCode::NotFound
        );
        assert_eq!(resolve_program("", None).unwrap_err().code, ExitCode::Usage);
    }
}
