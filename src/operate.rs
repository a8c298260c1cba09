//! Day-2 operations on a node beamup booted: `beamup remote|rpc|pid|stop`
//! (the release's own commands, exec'd with the running node's identity),
//! `beamup status` (the reporter's live status, for probes), `beamup env`
//! (that identity as shell `export` lines for a release's env.sh), and
//! `beamup -- /app/bin/my_app <command for the running node>`.
//!
//! `docker exec` and `kubectl exec` get only the container's configured
//! environment: the node's name, `RELEASE_DISTRIBUTION=name`, the IPv6
//! `-proto_dist` and the rendered vm.args exist only in what beamup exported
//! at boot. The boot record (`state`) holds them; the cookie is read again
//! from where it came from, never stored.

use std::path::Path;

use serde_json::json;

use crate::cli::OpsCommand;
use crate::environment::Environment;
use crate::exit_codes::{ExitCode, Failure};
use crate::process;
use crate::release::{self, Call, Op};
use crate::secret::Secret;
use crate::state::{self, BootState, CookieOrigin, LiveStatus, Located};

/// For a non-boot release command: the running node to borrow the identity
/// of. None: boot as usual (a boot command, or a standalone one with no node
/// here). A command for the running node with no node here is an error.
pub fn running_node(call: Call, env: &Environment) -> Result<Option<Located>, Failure> {
    match call {
        Call::Boot => Ok(None),
        Call::Node => running(state::find(env, None)?).map(Some),
        Call::Standalone => Ok(state::find(env, None)
            .ok()
            .filter(|found| found.state.alive())),
    }
}

/// `found` if its release still runs, else the error saying so.
fn running(found: Located) -> Result<Located, Failure> {
    if found.state.alive() {
        return Ok(found);
    }
    Err(Failure::msg(
        ExitCode::NoNode,
        format!(
            "{} (pid {}, recorded in {}) is not running",
            found.state.node,
            found.state.pid,
            found.dir.display()
        ),
    ))
}

/// Execs `command` (`program` resolved) with the running node's identity: no
/// reporter, no rendering. Returns only on failure.
pub fn exec_as(found: &Located, program: &Path, command: &[String], env: &Environment) -> Failure {
    let identity = match identity(&found.state, env) {
        Ok(identity) => identity,
        Err(f) => return f,
    };
    tracing::debug!(node = %found.state.node, "running `{}` as the running node", command.join(" "));
    match process::Launch::new(
        program,
        command,
        &env.overlay(identity.iter().map(|(k, v)| (k.as_str(), v.expose()))),
    ) {
        Ok(launch) => launch.exec(),
        Err(f) => f,
    }
}

/// `beamup remote|rpc|pid|stop|status|env`.
pub fn run(op: OpsCommand, env: &Environment) -> Result<i32, Failure> {
    match op {
        OpsCommand::Status {
            json,
            min_peers,
            target,
        } => Ok(status(env, target.node.as_deref(), min_peers, json)),
        OpsCommand::Env { target } => {
            let found = state::find(env, target.node.as_deref())?;
            print!("{}", shell_exports(&found.state, env)?);
            Ok(0)
        }
        OpsCommand::Remote { target } => {
            release_command(env, target.node.as_deref(), Op::Remote, None)
        }
        OpsCommand::Rpc { expr, target } => {
            release_command(env, target.node.as_deref(), Op::Rpc, Some(expr))
        }
        OpsCommand::Pid { target } => release_command(env, target.node.as_deref(), Op::Pid, None),
        OpsCommand::Stop { target } => release_command(env, target.node.as_deref(), Op::Stop, None),
    }
}

/// The release's own command for `op`, exec'd as the running node.
fn release_command(
    env: &Environment,
    node: Option<&str>,
    op: Op,
    expr: Option<String>,
) -> Result<i32, Failure> {
    let found = running(state::find(env, node)?)?;
    let s = &found.state;
    let Some(sub) = release::subcommand_for(s.kind, op) else {
        return Err(Failure::msg(
            ExitCode::Config,
            format!(
                "{} was started with `{}`, not a mix or relx release script: there is no \
                 release command to run; connect with `erl -name x@{} -remsh {}` and the \
                 node's cookie",
                s.node,
                s.command.join(" "),
                s.address,
                s.node
            ),
        ));
    };
    let program = process::resolve_program(&s.program.to_string_lossy(), None)?;
    let mut command = vec![s.command[0].clone(), sub.to_string()];
    command.extend(expr);
    Err(exec_as(&found, &program, &command, env))
}

/// The options variable beamup put `-proto_dist inet6_tcp` into at boot
/// when its value was not recorded (it held a -setcookie, so it never is):
/// the container's own value gets the `-proto_dist` back.
fn unrecorded_inet6(s: &BootState) -> Option<&str> {
    s.inet6
        .as_deref()
        .filter(|v| release::INET6_VARIABLES.contains(v) && !s.exports.contains_key(*v))
}

/// The variables that give a command the running node's identity: the
/// recorded exports, and the cookie read again from its origin.
fn identity(s: &BootState, env: &Environment) -> Result<Vec<(String, Secret)>, Failure> {
    let mut vars: Vec<(String, Secret)> = s
        .exports
        .iter()
        .map(|(k, v)| (k.clone(), Secret::new(v.clone())))
        .collect();
    if let Some(var) = unrecorded_inet6(s) {
        let value = crate::release::with_inet6(env.get(var));
        vars.push((var.to_string(), Secret::new(value)));
    }
    match s.cookie.clone() {
        CookieOrigin::File(path) => {
            let cookie = crate::cookie::from_file(&path)?.value;
            vars.push(("RELEASE_COOKIE".into(), cookie.clone()));
            vars.push(("RELX_COOKIE".into(), cookie));
        }
        CookieOrigin::Env(var) => {
            if env.get(&var).is_none_or(str::is_empty) {
                return Err(Failure::msg(
                    ExitCode::Config,
                    format!(
                        "{} got its cookie from ${var} at boot, which this process does not \
                         have: run it with the container's environment (docker exec and \
                         kubectl exec pass it) or set {var}",
                        s.node
                    ),
                ));
            }
        }
        CookieOrigin::Release => {}
    }
    Ok(vars)
}

/// `beamup env`: `export NAME='value'` lines for a release's env.sh to
/// `eval`. Values come from the network (addresses are validated, but the
/// rendered query is not) and are only ever single-quoted, never evaluated.
/// The cookie is not printed: a file origin becomes a `cat` of that file.
fn shell_exports(s: &BootState, env: &Environment) -> Result<String, Failure> {
    let mut out = String::new();
    for (name, value) in &s.exports {
        out.push_str(&format!("export {name}={}\n", single_quoted(value)));
    }
    if let Some(var) = unrecorded_inet6(s) {
        out.push_str(&format!(
            "case \" ${{{var}-}} \" in *inet6_tcp*) ;; *) export {var}=\"${{{var}:+${var} }}-proto_dist inet6_tcp\" ;; esac\n"
        ));
    }
    match s.cookie.clone() {
        CookieOrigin::File(path) => {
            // Checked now, so a missing secret is an error here, not an empty cookie.
            crate::cookie::from_file(&path)?;
            let path = single_quoted(&path.to_string_lossy());
            for name in ["RELEASE_COOKIE", "RELX_COOKIE"] {
                // The cookie is one word, trimmed for the release at boot:
                // the same bytes here, whatever blanks or CR the file has.
                out.push_str(&format!(
                    "export {name}=\"$(tr -d ' \\t\\r\\n' < {path})\"\n"
                ));
            }
        }
        _ => {
            identity(s, env)?;
        }
    }
    Ok(out)
}

/// `'...'` with every `'` written as `'\''`: the shell takes the bytes
/// literally (no `$`, backquote or backslash processing inside).
pub fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// One status verdict: ready or not, and the line saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ready: bool,
    pub line: String,
}

/// `beamup status`: prints the verdict (or JSON) and returns 0 when ready,
/// else 1. Reads only.
fn status(env: &Environment, node: Option<&str>, min_peers: usize, json: bool) -> i32 {
    let found = match state::find(env, node) {
        Ok(found) => found,
        Err(f) => {
            let line = format!("not ready: {:#}", f.error);
            emit(json, &line, false, None, None);
            return ExitCode::NotReady.code();
        }
    };
    let (live, read_error) = match state::read_status(&found.dir) {
        Ok(live) => (live, None),
        Err(e) => (None, Some(format!("{e:#}"))),
    };
    let mut verdict = evaluate(
        &found.state,
        live.as_ref(),
        state::unix_ms(),
        min_peers,
        state::alive,
    );
    if let Some(e) = read_error {
        verdict = Verdict {
            ready: false,
            line: format!("not ready: {e}"),
        };
    }
    emit(
        json,
        &verdict.line,
        verdict.ready,
        Some(&found.state),
        live.as_ref(),
    );
    if verdict.ready {
        0
    } else {
        ExitCode::NotReady.code()
    }
}

fn emit(json: bool, line: &str, ready: bool, s: Option<&BootState>, live: Option<&LiveStatus>) {
    if !json {
        println!("{line}");
        return;
    }
    let doc = json!({
        "ready": ready,
        "reason": line,
        "node": s.map(|s| s.node.clone()),
        "pid": s.map(|s| s.pid),
        "release_alive": s.map(BootState::alive),
        "reporter_alive": live.map(|l| state::alive(l.reporter_pid, l.reporter_start)),
        "counted": live.map(LiveStatus::counted),
        "status": live,
    });
    println!("{doc}");
}

/// The readiness rule of `beamup status --min-peers N` (pure: `alive`
/// checks a PID and its start time).
pub fn evaluate(
    s: &BootState,
    live: Option<&LiveStatus>,
    now_ms: u64,
    min_peers: usize,
    alive: impl Fn(i32, Option<u64>) -> bool,
) -> Verdict {
    let not = |line: String| Verdict {
        ready: false,
        line: format!("not ready: {line}"),
    };
    if !alive(s.pid, s.pid_start) {
        return not(format!(
            "{} (pid {}) is not running; its boot record is left from an earlier run",
            s.node, s.pid
        ));
    }
    if !s.reporter {
        return if min_peers == 0 {
            Verdict {
                ready: true,
                line: format!("ready: {} runs (no reporter: nothing to discover)", s.node),
            }
        } else {
            not(format!(
                "{} has no reporter (no --query or --peers), so no peers to count",
                s.node
            ))
        };
    }
    let Some(live) = live else {
        return not(format!(
            "the reporter of {} has not written its status yet",
            s.node
        ));
    };
    let age_s = now_ms.saturating_sub(live.updated) / 1000;
    if !alive(live.reporter_pid, live.reporter_start) {
        return not(format!(
            "the reporter (pid {}) of {} is gone: peers are no longer discovered (last update {age_s} s ago)",
            live.reporter_pid, s.node
        ));
    }
    if now_ms.saturating_sub(live.updated) > live.stale_after_ms() {
        return not(format!(
            "the reporter (pid {}) of {} has not updated its status for {age_s} s (interval {} ms): it is stuck",
            live.reporter_pid, s.node, live.interval_ms
        ));
    }
    if let Some(e) = &live.peers_file_error {
        return not(format!(
            "the reporter of {} cannot write its --peers-file: {e}",
            s.node
        ));
    }
    let counted = live.counted();
    let what = if live.connect {
        "connected"
    } else {
        "discovered"
    };
    let poll = match &live.last_poll {
        Some(p) if !p.ok => format!(
            "; the last poll failed: {}",
            p.error.as_deref().unwrap_or("?")
        ),
        None => "; no poll yet".to_string(),
        _ => String::new(),
    };
    let local = match &live.local {
        Some(l) if live.connect && l != "connected" => format!("; the release: {l}"),
        _ => String::new(),
    };
    let line = format!(
        "{counted} of {} peers {what} (--min-peers {min_peers}){local}{poll}",
        live.peers.len()
    );
    if counted >= min_peers {
        Verdict {
            ready: true,
            line: format!("ready: {line}"),
        }
    } else {
        not(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::{PeerState, PeerStatus};
    use crate::release::Kind;
    use crate::state::LastPoll;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// Hostile values survive a real `sh` round trip byte for byte and run
    /// nothing.
    #[test]
    fn shell_quoting_runs_nothing() {
        let dir = std::env::temp_dir().join(format!("beamup-quote-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let marker = dir.join("pwned");
        let hostile = [
            "plain".to_string(),
            format!("'; touch {}; '", marker.display()),
            format!("$(touch {})", marker.display()),
            format!("`touch {}`", marker.display()),
            "back\\slash \"dq\" $HOME ${HOME} !x *".to_string(),
            "new\nline".to_string(),
            String::new(),
        ];
        for value in &hostile {
            let script = format!(
                "eval \"$(printf '%s\\n' {})\"; printf '%s' \"$V\"",
                single_quoted(&format!("export V={}", single_quoted(value)))
            );
            let out = std::process::Command::new("sh")
                .args(["-c", &script])
                .output()
                .expect("sh");
            assert!(out.status.success(), "{value:?}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), *value);
            assert!(!marker.exists(), "{value:?} ran a command");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// `beamup env` hands a shell exactly the cookie the release got at boot
    /// (trimmed of blanks and CR), and an IPv6 node's options whose value
    /// was not recorded (it holds a -setcookie) get `-proto_dist` back.
    #[test]
    fn env_lines_give_the_shell_the_boot_cookie() {
        let dir = std::env::temp_dir().join(format!("beamup-envcookie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("cookie");
        std::fs::write(&file, " sekrit\r\n").expect("write");
        let mut s = boot(true);
        s.cookie = CookieOrigin::File(file.clone());
        s.inet6 = Some("ELIXIR_ERL_OPTIONS".into());
        let env = crate::environment::Environment::default();
        let lines = shell_exports(&s, &env).expect("exports");
        assert!(!lines.contains("sekrit"), "{lines}");
        let out = std::process::Command::new("sh")
            .args([
                "-c",
                &format!("{lines}\nprintf '%s|%s' \"$RELEASE_COOKIE\" \"$ELIXIR_ERL_OPTIONS\""),
            ])
            .env("ELIXIR_ERL_OPTIONS", "-setcookie x +S 1")
            .output()
            .expect("sh");
        assert!(out.status.success(), "{lines}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sekrit|-setcookie x +S 1 -proto_dist inet6_tcp"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    fn boot(reporter: bool) -> BootState {
        BootState {
            node: "demo@10.0.0.1".into(),
            address: "10.0.0.1".into(),
            source: "interface:eth0".into(),
            basename: "demo".into(),
            command: args(&["/app/bin/demo", "start"]),
            program: "/app/bin/demo".into(),
            kind: Kind::Mix,
            vm_args: None,
            inet6: None,
            exports: Default::default(),
            cookie: CookieOrigin::Release,
            reporter,
            discovery: None,
            started: 0,
            pid: 10,
            pid_start: Some(1),
        }
    }

    fn live(connect: bool, states: &[&str], updated: u64, ok: bool) -> LiveStatus {
        LiveStatus {
            node: "demo@10.0.0.1".into(),
            reporter_pid: 11,
            reporter_start: Some(2),
            interval_ms: 1000,
            updated,
            polls: 3,
            last_poll: Some(LastPoll {
                at: updated,
                ok,
                error: (!ok).then(|| "timeout".to_string()),
            }),
            connect,
            local: Some("connected".into()),
            peers: states
                .iter()
                .enumerate()
                .map(|(i, s)| PeerStatus {
                    node: format!("demo@10.0.0.{}", i + 2),
                    state: match *s {
                        "connected" => PeerState::Connected,
                        "discovered" => PeerState::Discovered,
                        other => PeerState::Failed(other.to_string()),
                    },
                })
                .collect(),
            peers_file_error: None,
        }
    }

    #[test]
    fn status_verdicts() {
        let now = 100_000;
        let all = |_: i32, _: Option<u64>| true;
        let release_only = |pid: i32, _: Option<u64>| pid == 10;
        let none = |_: i32, _: Option<u64>| false;
        let meshed = live(true, &["connected", "connected"], now - 500, true);
        let mut held = meshed.clone();
        held.peers_file_error = Some("/tmp/peers.config is owned by uid 1001".into());
        // (state, live, min, alive, ready, needle)
        type Alive = fn(i32, Option<u64>) -> bool;
        type Row<'a> = (BootState, Option<LiveStatus>, usize, Alive, bool, &'a str);
        let table: Vec<Row> = vec![
            (
                boot(true),
                Some(meshed.clone()),
                2,
                all,
                true,
                "2 of 2 peers connected",
            ),
            (
                boot(true),
                Some(meshed.clone()),
                3,
                all,
                false,
                "2 of 2 peers connected",
            ),
            (
                boot(true),
                Some(live(true, &["connected", "failed"], now, true)),
                2,
                all,
                false,
                "1 of 2",
            ),
            (
                boot(true),
                Some(live(false, &["discovered", "discovered"], now, false)),
                2,
                all,
                true,
                "last poll failed: timeout",
            ),
            (
                boot(true),
                Some(meshed.clone()),
                0,
                release_only,
                false,
                "reporter (pid 11)",
            ),
            (
                boot(true),
                Some(meshed.clone()),
                0,
                none,
                false,
                "is not running",
            ),
            (
                boot(true),
                Some(live(true, &["connected"], now - 13_001, true)),
                1,
                all,
                false,
                "has not updated its status for 13 s",
            ),
            (
                boot(true),
                None,
                0,
                all,
                false,
                "not written its status yet",
            ),
            (
                boot(true),
                Some(held),
                0,
                all,
                false,
                "cannot write its --peers-file: /tmp/peers.config is owned by uid 1001",
            ),
            (boot(false), None, 0, all, true, "no reporter"),
            (boot(false), None, 1, all, false, "no reporter"),
        ];
        for (i, (s, l, min, alive, ready, needle)) in table.into_iter().enumerate() {
            let v = evaluate(&s, l.as_ref(), now, min, alive);
            assert_eq!(v.ready, ready, "row {i}: {}", v.line);
            assert!(v.line.contains(needle), "row {i}: {}", v.line);
            assert!(
                v.line
                    .starts_with(if ready { "ready: " } else { "not ready: " }),
                "row {i}: {}",
                v.line
            );
        }
    }
}
