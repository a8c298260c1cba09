//! beamup: names a BEAM release after its container's own address, renders its
//! templates, forks a reporter that keeps its peers discovered, and execs it.
//!
//! The path of data reads top to bottom in [`run`]: parse flags → resolve the
//! config (the only step that does discovery I/O) → render → fork the reporter
//! → exec.

pub mod address;
pub mod cli;
pub mod config;
pub mod discovery;
pub mod dist;
pub mod duration;
pub mod exit_codes;
pub mod inspect;
pub mod logging;
pub mod naming;
pub mod process;
pub mod release;
pub mod reporter;
pub mod secret;
pub mod template;

pub use crate::exit_codes::ExitCode;

/// Entry point of the binary: returns the process exit code.
pub fn main_entry() -> i32 {
    todo_run()
}

fn todo_run() -> i32 {
    0
}
