//! Issue 8 §1: from its first instruction beamup honours SIGTERM, SIGINT and SIGQUIT.
//! beamup runs as PID 1 of a fresh PID namespace (as in a container, where the kernel
//! drops a signal PID 1 has no handler for) and waits on a metadata server that accepts
//! and never answers; the signal ends it at once with 128+n, nothing is exec'd (the
//! command would create a marker file) and no process of the namespace is left.

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::pid1::{UNSHARE_PID1, ms_since, pid_ns, pid1_of, processes_in};
use testkit::{TempDir, beamup_bin, require, require_root, wait_until};

/// Accepts connections on loopback and never answers them (a hung metadata API).
struct Silent {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Silent {
    fn start() -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, flag) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            // Held open, never written to, until the server is dropped.
            let held: Mutex<Vec<TcpStream>> = Mutex::new(Vec::new());
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.lock().expect("lock").push(stream);
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Silent {
            port,
            accepted,
            stop,
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One run: beamup (with `extra` flags) as PID 1, stuck on the silent server, gets
/// `signal`; returns its exit code, its stderr, and the time from the signal to exit.
fn stop_while_resolving(extra: &[&str], signal: Signal) -> (i32, String, f64) {
    let server = Silent::start();
    let dir = TempDir::new("sigpre");
    let marker = dir.path().join("release-ran");
    let stderr = dir.path().join("stderr");
    let source = format!("rancher:http://127.0.0.1:{}", server.port);
    let mut cmd = Command::new(UNSHARE_PID1[0]);
    cmd.args(&UNSHARE_PID1[1..])
        .arg(beamup_bin())
        .args([
            "--ip",
            &source,
            "--basename",
            "demo",
            "--metadata-timeout",
            "60s",
        ])
        // Something to discover: a reporter would be forked before the exec.
        .args(["--peers", "demo@10.0.0.2"])
        .args(extra)
        .args(["--", "/bin/sh", "-c", "touch \"$0\"; sleep 600"])
        .arg(&marker)
        .env("TMPDIR", dir.path())
        .env("BEAMUP_PLATFORM", "none")
        .env_remove("BEAMUP_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"));
    let mut unshare = cmd.spawn().expect("start unshare");
    let pid1 = pid1_of(unshare.id());
    let ns = pid_ns(pid1).expect("PID namespace of beamup");
    wait_until(
        Duration::from_secs(20),
        "beamup to ask the metadata server",
        || server.accepted.load(Ordering::SeqCst) > 0,
    );
    // Signalled from the parent namespace, as `docker stop` does.
    let sent = Instant::now();
    kill(Pid::from_raw(pid1 as i32), signal).expect("signal beamup");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = unshare.try_wait().expect("wait unshare") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = unshare.kill();
            let _ = unshare.wait();
            panic!(
                "beamup ignored {signal} for 20 s while resolving its address; stderr:\n{}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let took = ms_since(sent);
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(!marker.exists(), "the release ran after {signal}:\n{log}");
    let left = processes_in(&ns);
    assert!(
        left.is_empty(),
        "processes left in beamup's namespace: {left:?}"
    );
    (status.code().unwrap_or(-1), log, took)
}

fn check_mode(extra: &[&str]) {
    require(&["unshare"]);
    require_root();
    for (signal, code) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGINT, 130),
        (Signal::SIGQUIT, 131),
    ] {
        let (status, log, took) = stop_while_resolving(extra, signal);
        assert_eq!(
            status, code,
            "exit status after {signal} {extra:?}; stderr:\n{log}"
        );
        assert!(
            log.contains(&format!(
                "{signal} received: exiting {code} without starting anything"
            )),
            "no message naming {signal}:\n{log}"
        );
        eprintln!("figure: {signal} to exit before the exec {extra:?}: {took:.1} ms");
    }
}

#[test]
fn exec_mode_stops_on_term_int_quit_while_resolving() {
    check_mode(&[]);
}

#[test]
fn init_mode_stops_on_term_int_quit_while_resolving() {
    check_mode(&["--init"]);
}

#[test]
fn the_stop_line_follows_the_log_format() {
    require_root();
    let (status, log, _) = stop_while_resolving(&["--log-format", "json"], Signal::SIGTERM);
    assert_eq!(status, 143, "{log}");
    let last = log.lines().last().unwrap_or_default();
    let line: serde_json::Value =
        serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {last}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(
        line["message"],
        "SIGTERM received: exiting 143 without starting anything"
    );
}
