//! A real rebar3 (relx) release booted through beamup inside a namespace host with its
//! own address: named `demo@<address>` with long names, over IPv4 and IPv6-only.
//! relx reads the node name only from the one `-name` line of the vm.args that
//! VMARGS_PATH points at, and the VM's cookie only from that file's `-setcookie`.

use testkit::boot::boot_named_after_address;
use testkit::relx_release;

#[test]
fn relx_release_on_an_ipv4_host_is_named_after_its_address() {
    let _heavy = testkit::heavy::shared();
    boot_named_after_address(&relx_release(), "relx4", true);
}

#[test]
fn relx_release_on_an_ipv6_only_host_uses_inet6_tcp() {
    let _heavy = testkit::heavy::shared();
    boot_named_after_address(&relx_release(), "relx6", false);
}
