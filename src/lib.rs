//! beamup: names a BEAM release after its container's own address, renders its
//! templates, forks a reporter that keeps its peers discovered, and execs it.
//!
//! The path of data reads top to bottom in [`run`]: parse flags → resolve the
//! config (the only step that does discovery I/O) → render → fork the reporter
//! → exec; or, with `--init`, → fork and supervise the release and the reporter.

pub mod address;
pub mod cli;
pub mod config;
pub mod cookie;
pub mod discovery;
pub mod dist;
pub mod doctor;
pub mod duration;
pub mod exit_codes;
pub mod inspect;
pub mod logging;
pub mod naming;
pub mod operate;
pub mod peer;
pub mod platform;
pub mod process;
pub mod release;
pub mod reporter;
pub mod resolver;
pub mod safe_file;
pub mod secret;
pub mod state;
pub mod template;

use std::ffi::OsString;

use clap::Parser;

use crate::cli::{Cli, Sub};
use crate::config::{Environment, Inputs, Mode};
use crate::exit_codes::OrExit as _;
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
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version exit 0, usage errors 2 (clap's codes).
            let _ = e.print();
            if let Some(hint) = missing_separator_hint(&e) {
                eprintln!("{hint}");
            }
            return Ok(e.exit_code());
        }
    };
    let (mode, opts, command, json, watch) = match cli.subcommand {
        None => (Mode::Exec, cli.opts, cli.command, false, false),
        Some(Sub::Inspect {
            json,
            opts,
            command,
        }) => (Mode::Inspect, opts, command, json, false),
        Some(Sub::Peers { watch, opts }) => (Mode::Peers, opts, Vec::new(), false, watch),
        Some(Sub::Doctor {
            json,
            opts,
            command,
        }) => (Mode::Doctor, opts, command, json, false),
        Some(Sub::Ops(op)) => {
            logging::init(cli::LogFormat::Text);
            return operate::run(op, &Environment::capture());
        }
    };
    logging::init(opts.log_format);
    process::signals::log_json(opts.log_format == cli::LogFormat::Json);
    let env = Environment::capture();
    // `beamup doctor` next to a running node: its boot record names the node
    // and the release command (to find the release's cookie like at boot).
    let boot = doctor_boot_record(mode, &command, &env);
    let command = boot.as_ref().map_or(command, |b| b.command.clone());

    // A missing or non-executable command is reported before anything else.
    let program = match (mode, command.first()) {
        (Mode::Exec, None) => {
            return Err(Failure::msg(
                ExitCode::Usage,
                "no command to exec: give the release command after `--`, e.g. \
                 beamup -- /app/bin/my_app start",
            ));
        }
        (Mode::Exec, Some(p)) => Some(process::resolve_program(p, env.raw_path())?),
        // inspect only looks at the command to infer the basename and kind.
        (_, Some(p)) => process::resolve_program(p, env.raw_path()).ok(),
        (_, None) => None,
    };

    // `bin/my_app rpc|remote|stop|...`: a command for the running node gets
    // its identity, and no reporter, no rendering, no address lookup.
    // The start script is read once: for the call's kind here, for the
    // release's traps and files in `config::resolve`.
    let release = program
        .as_deref()
        .map_or_else(release::Release::plain, release::detect);
    let call = match mode {
        Mode::Exec => operate::classify(release.kind, &command),
        _ => operate::Call::Boot,
    };
    if let (Some(running), Some(program)) = (operate::running_node(call, &env)?, &program) {
        return Err(operate::exec_as(&running, program, &command, &env));
    }

    let config = config::resolve(Inputs {
        opts: &opts,
        command: &command,
        program: program.as_deref(),
        release: &release,
        env: &env,
        mode,
    })?;

    match mode {
        // A dry run: shows the rendered files, writes nothing.
        Mode::Inspect => {
            if json {
                println!("{}", inspect::to_json(&config));
            } else {
                print!("{}", inspect::to_text(&config));
            }
            Ok(0)
        }
        Mode::Doctor => Ok(doctor::run(&config, boot.as_ref(), json).code()),
        Mode::Peers => Ok(reporter::peers_command(
            config.discovery,
            watch,
            config.reporter.interval,
            config.reporter.leave_after,
        )
        .code()),
        Mode::Exec => {
            config::write_files(&config.files)?;
            let peers_file = config.reporter.peers_file.as_ref();
            if let Some(path) = peers_file.filter(|_| config.discovery.is_active()) {
                reporter::check_peers_file_dir(path).or_exit(ExitCode::Config)?;
            }
            let Some(program) = program else {
                return Err(Failure::msg(ExitCode::Usage, "no command to exec"));
            };
            tracing::info!(
                node = %config.node,
                source = %config.source,
                release = ?config.release,
                "starting {}",
                cookie::redact_args(&config.command, config.cookie.as_ref()).join(" ")
            );
            let launch = process::Launch::new(&program, &config.command, &config.exec_env(&env))?;
            // A command for a node that is not running here (e.g. `eval`)
            // runs without a reporter and leaves the boot record alone.
            if call.boots() {
                state::record_boot(&config, &program, opts.cookie_file.as_deref(), &env);
            }
            let reporter = reporter_body(&config).filter(|_| call.boots());
            if opts.init {
                // beamup stays PID 1: it runs and supervises the release and the reporter.
                process::init::run(&launch, reporter.as_ref().map(|r| r as &dyn Fn()))
            } else {
                Err(fork_reporter_and_exec(&launch, reporter))
            }
        }
    }
}

/// Exec mode: the reporter is forked just before the exec, so a failure to
/// find or render anything never leaves one behind; the release takes over
/// beamup's PID. Returns only on failure.
fn fork_reporter_and_exec(launch: &process::Launch, reporter: Option<impl FnOnce()>) -> Failure {
    if let Some(reporter) = reporter {
        match process::fork_reporter(reporter) {
            Ok(pid) => tracing::debug!(reporter = pid.as_raw(), "reporter forked"),
            Err(failure) => return failure,
        }
    }
    launch.exec()
}

/// The reporter child's body, when there is something to discover. A `Fn`:
/// `--init` runs it again in each restarted reporter.
fn reporter_body(config: &config::Config) -> Option<impl Fn() + use<>> {
    config.discovery.is_active().then(|| {
        let discovery = config.discovery.clone();
        let settings = config.reporter.clone();
        move || reporter::run_child(discovery.clone(), settings.clone())
    })
}

/// The boot record of the node running here, for `beamup doctor` without a
/// release command (`docker exec c beamup doctor`).
fn doctor_boot_record(
    mode: Mode,
    command: &[String],
    env: &Environment,
) -> Option<state::BootState> {
    if mode != Mode::Doctor || !command.is_empty() {
        return None;
    }
    state::find(env, None)
        .ok()
        .map(|found| found.state)
        .filter(state::BootState::alive)
}

/// `beamup /app/bin/my_app start` (the `--` forgotten): clap only says the
/// argument is unexpected; say what is meant.
fn missing_separator_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if !arg.starts_with('-') => Some(format!(
            "hint: the release command goes after `--`: beamup [OPTIONS] -- {arg} ..."
        )),
        _ => None,
    }
}
