//! `beamup peers [--watch]`: discovery from the command line, with the
//! reporter's own polling and hysteresis ([`Membership`]), printed to stdout.

use std::io::Write as _;
use std::time::Duration;

use crate::cli::Flags;
use crate::config::{self, Mode};
use crate::discovery::{self, Discovery};
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure};
use crate::reporter::Membership;

/// `beamup peers`: resolve once and print the peers' node names, one per
/// line, to stdout; with `watch`, keep polling every `--interval` and print
/// `+node` / `-node` on changes (a leave after `--leave-after` missed polls,
/// like the reporter).
pub fn peers(flags: &Flags, watch: bool, env: &Environment) -> Result<i32, Failure> {
    // Next to a running node (`docker exec c beamup peers`), what it discovers.
    let booted = crate::state::running_here(env).map(|found| found.state);
    let command = booted.as_ref().map_or(&[][..], |b| b.command.as_slice());
    let config = config::resolve_dry(flags, command, env, Mode::Peers, booted.as_ref())?;
    let runtime = match crate::process::runtime(true) {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("beamup: {e:#}");
            return Ok(ExitCode::Discovery.code());
        }
    };
    let code = runtime.block_on(peers_async(
        config.discovery,
        watch,
        config.reporter.interval,
        config.reporter.leave_after,
    ));
    Ok(code.code())
}

async fn peers_async(
    settings: discovery::Settings,
    watch: bool,
    interval: Duration,
    leave_after: u32,
) -> ExitCode {
    let discovery = match Discovery::new(settings) {
        Ok(discovery) => discovery,
        Err(e) => {
            eprintln!("beamup: {e:#}");
            return ExitCode::Discovery;
        }
    };
    if !watch {
        return match discovery.poll().await {
            Ok(peers) => {
                let text: String = peers.iter().map(|p| format!("{p}\n")).collect();
                // A closed stdout (`beamup peers | head -1`) is not an error.
                let _ = print_flushed(&text);
                ExitCode::Success
            }
            Err(e) => {
                eprintln!("beamup: {e}");
                ExitCode::Discovery
            }
        };
    }
    let mut membership = Membership::new(leave_after);
    loop {
        match discovery.poll().await {
            Ok(seen) => {
                let change = membership.observe(&seen);
                let text: String = change
                    .joined
                    .iter()
                    .map(|p| format!("+{p}\n"))
                    .chain(change.left.iter().map(|p| format!("-{p}\n")))
                    .collect();
                if print_flushed(&text).is_err() {
                    // The reader went away: nothing left to watch for.
                    return ExitCode::Success;
                }
            }
            Err(e) => eprintln!("beamup: {e}"),
        }
        tokio::time::sleep(interval).await;
    }
}

fn print_flushed(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}
