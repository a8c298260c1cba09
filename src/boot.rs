//! The default action, `beamup [OPTIONS] -- COMMAND`, as a list of steps (as
//! tini's `main` reads): find the program → borrow a running node's identity
//! for a command meant for it → resolve the config (the only step that does
//! discovery I/O) → claim every file name the node will write → write the
//! rendered files → record the boot → fork the
//! reporter → exec the release (or, with `--init`, stay PID 1 and supervise
//! it). A failure before the exec leaves no reporter behind and no release
//! started with a wrong or missing name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::Flags;
use crate::config::{self, Config, Inputs, Mode, RenderedFile, Value};
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure, OrExit as _};
use crate::release;
use crate::state::{self, BootState, CookieOrigin, DiscoveryAtBoot};
use crate::{cookie, operate, process, reporter, safe_file};

/// Boots the release `command` names; returns only when it does not exec
/// (`--init`: the release's exit status), or fails.
pub fn boot(flags: &Flags, command: &[String], env: &Environment) -> Result<i32, Failure> {
    let program = program_to_exec(command, env)?;
    // The start script is read once: for the call's kind here, for the
    // release's traps and files in `config::resolve`.
    let release = release::detect(&program);
    // `bin/my_app rpc|remote|stop|...`: a command for the running node gets
    // its identity, and no reporter, no rendering, no address lookup.
    let call = release::classify(release.kind, command);
    if let Some(running) = operate::running_node(call, env)? {
        return Err(operate::exec_as(&running, &program, command, env));
    }
    let config = config::resolve(Inputs {
        flags,
        command,
        program: Some(&program),
        release: &release,
        env,
        mode: Mode::Exec,
        booted: None,
    })?;
    // The boot record is complete before anything is claimed: its name is
    // claimed holding it, so a first boot writes it once (issue 19).
    let record = call
        .boots()
        .then(|| boot_state(&config, &program, cookie_origin(&config, flags)));
    let record_claim = claim_names(&names_to_claim(&config, record.as_ref(), env))?;
    write_files(&config.files)?;
    tracing::info!(
        node = %config.node,
        source = %config.source,
        release = ?config.release,
        "starting {}",
        cookie::redact_args(&config.command, config.cookie.as_ref()).join(" ")
    );
    let launch = process::Launch::new(&program, &config.command, &config.exec_env(env))?;
    // A command for a node that is not running here (e.g. `eval`) runs
    // without a reporter and leaves the boot record alone.
    let reporter = if let Some(record) = &record {
        record_boot(record_claim, record, &config, env);
        reporter_body(&config)
    } else {
        None
    };
    if flags.opts.init {
        // beamup stays PID 1: it runs and supervises the release and the reporter.
        process::init::supervise(&launch, reporter.as_ref().map(|r| r as &dyn Fn()))
    } else {
        Err(fork_reporter_and_exec(&launch, reporter))
    }
}

/// The release command's program, resolved on PATH; a missing or
/// non-executable command is reported before anything else.
fn program_to_exec(command: &[String], env: &Environment) -> Result<PathBuf, Failure> {
    let Some(program) = command.first() else {
        return Err(Failure::msg(
            ExitCode::Usage,
            "no command to exec: give the release command after `--`, e.g. \
             beamup -- /app/bin/my_app start",
        ));
    };
    process::resolve_program(program, env.raw_path())
}

/// Writes the rendered files, each mode 0600 (vm.args may carry the
/// cookie), through `safe_file`: checked directories, no symlink followed, a
/// reader never sees half a file.
fn write_files(files: &[RenderedFile]) -> Result<(), Failure> {
    for f in files {
        safe_file::write(&f.dest, f.content.expose().as_bytes(), 0o600)
            .with_context(|| {
                format!(
                    "while writing {} (from {})",
                    f.dest.display(),
                    f.source.display()
                )
            })
            .or_exit(ExitCode::Config)?;
    }
    Ok(())
}

/// A name beamup writes, before or after the exec, and what it is claimed
/// with.
struct Name {
    path: PathBuf,
    /// What the name is, for the error: `--peers-file /tmp/peers.config`.
    what: String,
    mode: u32,
    initial: Vec<u8>,
    /// The boot record's name: [`claim_names`] says whether its claim wrote it.
    record: bool,
}

/// Every name this boot writes: the rendered files and the boot record
/// (`record`, when the boot starts the node) now; the peers file and the
/// live status later, from the reporter. In a shared sticky directory
/// (`RELEASE_TMP=/tmp`, Dockerfile.example's setup) another user could
/// otherwise hold one first, and a non-root beamup could never replace it
/// (issue 16).
fn names_to_claim(config: &Config, record: Option<&BootState>, env: &Environment) -> Vec<Name> {
    let boots = record.is_some();
    let mut names: Vec<Name> = config
        .files
        .iter()
        .map(|f| Name {
            path: f.dest.clone(),
            what: format!(
                "{} (rendered from {})",
                f.dest.display(),
                f.source.display()
            ),
            mode: 0o600,
            initial: Vec::new(),
            record: false,
        })
        .collect();
    // The reporter's files only when a reporter is forked: a command that
    // does not boot the node (e.g. `eval`) runs without one.
    let reporter = boots && config.discovery.is_active();
    if let (true, Some(path)) = (reporter, &config.reporter.peers_file) {
        // A valid file in every format (the release may `file:consult` it at
        // once): the empty peer set until the first poll.
        let empty = reporter::render(
            config.reporter.peers_format,
            &config.node,
            &[],
            state::unix_ms() / 1000,
        );
        names.push(Name {
            path: path.clone(),
            what: format!("--peers-file {}", path.display()),
            mode: reporter::PEERS_FILE_MODE,
            initial: empty.into_bytes(),
            record: false,
        });
    }
    if let Some(record) = record {
        let dir = env.render_dir(&config.node);
        // A free name is created holding the record itself: no second write,
        // no rename (a record that cannot be encoded is left to
        // `state::write_boot`, which warns).
        let encoded = state::encode_boot(record).ok();
        names.push(Name {
            path: state::state_path(&dir),
            what: format!("the boot record {}", state::state_path(&dir).display()),
            mode: 0o600,
            record: encoded.is_some(),
            initial: encoded.unwrap_or_default(),
        });
        if let (true, Some(path)) = (reporter, &config.reporter.status_file) {
            // Empty: `beamup status` reads it as "not written yet".
            names.push(Name {
                path: path.clone(),
                what: format!("the live status {}", path.display()),
                mode: 0o600,
                initial: Vec::new(),
                record: false,
            });
        }
    }
    names
}

/// What the claims did with the boot record's name.
enum RecordClaim {
    /// The name was free: created holding the record.
    Written,
    /// An earlier boot's record is there, in this directory (opened once
    /// for the claims and the write).
    Kept(safe_file::Dir),
    /// Not written by its claim (the record could not be encoded, or the
    /// boot does not start the node).
    NotWritten,
}

/// Claims `names` before anything else is written and before the exec: all
/// are checked first, so a refused one leaves nothing half-claimed; then
/// each free one is created exclusively (`safe_file::claim`), and no other
/// user can take it while the node runs. Another user's entry or a directory
/// at a name is exit 3 naming the path, its owner and the fix. Each
/// directory is opened (walked from `/` and checked) once for all its names
/// (issue 19).
fn claim_names(names: &[Name]) -> Result<RecordClaim, Failure> {
    // (directory, file name) of each name, and each directory once: None
    // until it exists (its first claim makes it).
    let mut places = Vec::with_capacity(names.len());
    let mut dirs: Vec<(PathBuf, Option<safe_file::Dir>)> = Vec::new();
    for name in names {
        let (dir, file) = safe_file::split(&name.path).map_err(|e| refused(name, e))?;
        let i = match dirs.iter().position(|(d, _)| *d == dir) {
            Some(i) => i,
            None => {
                let opened = safe_file::Dir::open_existing(&dir).map_err(|e| refused(name, e))?;
                dirs.push((dir, opened));
                dirs.len() - 1
            }
        };
        if let Some(d) = &dirs[i].1 {
            d.check_claim(&file, &name.path)
                .map_err(|e| refused(name, e))?;
        }
        places.push((i, file));
    }
    let mut record = RecordClaim::NotWritten;
    let mut record_dir = None;
    for (name, (i, file)) in names.iter().zip(&places) {
        let (path, opened) = &mut dirs[*i];
        let dir = match opened {
            Some(dir) => dir,
            None => opened.insert(
                safe_file::Dir::open(path, Some(safe_file::dir_mode_for(name.mode)))
                    .map_err(|e| refused(name, e))?,
            ),
        };
        let claimed = dir
            .claim(file, &name.path, name.mode, &name.initial)
            .map_err(|e| refused(name, e))?;
        if name.record {
            match claimed {
                safe_file::Claimed::Created => record = RecordClaim::Written,
                safe_file::Claimed::Kept => record_dir = Some(*i),
            }
        }
    }
    Ok(match record_dir.and_then(|i| dirs.swap_remove(i).1) {
        Some(dir) => RecordClaim::Kept(dir),
        None => record,
    })
}

/// A name that cannot be claimed: exit 3, saying which name.
fn refused(name: &Name, e: anyhow::Error) -> Failure {
    Failure::new(ExitCode::Config, e.context(name.what.clone()))
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
fn reporter_body(config: &Config) -> Option<impl Fn() + use<>> {
    config.discovery.is_active().then(|| {
        let discovery = config.discovery.clone();
        let settings = config.reporter.clone();
        move || reporter::run_child(discovery.clone(), settings.clone())
    })
}

/// Records the boot, just before the fork/exec: the claim wrote the record
/// when its name was free; an earlier boot's record is replaced here,
/// through the directory the claims opened.
fn record_boot(claim: RecordClaim, record: &BootState, config: &Config, env: &Environment) {
    let dir = env.render_dir(&config.node);
    match claim {
        RecordClaim::Written => {
            tracing::debug!(path = %state::state_path(&dir).display(), "boot state recorded");
        }
        RecordClaim::Kept(opened) => state::write_boot_in(&opened, record),
        RecordClaim::NotWritten => state::write_boot(&dir, record),
    }
}

/// The record of what `config` decided, for the process about to exec.
fn boot_state(config: &Config, program: &Path, cookie: CookieOrigin) -> BootState {
    let pid = std::process::id() as i32;
    BootState {
        node: config.node.clone(),
        address: config.address.to_string(),
        source: config.source.clone(),
        basename: config.basename.clone(),
        command: config.command.clone(),
        program: program.to_path_buf(),
        kind: config.release,
        vm_args: config
            .files
            .iter()
            .map(|f| f.dest.clone())
            .find(|d| d.file_name().is_some_and(|n| n == "vm.args")),
        inet6: inet6_place(config),
        exports: config
            .exports
            .iter()
            .filter(|e| matches!(e.value, Value::Plain(_)))
            .map(|e| (e.name.clone(), e.expose().to_string()))
            .collect::<BTreeMap<_, _>>(),
        cookie,
        reporter: config.discovery.is_active(),
        discovery: config.discovery.is_active().then(|| DiscoveryAtBoot {
            query: config.discovery.query.clone(),
            record: config.discovery.record,
            dns_server: config.discovery.dns_server,
            dns_timeout_ms: config.discovery.timeout.as_millis() as u64,
            dns_attempts: config.discovery.attempts,
            max_srv_targets: config.discovery.max_srv_targets,
            max_peers: config.discovery.max_peers,
            static_peers: config.discovery.static_peers.clone(),
            interval_ms: config.reporter.interval.as_millis() as u64,
            leave_after: config.reporter.leave_after,
            connect: config.reporter.connect.is_some(),
            peers_file: config.reporter.peers_file.clone(),
        }),
        started: state::unix_ms() / 1000,
        pid,
        pid_start: state::process_start(pid),
    }
}

/// The origin of the cookie the release got at boot, from the one cookie
/// rule (`crate::cookie`): a cookie beamup handed to the release came from
/// --cookie-file or from the variable its origin names (`RELEASE_COOKIE`,
/// `RELX_COOKIE`); any other is the release's own.
fn cookie_origin(config: &Config, flags: &Flags) -> CookieOrigin {
    match (&config.cookie, flags.opts.cookie_file.as_deref()) {
        (Some(c), Some(path)) if c.exported => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            CookieOrigin::File(path)
        }
        (Some(c), None) if c.exported => CookieOrigin::Env(c.origin.clone()),
        _ => CookieOrigin::Release,
    }
}

/// Where config put `-proto_dist inet6_tcp` for an IPv6 node.
fn inet6_place(config: &Config) -> Option<String> {
    if !config.address.is_ipv6() {
        return None;
    }
    let exported = release::INET6_VARIABLES.into_iter().find(|name| {
        config
            .exports
            .iter()
            .any(|e| e.name == *name && e.expose().contains("inet6_tcp"))
    });
    let in_vm_args = config
        .files
        .iter()
        .any(|f| f.content.expose().contains("-proto_dist inet6_tcp"));
    Some(match (exported, in_vm_args) {
        (Some(name), _) => name.to_string(),
        (None, true) => "vm.args".to_string(),
        (None, false) => "the environment or the release's env.sh".to_string(),
    })
}
