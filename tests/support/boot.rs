//! Booting a demo release through beamup inside a namespace host, and the checks the
//! boot tests share (tests/boot_mix.rs, tests/boot_relx.rs).

use std::net::IpAddr;

use super::{Cookie, Net, Release, TempDir, beamup_command, rpc_erl, wait_node};

/// What `--vm-args` gets in the boot tests: a flag only the VM can report back.
pub const PROBE_TEMPLATE: &str = "## rendered by beamup\n-beamup_probe ${BEAMUP_BASENAME}-ok\n";

/// The `--ip` source that finds `host`'s address: the interface for IPv4, the
/// host's /64 as a CIDR for IPv6 (two sources, both exercised).
pub fn ip_source(host: &super::Host) -> String {
    match host.addr() {
        IpAddr::V4(_) => format!("interface:{}", host.ifname),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("cidr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// Boots `release` through beamup on a fresh host (IPv4-only or IPv6-only) with a
/// `--vm-args` template and a cookie file, then asks the node: its name is
/// `demo@<address>`, it runs longnames, the template reached the VM, an IPv6 node has
/// `-proto_dist inet6_tcp` exactly once, and the cookie is in no log.
pub fn boot_named_after_address(release: &Release, tag: &str, v4: bool) {
    let mut net = Net::new(tag);
    let host = net.add_host("n1", v4, !v4);
    let addr = host.addr();
    let cookie = Cookie::new();
    let dir = TempDir::new("tmpl");
    let template = dir.path().join("vm.args.tmpl");
    std::fs::write(&template, PROBE_TEMPLATE).expect("write the vm.args template");

    let source = ip_source(&host);
    let cmd = beamup_command(
        &host,
        release,
        &[
            "--ip",
            &source,
            "--cookie-file",
            &cookie.path.to_string_lossy(),
            "--vm-args",
            &template.to_string_lossy(),
        ],
    );
    let vm = host.spawn(cmd);
    let node = format!("demo@{addr}");
    let env = [
        ("RELEASE_NODE", node.as_str()),
        ("RELEASE_COOKIE", cookie.value.as_str()),
    ];
    wait_node(&host, release, &vm, &env);

    let ask = |expr: &str| rpc_erl(&host, release, &env, expr);
    assert_eq!(
        ask("node()"),
        format!("'{node}'"),
        "beamup log:\n{}",
        vm.log()
    );
    assert_eq!(ask("net_kernel:longnames()"), "true");
    assert_eq!(
        ask("init:get_argument(beamup_probe)"),
        r#"{ok,[["demo-ok"]]}"#
    );
    if !v4 {
        // Given twice, OTP 25 silently falls back to IPv4 (inet_tcp on 0.0.0.0).
        assert_eq!(
            ask("init:get_argument(proto_dist)"),
            r#"{ok,[["inet6_tcp"]]}"#
        );
    }
    assert!(
        !vm.log().contains(&cookie.value),
        "the cookie appears in the output of beamup/the release"
    );
    drop(vm);
    drop(net);
}
