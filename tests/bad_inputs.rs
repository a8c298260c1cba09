//! Bad input: each case gives a clear message naming the input, a documented
//! exit code, and nothing half-done — the command is never exec'd.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("beamup-bad-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, text).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn beamup(args: &[&str], envs: &[(&str, &str)], tmp: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beamup"));
    cmd.args(args)
        .env_remove("RELEASE_COOKIE")
        .env_remove("POD_IP")
        .env("TMPDIR", tmp)
        .env("BEAMUP_PLATFORM", "none");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run beamup")
}

#[test]
fn bad_inputs_fail_clearly_and_never_exec() {
    let s = Scratch::new("table");
    let marker = s.path("exec-happened");
    // The "release": proves an exec by leaving a marker file.
    fs::create_dir_all(s.path("rel/bin")).expect("mkdir");
    let program = s.write(
        "rel/bin/demo",
        &format!("#!/bin/sh\ntouch {}\n", marker.display()),
        0o755,
    );
    let program = program.to_str().expect("utf8 path").to_string();
    let not_exec = s.write("rel/bin/plain", "#!/bin/sh\n", 0o644);
    let not_exec = not_exec.to_str().expect("utf8").to_string();
    let unset_tpl = s.write(
        "vm.args.src",
        "+K true\n-probe ${BEAMUP_TEST_NOPE}\n",
        0o644,
    );
    let unset_tpl = unset_tpl.to_str().expect("utf8").to_string();
    let bad_tpl = s.write("bad.src", "-x ${$(id)}\n", 0o644);
    let bad_tpl = bad_tpl.to_str().expect("utf8").to_string();
    let nested_tpl = s.write("nested.src", "-x ${BEAMUP_TEST_A:-${HOME}}\n", 0o644);
    let nested_tpl = nested_tpl.to_str().expect("utf8").to_string();
    let empty_cookie = s.write("cookie.empty", "\n", 0o600);
    let empty_cookie = empty_cookie.to_str().expect("utf8").to_string();
    let ok = "cidr:127.0.0.0/8";

    // (args, env, exit code, substrings the message must contain)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, Vec<&'a str>);
    let table: Vec<Case> = vec![
        (
            vec!["--ip", "dhcp", "--", &program],
            vec![],
            2,
            vec!["--ip `dhcp` is not an address source"],
        ),
        (
            vec!["--ip", "cidr:10.0.0.0/33", "--", &program],
            vec![],
            2,
            vec!["`10.0.0.0/33` is not a network in CIDR form"],
        ),
        (
            vec!["--ip", "env:", "--", &program],
            vec![],
            2,
            vec!["needs a variable name"],
        ),
        (
            vec!["--ip", "interface:nosuch0", "--", &program],
            vec![],
            4,
            vec!["interface:nosuch0: no interface named nosuch0", "give --ip"],
        ),
        (
            vec!["--ip", "env:POD_IP", "--", &program],
            vec![],
            4,
            vec!["env:POD_IP: POD_IP is not set"],
        ),
        // The VM could not register with an epmd on such a port (list_to_integer
        // fails in erl_epmd): stopped before the exec, named.
        (
            vec!["--ip", ok, "--", &program],
            vec![("ERL_EPMD_PORT", "")],
            3,
            vec!["ERL_EPMD_PORT=\"\" is not a port", "1 to 65535"],
        ),
        (
            vec!["--ip", ok, "--", &program],
            vec![("ERL_EPMD_PORT", "70000")],
            3,
            vec!["ERL_EPMD_PORT=\"70000\" is not a port", "or unset it"],
        ),
        (
            vec!["--ip", "env:POD_IP", "--", &program],
            vec![("POD_IP", "banana")],
            4,
            vec!["POD_IP=`banana` is not an IP address"],
        ),
        (
            vec![
                "--ip",
                "env:POD_IP",
                "--ip",
                "interface:nosuch0",
                "--",
                &program,
            ],
            vec![],
            4,
            vec!["env:POD_IP:", "interface:nosuch0:"],
        ),
        (
            vec!["--ip", ok, "--vm-args", &unset_tpl, "--", &program],
            vec![],
            3,
            vec![&unset_tpl, "line 2", "BEAMUP_TEST_NOPE is not set"],
        ),
        (
            vec!["--ip", ok, "--vm-args", &bad_tpl, "--", &program],
            vec![],
            3,
            vec!["is not a variable name", "never commands"],
        ),
        (
            vec!["--ip", ok, "--vm-args", "/no/such/vm.args", "--", &program],
            vec![],
            3,
            vec!["/no/such/vm.args"],
        ),
        (
            vec![
                "--ip",
                ok,
                "--query",
                "tasks.${BEAMUP_TEST_SVC}",
                "--",
                &program,
            ],
            vec![],
            3,
            vec!["--query", "BEAMUP_TEST_SVC is not set"],
        ),
        (
            vec!["--ip", ok, "--template", "nocolon", "--", &program],
            vec![],
            2,
            vec!["--template `nocolon` must be SRC:DEST"],
        ),
        (
            vec!["--ip", ok, "--basename", "my.app", "--", &program],
            vec![],
            3,
            vec!["`my.app` contains `.`", "--basename"],
        ),
        (
            vec!["--ip", ok, "--", "/no/such/bin/demo"],
            vec![],
            127,
            vec!["`/no/such/bin/demo` not found"],
        ),
        (
            vec!["--ip", ok, "--", "no-such-command-beamup"],
            vec![],
            127,
            vec!["not found in PATH"],
        ),
        (
            vec!["--ip", ok, "--", &not_exec],
            vec![],
            126,
            vec!["is not executable"],
        ),
        (
            vec![
                "--ip",
                ok,
                "--cookie-file",
                "/no/such/cookie",
                "--",
                &program,
            ],
            vec![],
            3,
            vec!["/no/such/cookie", "--cookie-file"],
        ),
        (
            vec!["--ip", ok, "--cookie-file", &empty_cookie, "--", &program],
            vec![],
            3,
            vec!["is empty"],
        ),
        (
            vec!["--ip", ok],
            vec![],
            2,
            vec!["no command to exec", "after `--`"],
        ),
        (
            vec!["--ip", ok, "--interval", "5 parsecs", "--", &program],
            vec![],
            2,
            vec!["--interval"],
        ),
        // Bounded input (issue 9): every duration has a documented range.
        (
            vec![
                "--ip",
                ok,
                "--interval",
                "99999999999999999999s",
                "--",
                &program,
            ],
            vec![],
            2,
            vec![
                "--interval `99999999999999999999s` is out of range",
                "100ms..1h",
            ],
        ),
        (
            vec!["--ip", ok, "--", &program],
            vec![("BEAMUP_INTERVAL", "1ms")],
            2,
            vec!["--interval `1ms` is out of range"],
        ),
        (
            vec!["--ip", ok, "--dns-timeout", "2h", "--", &program],
            vec![],
            2,
            vec!["--dns-timeout `2h` is out of range", "10ms..60s"],
        ),
        (
            vec!["--ip", ok, "--metadata-timeout", "0.5ms", "--", &program],
            vec![],
            2,
            vec!["--metadata-timeout `0.5ms` is out of range"],
        ),
        (
            vec!["--ip", ok, "--vm-args", &nested_tpl, "--", &program],
            vec![],
            3,
            vec![&nested_tpl, "line 1", "nested expansions are not supported"],
        ),
        (
            vec!["--ip", ok, "--vm-args", "/dev/zero", "--", &program],
            vec![],
            3,
            vec!["/dev/zero", "larger than 1024 KiB"],
        ),
        (
            vec![
                "--ip",
                ok,
                "--peers",
                "demo@10.0.0.2\n-eval x",
                "--",
                &program,
            ],
            vec![],
            2,
            vec!["--peers", "is neither an IP address nor a DNS name"],
        ),
        (
            vec!["--ip", "rancher:https://169.254.169.250", "--", &program],
            vec![],
            2,
            vec!["is https://, but beamup has no TLS built in"],
        ),
        (
            vec!["--ip", ok, "--dns-attempts", "1000000000", "--", &program],
            vec![],
            2,
            vec!["--dns-attempts", "1..=10"],
        ),
        (
            vec!["--ip", ok, "--max-peers", "0", "--", &program],
            vec![],
            2,
            vec!["--max-peers", "1..=65536"],
        ),
        (
            vec!["--ip", ok, "--", &program],
            vec![("BEAMUP_MAX_SRV_TARGETS", "100000")],
            2,
            vec!["--max-srv-targets", "1..=4096"],
        ),
        (
            vec![
                "--ip",
                ok,
                "--query",
                "tasks.${BEAMUP_TEST_SVC}",
                "--",
                &program,
            ],
            vec![("BEAMUP_TEST_SVC", "web\n-eval x")],
            3,
            vec!["--query", "which is not a DNS name"],
        ),
        (
            vec!["--ip", ok, "--leave-when-unlisted", "--", &program],
            vec![],
            2,
            vec!["--leave-when-unlisted needs --connect"],
        ),
        (
            vec!["--ip", ok, "--prune", "--", &program],
            vec![],
            2,
            vec!["--prune needs --connect"],
        ),
        (
            vec!["--ip", ok, "--connect", "--", &program],
            vec![],
            2,
            vec!["--connect needs peers"],
        ),
        (
            vec!["--ip", ok, "--peers", "demo", "--", &program],
            vec![],
            2,
            vec!["--peers", "`demo` is not a node name"],
        ),
        (
            vec!["--ip", ok, "--leave-after", "0", "--", &program],
            vec![],
            2,
            vec!["--leave-after"],
        ),
        (
            vec!["--no-such-flag", "--", &program],
            vec![],
            2,
            vec!["--no-such-flag"],
        ),
        (
            vec!["--ip", ok, &program, "start"],
            vec![],
            2,
            vec!["the release command goes after `--`"],
        ),
        (vec!["peers"], vec![], 2, vec!["nothing to discover"]),
        (
            vec!["--ip", ok, "--", "/usr/bin/env"],
            vec![("RELEASE_NAME", "bad name")],
            3,
            vec!["`bad name` contains ` `"],
        ),
    ];
    let tmp = s.path("tmp");
    fs::create_dir_all(&tmp).expect("mkdir");
    for (args, env, code, needles) in &table {
        let out = beamup(args, env, &tmp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(*code),
            "beamup {args:?} {env:?}: want exit {code}, stderr:\n{stderr}"
        );
        for n in needles {
            assert!(
                stderr.contains(n),
                "beamup {args:?}: stderr lacks {n:?}:\n{stderr}"
            );
        }
        assert!(
            !marker.exists(),
            "beamup {args:?} exec'd the command despite the error"
        );
        assert!(
            !tmp.join("beamup").exists(),
            "beamup {args:?} left a rendered vm.args behind"
        );
    }

    // The control: the same program with good input is exec'd.
    let out = beamup(&["--ip", ok, "--", &program], &[], &tmp);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(marker.exists(), "good input should exec the command");
}

#[test]
fn cookie_never_shows() {
    let s = Scratch::new("cookie");
    let cookie = s.write("cookie", "sup3r-s3cret-cookie\n", 0o600);
    let out = beamup(
        &[
            "inspect",
            "--json",
            "--ip",
            "cidr:127.0.0.0/8",
            "--basename",
            "demo",
            "--cookie-file",
            cookie.to_str().expect("utf8"),
        ],
        &[("BEAMUP_LOG", "debug")],
        &s.0,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stdout.contains("sup3r") && !stderr.contains("sup3r"),
        "cookie leaked:\n{stdout}\n{stderr}"
    );
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("inspect --json is JSON");
    assert_eq!(json["env"]["RELEASE_COOKIE"], "<redacted>");
    assert_eq!(json["env"]["RELX_COOKIE"], "<redacted>");
    assert_eq!(json["node"], "demo@127.0.0.1");
    for key in [
        "address", "source", "node", "basename", "env", "files", "query",
    ] {
        assert!(json.get(key).is_some(), "inspect --json lacks {key}");
    }
}

/// The epmd port `--connect` and doctor ask is the VM's: ERL_EPMD_PORT, else 4369.
#[test]
fn inspect_shows_the_epmd_port_asked() {
    let s = Scratch::new("epmdport");
    let cookie = s.write("cookie", "c00kie\n", 0o600);
    let cookie = cookie.to_str().expect("utf8");
    let args = [
        "inspect",
        "--ip",
        "cidr:127.0.0.0/8",
        "--basename",
        "demo",
        "--cookie-file",
        cookie,
        "--peers",
        "demo@127.0.0.2",
        "--connect",
    ];
    for (env, port) in [(vec![], 4369), (vec![("ERL_EPMD_PORT", "4370")], 4370)] {
        let text = beamup(&args, &env, &s.0);
        let stdout = String::from_utf8_lossy(&text.stdout);
        assert!(
            stdout.contains(&format!("on, connecting peers (epmd port {port})")),
            "{env:?}: {stdout}"
        );
        let mut json_args = args.to_vec();
        json_args.insert(1, "--json");
        let out = beamup(&json_args, &env, &s.0);
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("inspect --json is JSON");
        assert_eq!(json["epmd_port"], port, "{env:?}");
    }
}

#[test]
fn a_bad_log_level_is_named_not_ignored() {
    let s = Scratch::new("loglevel");
    let out = beamup(
        &["inspect", "--ip", "cidr:127.0.0.0/8", "--basename", "demo"],
        &[("BEAMUP_LOG", "loud")],
        &s.0,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BEAMUP_LOG=`loud` is not a level"),
        "{stderr}"
    );
}
