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
        (Behaviour::EcsJson, "/v4") => (
            "200 OK",
            r#"{"DockerId":"x","Networks":[{"NetworkMode":"awsvpc","IPv4Addresses":["10.0.5.17"]}]}"#.to_string(),
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

#[test]
fn rancher_preset_replaces_rancher_boot_sh() {
    let server = Server::start(Behaviour::Good);
    let j = inspect_platform(
        &[
            "--platform",
            "rancher",
            "--ip",
            &format!("rancher:{}", server.url()),
            "--basename",
            "demo",
        ],
        &[],
    );
    assert_eq!(j["platform"], "rancher");
    assert_eq!(j["node"], "demo@10.42.7.9");
    assert_eq!(
        j["query"], "web",
        "the query is the service name from the metadata API"
    );
}
