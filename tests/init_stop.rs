//! Issue 8 §2, `--init`: beamup stays PID 1, the release is its child; `docker stop`'s
//! SIGTERM is forwarded to the VM, which stops gracefully (init:stop()), and beamup
//! exits with the release's own status. Also: not being PID 1 is fine and said once.

use std::time::Duration;

use nix::sys::signal::Signal;
use testkit::pid1::{Pid1Node, ProcInfo, children};
use testkit::{TempDir, beamup_bin, output_timeout, require};

#[test]
fn sigterm_is_forwarded_and_the_release_stops_gracefully() {
    let _heavy = testkit::heavy::shared();
    let mut n = Pid1Node::boot("ist", &["--init"]);
    // beamup is PID 1 and the VM its child.
    let exe = std::fs::read_link(format!("/proc/{}/exe", n.pid1)).expect("exe of PID 1");
    assert_eq!(exe, std::fs::canonicalize(beamup_bin()).expect("beamup"));
    assert!(
        children(n.pid1)
            .iter()
            .any(|&p| ProcInfo::read(p).is_some_and(|c| c.comm == "beam.smp")),
        "beam.smp is not beamup's child"
    );
    let (code, took) = n.stop_with(Signal::SIGTERM);
    let log = n.vm.log();
    assert_eq!(code, 0, "a graceful stop exits 0; log:\n{log}");
    assert!(
        log.contains("forwarded to the release signal=SIGTERM"),
        "{log}"
    );
    assert!(log.contains("release exited status=0"), "{log}");
    eprintln!("figure: SIGTERM to exit of a running release, --init: {took:.0} ms");
}

#[test]
fn the_exit_status_is_the_releases() {
    let _heavy = testkit::heavy::shared();
    let mut n = Pid1Node::boot("ist", &["--init"]);
    n.rpc("spawn(fun() -> timer:sleep(300), erlang:halt(3) end), ok");
    let status =
        n.vm.wait_exit(Duration::from_secs(60))
            .expect("the release halted");
    assert_eq!(status.code(), Some(3), "log:\n{}", n.vm.log());
}

#[test]
fn not_pid_1_works_as_a_subreaper_and_says_so() {
    require(&["sh"]);
    let dir = TempDir::new("notpid1");
    let mut cmd = std::process::Command::new(beamup_bin());
    cmd.args(["--init", "--ip", "env:BU_TEST_IP", "--basename", "demo"])
        // An orphan that outlives the release's shell: reaped by beamup meanwhile.
        .args(["--", "/bin/sh", "-c", "(sleep 0.2 &); sleep 0.5; exit 5"])
        .env("BU_TEST_IP", "10.1.2.3")
        .env("BEAMUP_PLATFORM", "none")
        .env("BEAMUP_LOG", "debug")
        .env("TMPDIR", dir.path());
    let out = output_timeout(cmd, Duration::from_secs(30));
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{log}");
    assert_eq!(
        log.matches("another init is present").count(),
        1,
        "one info line says another init is present:\n{log}"
    );
    assert!(log.contains("reaped an orphan"), "{log}");
}
