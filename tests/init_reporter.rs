//! Issue 8 §2, `--init`: the reporter is supervised. Killed, it is logged and replaced
//! (the first restart within a second), the release is untouched, and the new reporter
//! keeps the peers file going.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use testkit::pid1::{Pid1Node, ms_since, running_exe};
use testkit::{beamup_bin, wait_until};

/// The reporters: processes of the namespace running beamup, PID 1 aside.
fn reporters(n: &Pid1Node) -> Vec<u32> {
    running_exe(n.pid1, &beamup_bin())
        .into_iter()
        .filter(|&p| p != n.pid1)
        .collect()
}

#[test]
fn a_killed_reporter_is_replaced_and_the_release_is_untouched() {
    let _heavy = testkit::heavy::shared();
    let peer = "demo@10.213.254.99";
    // The peers file in a dir of its own, created before boot.
    let files = testkit::TempDir::new("peersf");
    let peers_file = files.path().join("peers");
    let peers_arg = peers_file.to_string_lossy().into_owned();
    let n = Pid1Node::boot(
        "irp",
        &[
            "--init",
            "--peers",
            peer,
            "--interval",
            "1s",
            "--peers-file",
            &peers_arg,
        ],
    );
    wait_until(Duration::from_secs(20), "the peers file", || {
        std::fs::read_to_string(&peers_file).is_ok_and(|t| t.contains(peer))
    });
    let first = reporters(&n);
    assert_eq!(first.len(), 1, "one reporter: {first:?}");
    let vm_before = n.rpc("os:getpid()");

    for round in 1..=2 {
        let old = reporters(&n);
        std::fs::remove_file(&peers_file).expect("remove the peers file");
        let killed = Instant::now();
        kill(Pid::from_raw(old[0] as i32), Signal::SIGKILL).expect("kill the reporter");
        let mut new = Vec::new();
        wait_until(Duration::from_secs(30), "a new reporter", || {
            new = reporters(&n);
            new.len() == 1 && new != old
        });
        let took = ms_since(killed);
        eprintln!("figure: reporter restart #{round} after SIGKILL: {took:.0} ms");
        // The new reporter polls and writes the peers file again.
        wait_until(
            Duration::from_secs(20),
            "the new reporter's peers file",
            || std::fs::read_to_string(&peers_file).is_ok_and(|t| t.contains(peer)),
        );
    }
    let log = n.vm.log();
    assert_eq!(
        log.matches("the reporter was killed by SIGKILL; restarting it in")
            .count(),
        2,
        "{log}"
    );
    // Backoff: 500 ms the first time, then 1 s.
    assert!(log.contains("restarting it in 500ms"), "{log}");
    assert!(log.contains("restarting it in 1s"), "{log}");
    // The release never noticed: same VM, still answering.
    assert_eq!(n.rpc("os:getpid()"), vm_before);
    assert!(n.vm.alive());
}
