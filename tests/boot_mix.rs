//! A real mix release booted through beamup inside a namespace host with its own
//! address: named `demo@<address>` with long names, over IPv4 and IPv6-only.

use std::time::Duration;

use testkit::boot::boot_named_after_address;
use testkit::{Net, beamup_command, copy_release, mix_release};

#[test]
fn mix_release_on_an_ipv4_host_is_named_after_its_address() {
    let _heavy = testkit::heavy::shared();
    boot_named_after_address(&mix_release(), "mix4", true);
}

#[test]
fn mix_release_on_an_ipv6_only_host_uses_inet6_tcp() {
    let _heavy = testkit::heavy::shared();
    boot_named_after_address(&mix_release(), "mix6", false);
}

/// An env.sh that sets RELEASE_NODE unconditionally overrides beamup (the start script
/// sources env.sh after beamup's exports): beamup must say so, naming the file and the
/// `${RELEASE_NODE:-...}` fix.
#[test]
fn env_sh_overriding_release_node_is_warned_about() {
    let _heavy = testkit::heavy::shared();
    let (_dir, release) = copy_release(&mix_release());
    let env_sh = release.env_sh();
    let mut text = std::fs::read_to_string(&env_sh).expect("read env.sh");
    text.push_str("\nexport RELEASE_NODE=demo@localhost\n");
    std::fs::write(&env_sh, text).expect("write env.sh");

    let mut net = Net::new("envsh");
    let host = net.add_host("n1", true, false);
    let cmd = beamup_command(&host, &release, &["--ip", "interface:eth0"]);
    let vm = host.spawn(cmd);
    assert!(
        vm.wait_log("RELEASE_NODE:-", Duration::from_secs(30)),
        "no warning naming the ${{RELEASE_NODE:-...}} fix; output:\n{}",
        vm.log()
    );
    let log = vm.log();
    let line = log
        .lines()
        .find(|l| l.contains("RELEASE_NODE:-"))
        .unwrap_or_default();
    assert!(
        line.contains("env.sh"),
        "the warning does not name env.sh: {line}"
    );
}
