//! The documented exit codes (README "Exit codes", `--help`). After a
//! successful exec the release's own status is the container's.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    Success,
    /// A check found a problem: `beamup status` (the node is not ready: too few
    /// peers, reporter gone, ...), `beamup doctor` (a ✗ line).
    NotReady,
    /// A bad flag or argument (clap's own usage errors also exit 2).
    Usage,
    /// Bad configuration: an invalid basename, template, cookie file, source...
    Config,
    /// No address source yielded an address.
    NoAddress,
    /// `beamup peers`: discovery failed.
    Discovery,
    /// `beamup remote|rpc|pid|stop|env`: no node started through beamup here.
    NoNode,
    /// The command exists but cannot be executed.
    NotExecutable,
    /// The command does not exist.
    NotFound,
}

impl ExitCode {
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::NotReady => 1,
            ExitCode::Usage => 2,
            ExitCode::Config => 3,
            ExitCode::NoAddress => 4,
            ExitCode::Discovery => 5,
            ExitCode::NoNode => 6,
            ExitCode::NotExecutable => 126,
            ExitCode::NotFound => 127,
        }
    }
}

/// An error on its way out of `run`, with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: ExitCode,
    pub error: anyhow::Error,
}

impl Failure {
    pub fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code,
            error: error.into(),
        }
    }

    pub fn msg(code: ExitCode, message: impl std::fmt::Display) -> Self {
        Failure {
            code,
            error: anyhow::anyhow!("{message}"),
        }
    }
}

/// `result.or_exit(ExitCode::Config)?`
pub trait OrExit<T> {
    fn or_exit(self, code: ExitCode) -> Result<T, Failure>;
}

impl<T, E: Into<anyhow::Error>> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: ExitCode) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(code, e))
    }
}
