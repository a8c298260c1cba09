//! Issue 8 §2, `--init`: signals sent to beamup reach the release. SIGUSR1 makes the VM
//! write its crash dump and halt; beamup exits with the VM's status.

use nix::sys::signal::Signal;
use testkit::pid1::Pid1Node;

#[test]
fn sigusr1_reaches_the_vm_which_dumps_and_halts() {
    let _heavy = testkit::heavy::shared();
    let mut n = Pid1Node::boot("isg", &["--init"]);
    let dump = n.dir.path().join("erl_crash.dump");
    assert!(!dump.exists());
    let (code, _) = n.stop_with(Signal::SIGUSR1);
    let log = n.vm.log();
    assert!(
        log.contains("forwarded to the release signal=SIGUSR1"),
        "{log}"
    );
    let text = std::fs::read(&dump).unwrap_or_else(|e| panic!("no crash dump ({e}); log:\n{log}"));
    let text = String::from_utf8_lossy(&text);
    assert!(
        text.contains("Received SIGUSR1"),
        "crash dump without the slogan: {}",
        &text[..text.len().min(400)]
    );
    // The VM halts after the dump with status 1 (erts' dump exit); beamup passes it on.
    assert_eq!(code, 1, "log:\n{log}");
    assert!(log.contains("release exited status=1"), "{log}");
    eprintln!("figure: exit status after SIGUSR1 in --init mode: {code}");
}
