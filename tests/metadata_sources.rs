//! The Rancher 1.x and ECS metadata sources against a local HTTP server on
//! loopback standing in for the platform's API: the good answer, and every
//! way it goes wrong (slow, 404, not an address, connection refused), each
//! with a clear reason and a fall-through to the next source.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

/// How the stand-in server answers.
#[derive(Clone, Copy)]
enum Behaviour {
    Good,
    Slow,
    NotFound,
    Junk,
    EcsJson,
    /// A 100 KiB body, announced by Content-Length.
    Huge,
    /// A body without end nor length (connection-delimited).
    Endless,
    /// A 302 to the Good paths of another server (port in the Location).
    Redirect(u16),
    /// A good address, a service name that would inject a vm.args line.
    EvilName,
    /// A good address, no service name (404).
    NoName,
    /// ECS JSON whose address is a forged log line and terminal escapes.
    EcsForged,
}

/// A tiny HTTP/1.1 server on 127.0.0.1; stops when dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(behaviour: Behaviour) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().expect("addr").port();
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread::spawn(move || answer(stream, behaviour));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { port, stop }
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(mut stream: TcpStream, behaviour: Behaviour) {
    let _ = stream.set_nonblocking(false);
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    let _ = reader.read_line(&mut request_line);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
            break;
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let (status, body) = match (behaviour, path.as_str()) {
        (Behaviour::Good, "/latest/self/container/primary_ip") => ("200 OK", "10.42.7.9".to_string()),
        (Behaviour::Good, "/latest/self/service/name") => ("200 OK", "web".to_string()),
        (Behaviour::Slow, _) => {
            thread::sleep(Duration::from_millis(1500));
            ("200 OK", "10.42.7.9".to_string())
        }
        (Behaviour::Junk, _) => ("200 OK", "<html>metadata</html>".to_string()),
        (Behaviour::Huge, _) => ("200 OK", format!("10.42.7.9{}", " ".repeat(100 * 1024))),
        (Behaviour::Endless, _) => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n10.42.7.9");
            let block = [b' '; 8192];
            // Until beamup hangs up (or 64 MiB, so the test cannot hang).
            for _ in 0..8192 {
                if stream.write_all(&block).is_err() {
                    break;
                }
            }
            return;
        }
        (Behaviour::Redirect(port), _) => {
            let _ = write!(
                stream,
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            return;
        }
        (Behaviour::EvilName | Behaviour::NoName, "/latest/self/container/primary_ip") => {
            ("200 OK", "10.42.7.9".to_string())
        }
        (Behaviour::EvilName, "/latest/self/service/name") => {
            ("200 OK", "web\n-eval 'os:cmd(\"id\")'".to_string())
        }
        (Behaviour::EcsJson, "/v4") => (
            "200 OK",
            r#"{"DockerId":"x","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.5.17"]}]}"#.to_string(),
        ),
        (Behaviour::EcsForged, "/v4") => (
            "200 OK",
            r#"{"Networks":[{"IPv4Addresses":["x\n2026-12-06T00:00:00Z  INFO beamup: forged \u001b[2J\u001b]0;owned\u0007"]}]}"#
                .to_string(),
        ),
        _ => ("404 Not Found", "not found".to_string()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beamup"))
        .arg("inspect")
        .arg("--json")
        .args(["--basename", "demo", "--metadata-timeout", "400ms"])
        .args(args)
        .env("BEAMUP_PLATFORM", "none")
        .env("BEAMUP_LOG", "debug")
        .env("FALLBACK_IP", "10.9.9.9")
        .env("TMPDIR", std::env::temp_dir())
        .output()
        .expect("run beamup")
}

fn json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "beamup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("inspect --json prints JSON")
}

#[test]
fn rancher_gives_address_and_service_name() {
    let server = Server::start(Behaviour::Good);
    let source = format!("rancher:{}", server.url());
    let out = inspect(&["--ip", &source, "--query", "${RANCHER_SERVICE_NAME}"]);
    let j = json(&out);
    assert_eq!(j["address"], "10.42.7.9");
    assert_eq!(j["node"], "demo@10.42.7.9");
    assert_eq!(j["source"], source);
    assert_eq!(j["env"]["RANCHER_SERVICE_NAME"], "web");
    assert_eq!(j["query"], "web");
}

#[test]
fn rancher_failures_fall_through_with_reasons() {
    let refused = {
        // A port nobody listens on: bind, note it, close it.
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let slow = Server::start(Behaviour::Slow);
    let missing = Server::start(Behaviour::NotFound);
    let junk = Server::start(Behaviour::Junk);
    let cases = [
        (slow.url(), "no answer within"),
        (missing.url(), "HTTP 404"),
        (
            junk.url(),
            "`<html>metadata</html>`, which is not an IP address",
        ),
        (format!("http://127.0.0.1:{refused}"), "cannot connect"),
    ];
    for (url, reason) in cases {
        let source = format!("rancher:{url}");
        let out = inspect(&["--ip", &source, "--ip", "env:FALLBACK_IP"]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        let j = json(&out);
        assert_eq!(
            j["address"], "10.9.9.9",
            "{source} should fall through to env:FALLBACK_IP"
        );
        assert_eq!(j["source"], "env:FALLBACK_IP");
        assert!(
            stderr.contains(reason),
            "{source}: the log lacks {reason:?}:\n{stderr}"
        );

        // Alone, the source's failure is the error, with its reason.
        let out = inspect(&["--ip", &source]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(4), "{source}: {stderr}");
        assert!(
            stderr.contains(&format!("{source}: ")) && stderr.contains(reason),
            "{stderr}"
        );
    }
}

#[test]
fn ecs_task_metadata() {
    let server = Server::start(Behaviour::EcsJson);
    let url = format!("{}/v4", server.url());
    let out = Command::new(env!("CARGO_BIN_EXE_beamup"))
        .args(["inspect", "--json", "--basename", "demo"])
        .env("ECS_CONTAINER_METADATA_URI_V4", &url)
        .env("TMPDIR", std::env::temp_dir())
        .env_remove("BEAMUP_PLATFORM")
        .output()
        .expect("run");
    let j = json(&out);
    assert_eq!(j["platform"], "ecs", "ECS detected from its variable");
    assert_eq!(j["address"], "10.0.5.17");
    assert_eq!(j["source"], "ecs");
}

/// `beamup inspect --json` with exactly these platform variables (nothing
/// inherited from the test runner's environment that could pick a platform).
fn inspect_platform(args: &[&str], vars: &[(&str, &str)]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beamup"));
    cmd.arg("inspect")
        .arg("--json")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", std::env::temp_dir());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    json(&cmd.output().expect("run beamup"))
}

#[test]
fn platform_presets_fill_address_basename_and_query() {
    // Kubernetes: downward-API POD_IP, headless service in the pod's namespace.
    let k = inspect_platform(
        &["--basename", "demo"],
        &[
            ("KUBERNETES_SERVICE_HOST", "10.96.0.1"),
            ("POD_IP", "10.244.1.7"),
            ("POD_NAMESPACE", "shop"),
            ("BEAMUP_SERVICE", "demo-headless"),
        ],
    );
    assert_eq!(k["platform"], "kubernetes");
    assert_eq!(k["source"], "env:POD_IP");
    assert_eq!(k["node"], "demo@10.244.1.7");
    assert_eq!(k["query"], "demo-headless.shop.svc.cluster.local");
    assert_eq!(
        k["env"]["DNS_CLUSTER_QUERY"],
        "demo-headless.shop.svc.cluster.local"
    );

    // Fly: IPv6 private address, basename and AAAA query from the app name.
    let f = inspect_platform(
        &[],
        &[
            ("FLY_APP_NAME", "shop-api"),
            ("FLY_PRIVATE_IP", "fdaa:0:1:a7b::5"),
        ],
    );
    assert_eq!(f["platform"], "fly");
    assert_eq!(f["node"], "shop-api@fdaa:0:1:a7b::5");
    assert_eq!(f["query"], "shop-api.internal");
    assert_eq!(f["record"], "aaaa");
    assert_eq!(
        f["env"]["ERL_AFLAGS"], "-proto_dist inet6_tcp",
        "plain command: ERL_AFLAGS"
    );

    // Render: internal IP and the discovery service.
    let r = inspect_platform(
        &[],
        &[
            ("RENDER_SERVICE_NAME", "web"),
            ("RENDER_INTERNAL_IP", "10.210.3.4"),
            ("RENDER_DISCOVERY_SERVICE", "web-discovery"),
        ],
    );
    assert_eq!(
        (r["platform"].as_str(), r["node"].as_str()),
        (Some("render"), Some("web@10.210.3.4"))
    );
    assert_eq!(r["query"], "web-discovery");

    // Swarm is named, not detected: tasks.<service>.
    let s = inspect_platform(
        &[
            "--platform",
            "swarm",
            "--basename",
            "demo",
            "--ip",
            "env:MY_IP",
        ],
        &[("BEAMUP_SERVICE", "web"), ("MY_IP", "10.0.1.6")],
    );
    assert_eq!(s["platform"], "swarm");
    assert_eq!(s["query"], "tasks.web");
    assert_eq!(
        s["source"], "env:MY_IP",
        "an explicit --ip wins over the preset's"
    );

    // Explicit flags win over every part of a preset.
    let e = inspect_platform(
        &["--basename", "other", "--query", "explicit.example"],
        &[("FLY_APP_NAME", "shop-api"), ("FLY_PRIVATE_IP", "fdaa::5")],
    );
    assert_eq!(e["node"], "other@fdaa::5");
    assert_eq!(e["query"], "explicit.example");

    // none: no query, the auto address chain.
    let n = inspect_platform(
        &[
            "--platform",
            "none",
            "--basename",
            "demo",
            "--ip",
            "cidr:127.0.0.0/8",
        ],
        &[("FLY_APP_NAME", "ignored")],
    );
    assert_eq!(n["platform"], "none");
    assert!(n["query"].is_null());
}

/// `inspect --json --platform rancher` against `server`, plus `extra` flags.
fn inspect_rancher_preset(server: &Server, extra: &[&str]) -> serde_json::Value {
    let source = format!("rancher:{}", server.url());
    let mut args = vec![
        "--platform",
        "rancher",
        "--ip",
        &source,
        "--basename",
        "demo",
    ];
    args.extend_from_slice(extra);
    inspect_platform(&args, &[])
}

#[test]
fn rancher_preset_replaces_rancher_boot_sh() {
    let server = Server::start(Behaviour::Good);
    let j = inspect_rancher_preset(&server, &[]);
    assert_eq!(j["platform"], "rancher");
    assert_eq!(j["node"], "demo@10.42.7.9");
    assert_eq!(
        j["query"], "web",
        "the query is the service name from the metadata API"
    );
}

/// What a metadata API answers is bounded and checked: a body past 64 KiB is
/// an error (also without a length), a redirect is not followed, https:// is
/// refused with a reason (no TLS is built in).
#[test]
fn metadata_answers_are_bounded() {
    let good = Server::start(Behaviour::Good);
    let huge = Server::start(Behaviour::Huge);
    let endless = Server::start(Behaviour::Endless);
    let redirect = Server::start(Behaviour::Redirect(good.port));
    let cases = [
        (huge.url(), "larger than 64 KiB"),
        (endless.url(), "larger than 64 KiB"),
        (
            redirect.url(),
            "HTTP 302 Found (a redirect), which beamup does not follow",
        ),
    ];
    for (url, reason) in cases {
        let source = format!("rancher:{url}");
        let out = inspect(&["--ip", &source]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(4), "{source}: {stderr}");
        assert!(
            stderr.contains(reason),
            "{source}: lacks {reason:?}:\n{stderr}"
        );
    }

    // ECS's URL comes from the platform's variable, not a flag: refused when used.
    let out = Command::new(env!("CARGO_BIN_EXE_beamup"))
        .args(["inspect", "--json", "--basename", "demo", "--ip", "ecs"])
        .env("ECS_CONTAINER_METADATA_URI_V4", "https://169.254.170.2/v4")
        .env("BEAMUP_PLATFORM", "none")
        .env("TMPDIR", std::env::temp_dir())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("is https://, but beamup has no TLS built in"),
        "{stderr}"
    );
}

/// A Rancher service name that is not a DNS name never reaches the query or
/// a file; a missing one boots the node without discovery instead of failing
/// (which would crash-loop the container).
#[test]
fn rancher_service_name_is_validated_and_optional() {
    for behaviour in [Behaviour::EvilName, Behaviour::NoName] {
        let server = Server::start(behaviour);
        let vm_args =
            std::env::temp_dir().join(format!("beamup-meta-vmargs-{}", std::process::id()));
        std::fs::write(&vm_args, "-env SERVICE ${RANCHER_SERVICE_NAME}\n").expect("write");
        let out = inspect_rancher_preset(&server, &["--vm-args", vm_args.to_str().expect("utf8")]);
        let _ = std::fs::remove_file(&vm_args);
        assert_eq!(out["node"], "demo@10.42.7.9");
        assert!(
            out["query"].is_null(),
            "no discovery without a service name: {out}"
        );
        assert_eq!(out["env"]["RANCHER_SERVICE_NAME"], "");
        let text = out.to_string();
        assert!(!text.contains("-eval"), "the bad name leaked: {text}");
        assert!(
            out["warnings"]
                .to_string()
                .contains("running without DNS discovery"),
            "{out}"
        );
    }
}

/// Issue 16: a metadata answer is text from outside: its control characters reach
/// neither the error message nor the log raw (no forged log line, no terminal escape).
#[test]
fn metadata_answers_are_escaped_in_messages_and_logs() {
    let forged = Server::start(Behaviour::EcsForged);
    let env_value = "10.0.0.1\n2026-12-06T00:00:00Z  INFO beamup: forged \u{1b}[31m";
    // (flags, environment)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, String)>);
    let cases: [Case; 2] = [
        (
            vec!["--ip", "ecs"],
            vec![(
                "ECS_CONTAINER_METADATA_URI_V4",
                format!("{}/v4", forged.url()),
            )],
        ),
        (
            vec!["--ip", "env:POD_IP"],
            vec![("POD_IP", env_value.to_string())],
        ),
    ];
    for (args, vars) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_beamup"))
            .args(["inspect", "--json", "--basename", "demo"])
            .args(&args)
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .env("BEAMUP_PLATFORM", "none")
            .env("BEAMUP_LOG", "debug")
            .env("TMPDIR", std::env::temp_dir())
            .output()
            .expect("run beamup");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is not an IP address"),
            "{args:?}: {stderr}"
        );
        assert!(
            !stderr.contains('\u{1b}') && !stderr.contains('\u{7}'),
            "{args:?}: {stderr:?}"
        );
        assert!(
            !stderr
                .lines()
                .any(|l| l.starts_with("2026-12-06T00:00:00Z")),
            "{args:?}: a forged log line:\n{stderr}"
        );
        assert!(stderr.contains("\\n2026-12-06"), "{args:?}: {stderr}");
    }
}
