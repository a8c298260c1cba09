//! beamup: names a BEAM release after its container's own address, renders its
//! templates, forks a reporter that keeps its peers discovered, and execs it.
//!
//! [`run`] parses argv into one [`cli::Command`] and calls one function per
//! mode. The default one, [`boot::boot`], reads top to bottom as the
//! pipeline: flags (checked in `cli`) → resolved config (`config`, the only
//! step that does discovery I/O) → render → fork the reporter → exec; or,
//! with `--init`, fork and supervise the release and the reporter. See
//! ARCHITECTURE.md for the map of modules.

pub mod address;
pub mod arena;
pub mod boot;
pub mod cli;
pub mod config;
pub mod cookie;
pub mod discovery;
pub mod dist;
pub mod doctor;
pub mod duration;
pub mod environment;
pub mod exit_codes;
pub mod inspect;
pub mod logging;
pub mod naming;
pub mod operate;
pub mod peer;
pub mod peers;
pub mod platform;
pub mod process;
pub mod release;
pub mod reporter;
pub mod resolver;
pub mod safe_file;
pub mod secret;
pub mod state;
pub mod template;
pub mod untrusted;

use std::ffi::OsString;

use crate::cli::{Command, LogFormat};
use crate::environment::Environment;
pub use crate::exit_codes::{ExitCode, Failure};

/// Entry point of the binary: returns the process exit code.
pub fn main_entry() -> i32 {
    match run(std::env::args_os()) {
        Ok(code) => code,
        Err(f) => {
            // Printed directly (not through tracing) so the error is there even
            // when it happens before logging is set up.
            eprintln!("beamup: error: {:#}", f.error);
            f.code.code()
        }
    }
}

/// Runs beamup; returns the exit code when it does not exec.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> Result<i32, Failure> {
    // First: `docker stop` while beamup still looks for its address ends it
    // at once, before anything is started.
    process::signals::stop_before_exec();
    let command = match cli::parse(args)? {
        Command::Exit(code) => return Ok(code),
        command => command,
    };
    logging::init(command.log_format());
    process::signals::log_json(command.log_format() == LogFormat::Json);
    let env = Environment::capture();
    if !matches!(command, Command::Boot { .. }) {
        // Only the boot, which execs, gains from the arena; the other
        // commands may run long (`peers --watch`, `doctor`).
        arena::close();
    }
    match command {
        Command::Boot { flags, command } => boot::boot(&flags, &command, &env),
        Command::Inspect {
            flags,
            command,
            json,
        } => inspect::inspect(&flags, &command, json, &env),
        Command::Peers { flags, watch } => peers::peers(&flags, watch, &env),
        Command::Doctor {
            flags,
            command,
            json,
        } => doctor::doctor(&flags, &command, json, &env),
        Command::Ops(op) => operate::run(op, &env),
        Command::Exit(code) => Ok(code),
    }
}
