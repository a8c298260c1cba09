//! Issue 8 §2: zombies under a release that is PID 1 of its container. With `--init`
//! beamup reaps every process reparented to it: none is ever left, not the `epmd
//! -daemon` parent that every exec-mode container carries, nor 100 orphaned short-lived
//! OS processes the release spawns. The exec-mode count is measured the same way and
//! printed (README "Running in production" gives it).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use testkit::pid1::{Pid1Node, ProcInfo, namespace_processes, zombies};

/// 100 orphans: each `sh` backgrounds a `sleep 0.1` and exits at once, so the sleep is
/// reparented to PID 1 and exits 0.1 s later. Output closed, or os:cmd would wait.
const ORPHANS: &str =
    "[os:cmd(\"sh -c '(sleep 0.1 >/dev/null 2>&1 </dev/null &)'\") || _ <- lists:seq(1, 100)], ok";

/// Boots, spawns the orphans while sampling the namespace's zombies every 20 ms, waits
/// for every sleep to be over; returns (zombies after boot, most zombies in one sample,
/// zombies after the storm, the namespace's processes at the end).
fn zombies_around_orphans(args: &[&str]) -> (Vec<ProcInfo>, usize, Vec<ProcInfo>, Vec<ProcInfo>) {
    let n = Pid1Node::boot("izb", args);
    let after_boot = zombies(n.pid1);
    let stop = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (stop, most, pid1) = (stop.clone(), most.clone(), n.pid1);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                most.fetch_max(zombies(pid1).len(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    assert_eq!(n.rpc(ORPHANS), "ok");
    // The last sleep ends 0.1 s after the rpc returns; a reaper acts in microseconds.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let after = zombies(n.pid1);
    let all = namespace_processes(n.pid1);
    (after_boot, most.load(Ordering::Relaxed), after, all)
}

#[test]
fn init_mode_leaves_no_zombie() {
    let _heavy = testkit::heavy::shared();
    let (after_boot, most, after, all) = zombies_around_orphans(&["--init"]);
    assert!(after_boot.is_empty(), "zombies after boot: {after_boot:?}");
    // The epmd that left the zombie parent behind is there and alive.
    assert!(
        all.iter().any(|p| p.comm == "epmd" && !p.zombie()),
        "no live epmd in the namespace: {all:?}"
    );
    assert!(after.is_empty(), "zombies after 100 orphans: {after:?}");
    eprintln!(
        "figure: --init zombies: {} after boot, {} after 100 orphans (most seen at once in a 20 ms sample, between an exit and its reaping: {most})",
        after_boot.len(),
        after.len()
    );
}

#[test]
fn exec_mode_zombies_are_counted() {
    let _heavy = testkit::heavy::shared();
    let (after_boot, most, after, all) = zombies_around_orphans(&[]);
    eprintln!(
        "figure: exec-mode zombies: {} after boot ({:?}), {} after 100 orphans (most in one sample: {most})",
        after_boot.len(),
        after_boot.iter().map(|p| &p.comm).collect::<Vec<_>>(),
        after.len()
    );
    // The release is PID 1 here: beamup exec'd it.
    assert!(
        all.iter().any(|p| p.pid != 0 && p.comm == "beam.smp"),
        "{all:?}"
    );
    // What the README states: `epmd -daemon`'s exited parents stay zombies for good
    // (two on this OTP), the later orphans are reaped by the kernel (beam.smp ignores
    // SIGCHLD), so the count does not grow with them.
    assert!(
        !after_boot.is_empty() && after_boot.iter().all(|p| p.comm == "epmd"),
        "exec-mode zombies after boot: {after_boot:?}"
    );
    let pids = |z: &[ProcInfo]| z.iter().map(|p| p.pid).collect::<Vec<_>>();
    assert_eq!(
        pids(&after),
        pids(&after_boot),
        "exec-mode zombies after 100 orphans"
    );
}
