//! Address sources inside network-namespace "hosts", as a container sees its
//! network: `interface:eth0`, `interfaces`, `cidr:`, `hostname` (through the
//! host's own /etc/hosts) and `query` (the own address among the discovery
//! query's answers), each through the real binary.

use std::net::IpAddr;
use std::time::Duration;

use testkit::{Host, Net, Zone, beamup_bin};

fn inspect(host: &Host, args: &[&str]) -> serde_json::Value {
    let mut cmd = host.command(beamup_bin());
    cmd.args([
        "inspect",
        "--json",
        "--basename",
        "demo",
        "--platform",
        "none",
    ])
    .args(args)
    .env("TMPDIR", std::env::temp_dir())
    .env_remove("POD_IP");
    let out = testkit::output_timeout(cmd, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "beamup inspect {args:?} in {}: {stderr}",
        host.name
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn sources_find_the_hosts_own_address() {
    testkit::require_root();
    testkit::require(&["ip", "dnsmasq"]);
    let mut net = Net::new("adr");
    let a = net.add_host("a", true, true);
    let b = net.add_host("b", true, false);
    let (a4, a6) = (IpAddr::V4(a.v4.expect("v4")), IpAddr::V6(a.v6.expect("v6")));
    net.start_dns(&Zone {
        search: vec!["test".into()],
        a: vec![
            ("svc.test".into(), a4),
            ("svc.test".into(), a6),
            ("svc.test".into(), b.addr()),
        ],
        srv: vec![],
    });

    let cases: [(&[&str], IpAddr, &str); 7] = [
        (&["--ip", "interface:eth0"], a4, "interface:eth0"),
        (
            &["--ip", "interface:eth0", "--ip-family", "v6"],
            a6,
            "interface:eth0",
        ),
        (&["--ip", "interfaces"], a4, "interfaces"),
        (&["--ip", "cidr:fd00::/8"], a6, "cidr:fd00::/8"),
        (&["--ip", "hostname"], a4, "hostname"),
        (&["--ip", "query", "--query", "svc"], a4, "query"),
        (&[], a4, "hostname"),
    ];
    for (args, want, source) in cases {
        let j = inspect(&a, args);
        assert_eq!(j["address"], want.to_string(), "{args:?}");
        assert_eq!(j["source"], source, "{args:?}");
    }
    // Host b sees its own address in the same answer.
    let j = inspect(&b, &["--ip", "query", "--query", "svc"]);
    assert_eq!(j["address"], b.addr().to_string());
    // A query that does not hold this host's address says so.
    let mut cmd = b.command(beamup_bin());
    cmd.args([
        "inspect",
        "--basename",
        "demo",
        "--platform",
        "none",
        "--ip",
        "query",
        "--query",
        "nosuch",
    ]);
    let out = testkit::output_timeout(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("query: `nosuch` does not resolve"));
}
