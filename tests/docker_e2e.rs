//! beamup in real containers, built the way users build it: beamup's own image (docker/Dockerfile:
//! FROM scratch, the static binary from `scripts/build-static.sh`), then `Dockerfile.example` (a
//! mix release and a slim non-root runner that copies beamup from that image) on base images
//! made from Debian's archive by `docker/base-images.sh` (these machines have a Docker Engine but
//! no registry). The from-source path (docker/Dockerfile.source's Rust stage as `BEAMUP_IMAGE`)
//! is built too.
//!
//! - `example_dockerfile_paths_put_a_working_beamup_in_the_image`: both paths give a runner whose
//!   beamup names its target and commit and names the node from an env source.
//! - `network_alias_cluster`: three containers on a user-defined network share one
//!   `--network-alias demo` and `BEAMUP_QUERY=demo`; with `BEAMUP_CONNECT` they form a full mesh.
//!   `docker stop` of one stops its VM gracefully (exit 0) and the others report it left; a fourth
//!   joins; some run with `--read-only --tmpfs /tmp`.
//! - `swarm_service_cluster`: a swarm service of 3 replicas with `BEAMUP_PLATFORM=swarm`
//!   (`tasks.<service>`), scaled to 4; then `examples/compose/stack.yml` through `docker stack
//!   deploy`, its cookie from a swarm secret. Initializes a single-node swarm on 127.0.0.1 if the
//!   engine is in none, and leaves it again (only then).
//! - `compose_example_cluster`: `examples/compose/docker-compose.yml` with `--scale demo=3`.
//! - `otp29_example_build_and_network_alias_cluster` (issue 17): Dockerfile.example on Debian
//!   unstable's base images (`DEBIAN_SUITE=sid docker/base-images.sh`: OTP 29, Elixir 1.20); three
//!   containers under one alias mesh, `beamup rpc` and `bin/demo rpc` answer cleanly, `docker
//!   stop` exits 0.
//! - `examples_use_only_variables_beamup_knows` (not ignored, no Docker): every `BEAMUP_*`
//!   variable in examples/ and Dockerfile.example is one beamup knows.
//!
//! The Docker tests need root and a Docker Engine, and take minutes on a cold machine, so they
//! run with the rest of the suite; `docker/prepare.sh` (called by scripts/test.sh first) installs
//! what they need. To run them alone, with their `measure:` lines:
//!
//!   cargo test --test integration docker_e2e:: -- --nocapture --test-threads=1
//!
//! Everything created is named `bu-e2e-<pid>-*` and removed by a guard on every path, also on
//! panic. The base images (`beamup-base-*`, tagged by a hash of their inputs) and the
//! `beamup-e2e-*:latest` images are kept as caches, so a second run skips the slow builds.
//! Measurements (image sizes, build times, the rebuild after an app-only change, time to full
//! mesh) are printed as `measure:` lines.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const DEMO_IMAGE: &str = "beamup-e2e-demo:latest";
/// Where beamup keeps its peer set inside the containers (on the tmpfs).
const PEERS_FILE: &str = "/tmp/peers.json";
/// How long the cluster may take to converge before the test fails. Generous: three VMs booting
/// at once on a 2-core CI machine take seconds, and only a broken cluster takes this long.
const CONVERGE: Duration = Duration::from_secs(90);
/// `docker stop` grace period: a VM that ignores SIGTERM is killed after it and exits 137.
const STOP_GRACE_SECS: &str = "30";

/// The discovery/connect settings every container gets: a short interval and a short leave
/// hysteresis keep the test quick; the peers file as JSON shows each peer's connect state.
const BEAMUP_ENV: [(&str, &str); 5] = [
    ("BEAMUP_CONNECT", "true"),
    ("BEAMUP_INTERVAL", "1s"),
    ("BEAMUP_LEAVE_AFTER", "2"),
    ("BEAMUP_PEERS_FILE", PEERS_FILE),
    ("BEAMUP_PEERS_FORMAT", "json"),
];

// ------------------------------------------------------------------------------------------
// docker

/// Runs `docker args...`; panics (with the stderr) only if docker cannot be started at all.
fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `docker`: {e}. Install Docker Engine (apt-get install docker.io)")
        })
}

/// Runs docker and returns its trimmed stdout, or an error naming the command and its stderr.
fn docker_try(args: &[&str]) -> Result<String, String> {
    let out = docker(args);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn docker_ok(args: &[&str]) -> String {
    docker_try(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs docker compose (the `docker-compose` program, else the `docker compose` plugin) with
/// `DEMO_IMAGE` set, which the example compose files take their image from.
fn compose(args: &[&str]) -> Output {
    let mut cmd = if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        Command::new("docker-compose")
    } else {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    };
    cmd.args(args)
        .env("DEMO_IMAGE", DEMO_IMAGE)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run docker compose: {e}. Install docker-compose (apt-get install docker-compose)")
        })
}

fn compose_ok(args: &[&str]) -> String {
    let out = compose(args);
    assert!(
        out.status.success(),
        "docker compose {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Calls `check` every 500 ms until it returns `Ok` or `timeout` passes; on timeout panics with
/// the last error and `context()` (e.g. the containers' logs).
fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
    context: impl Fn() -> String,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(e) if start.elapsed() > timeout => {
                panic!(
                    "timed out after {timeout:?} waiting for {what}: {e}\n{}",
                    context()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn logs_of(containers: &[String]) -> String {
    containers
        .iter()
        .map(|c| {
            let out = docker(&["logs", "--tail", "60", c]);
            format!(
                "---- docker logs {c} ----\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// cleanup guard

/// Owns every docker object a test creates and removes it on drop (also while panicking), in
/// dependency order: services and containers, then networks, then the swarm if this test
/// initialized it.
struct Cleanup {
    prefix: String,
    containers: Vec<String>,
    services: Vec<String>,
    /// `docker stack deploy` names.
    stacks: Vec<String>,
    /// (project, compose file) pairs brought up with docker compose.
    compose: Vec<(String, PathBuf)>,
    networks: Vec<String>,
    secrets: Vec<String>,
    /// Set only when this test ran `docker swarm init`.
    leave_swarm: bool,
    /// docker_gwbridge did not exist before `swarm init` (swarm creates it and leaves it behind).
    remove_gwbridge: bool,
}

/// A directory removed on drop (the build context).
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Cleanup {
    fn new(test: &str) -> Self {
        Cleanup {
            prefix: format!("bu-e2e-{}-{test}", std::process::id()),
            containers: Vec::new(),
            services: Vec::new(),
            stacks: Vec::new(),
            compose: Vec::new(),
            networks: Vec::new(),
            secrets: Vec::new(),
            leave_swarm: false,
            remove_gwbridge: false,
        }
    }

    fn name(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.prefix)
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for (project, file) in &self.compose {
            let file = file.to_string_lossy();
            let _ = compose(&["-p", project, "-f", &file, "down", "-v", "--timeout", "30"]);
        }
        for stack in &self.stacks {
            let _ = docker(&["stack", "rm", stack]);
        }
        for service in &self.services {
            let _ = docker(&["service", "rm", service]);
        }
        for container in &self.containers {
            let _ = docker(&["rm", "-f", "-v", container]);
        }
        // `service rm` and `stack rm` return before the task containers are gone, and a
        // network with endpoints (or a secret in use) cannot be removed yet.
        let filters: Vec<String> = self
            .services
            .iter()
            .map(|s| format!("label=com.docker.swarm.service.name={s}"))
            .chain(
                self.stacks
                    .iter()
                    .map(|s| format!("label=com.docker.stack.namespace={s}")),
            )
            .collect();
        for _ in 0..60 {
            let all_gone = filters
                .iter()
                .all(|f| docker(&["ps", "-aq", "--filter", f]).stdout.is_empty());
            if all_gone {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        for network in &self.networks {
            for _ in 0..20 {
                if docker(&["network", "rm", network]).status.success()
                    || !docker(&["network", "inspect", network]).status.success()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        for secret in &self.secrets {
            let _ = docker(&["secret", "rm", secret]);
        }
        if self.leave_swarm {
            let out = docker(&["swarm", "leave", "--force"]);
            if !out.status.success() {
                eprintln!(
                    "cleanup: docker swarm leave --force failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if self.remove_gwbridge {
                let _ = docker(&["network", "rm", "docker_gwbridge"]);
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// images

#[derive(Debug, Clone)]
struct Images {
    runner: String,
    builder: String,
}

/// beamup's own image (docker/Dockerfile: FROM scratch, /beamup from the release binary) and
/// the same image built from source (docker/Dockerfile.source), both kept as caches.
const BEAMUP_IMAGE: &str = "beamup-e2e-beamup:latest";
const BEAMUP_SOURCE_IMAGE: &str = "beamup-e2e-beamup-source:latest";
/// Dockerfile.example's from-source path: the demo app with BEAMUP_SOURCE_IMAGE's beamup.
const DEMO_SOURCE_IMAGE: &str = "beamup-e2e-demo-source:latest";

/// Builds (or reuses) the base images and the demo image once per test run.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Result<Images, String>> = OnceLock::new();
    match IMAGES.get_or_init(build_images) {
        Ok(images) => images,
        Err(e) => panic!("{e}"),
    }
}

/// `docker build` with `--build-arg`s; on failure the tail of its log.
fn docker_build(
    dockerfile: &str,
    tag: &str,
    build_args: &[String],
    context: &str,
) -> Result<f64, String> {
    let start = Instant::now();
    // --force-rm: a failed step leaves no stopped container behind.
    let mut cmd = vec!["build", "--force-rm", "-f", dockerfile, "-t", tag];
    for arg in build_args {
        cmd.extend(["--build-arg", arg]);
    }
    cmd.push(context);
    let out = docker(&cmd);
    if !out.status.success() {
        let log = String::from_utf8_lossy(&out.stdout);
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        return Err(format!(
            "docker build -f {dockerfile} -t {tag} failed:\n{}\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(start.elapsed().as_secs_f64())
}

fn image_bytes(image: &str) -> Result<u64, String> {
    docker_try(&["image", "inspect", "--format", "{{.Size}}", image])?
        .parse()
        .map_err(|e| format!("size of {image}: {e}"))
}

fn build_images() -> Result<Images, String> {
    docker_try(&["info", "--format", "{{.ServerVersion}}"]).map_err(|e| {
        format!("the Docker daemon is not reachable ({e}); these tests need Docker Engine and root")
    })?;

    let start = Instant::now();
    let out = Command::new(Path::new(REPO).join("docker/base-images.sh"))
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run docker/base-images.sh: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker/base-images.sh failed ({}); its messages are above",
            out.status
        ));
    }
    let base_secs = start.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tag = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .ok_or_else(|| format!("docker/base-images.sh printed no {key}=: {stdout}"))
    };
    let images = Images {
        runner: tag("RUNNER_IMAGE")?,
        builder: tag("BUILDER_IMAGE")?,
    };
    let rust = tag("RUST_BUILDER_IMAGE")?;
    println!(
        "measure: base images ready in {base_secs:.1} s (reused when their inputs are unchanged)"
    );

    let beamup_bytes = build_beamup_image()?;

    // The context: the demo app and, for the from-source path, this repository with crates
    // vendored (see docker/example-context.sh). Removed right after the builds.
    let ctx = std::env::temp_dir().join(format!("bu-e2e-{}-context", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctx);
    let dir_guard = TempDir(ctx.clone());
    let status = Command::new(Path::new(REPO).join("docker/example-context.sh"))
        .arg(&ctx)
        .arg(Path::new(REPO).join("tests/fixtures/demo_mix"))
        .status()
        .map_err(|e| format!("cannot run docker/example-context.sh: {e}"))?;
    if !status.success() {
        return Err(format!("docker/example-context.sh failed ({status})"));
    }
    let app_ctx = ctx.join("app").to_string_lossy().to_string();
    let dockerfile = format!("{REPO}/Dockerfile.example");
    // Dockerfile.example for the demo app, with beamup from `beamup_image`.
    let build_demo = |tag: &str, beamup_image: &str| {
        let args = [
            format!("BUILDER_IMAGE={}", images.builder),
            format!("RUNNER_IMAGE={}", images.runner),
            format!("BEAMUP_IMAGE={beamup_image}"),
            "RELEASE_NAME=demo".to_string(),
        ];
        docker_build(&dockerfile, tag, &args, &app_ctx)
    };

    // The default path: no Rust stage, beamup copied from its image.
    let secs = build_demo(DEMO_IMAGE, BEAMUP_IMAGE)?;
    println!("measure: Dockerfile.example (COPY --from beamup's image) built in {secs:.1} s");
    // What users rebuild all day: the app changed, nothing else.
    let app_source = ctx.join("app/lib/demo.ex");
    let mut code = std::fs::read_to_string(&app_source)
        .map_err(|e| format!("{}: {e}", app_source.display()))?;
    code.push_str(&format!(
        "\n# rebuilt by the e2e test {}\n",
        std::process::id()
    ));
    std::fs::write(&app_source, code).map_err(|e| format!("{}: {e}", app_source.display()))?;
    let secs = build_demo(DEMO_IMAGE, BEAMUP_IMAGE)?;
    println!("measure: Dockerfile.example rebuilt after an app-only change in {secs:.1} s");

    // The documented alternative: beamup's image from source (a Rust stage), then the same
    // Dockerfile.example pointed at it.
    let beamup_ctx = ctx.join("beamup").to_string_lossy().to_string();
    let secs = docker_build(
        &format!("{REPO}/docker/Dockerfile.source"),
        BEAMUP_SOURCE_IMAGE,
        &[format!("RUST_BUILDER_IMAGE={rust}")],
        &beamup_ctx,
    )?;
    println!("measure: docker/Dockerfile.source (Rust stage) built in {secs:.1} s");
    let secs = build_demo(DEMO_SOURCE_IMAGE, BEAMUP_SOURCE_IMAGE)?;
    println!("measure: Dockerfile.example (BEAMUP_IMAGE from source) built in {secs:.1} s");
    drop(dir_guard);

    for image in [&images.runner, &images.builder, &rust, DEMO_IMAGE] {
        println!(
            "measure: image {image}: {:.1} MB",
            image_bytes(image)? as f64 / 1e6
        );
    }
    println!("measure: image {BEAMUP_IMAGE}: {beamup_bytes} bytes");
    Ok(images)
}

/// Builds the release binary with scripts/build-static.sh and beamup's image from it
/// (`docker build -f docker/Dockerfile .`, as the README says); checks the image holds the
/// binary and little else and runs; returns its size in bytes.
fn build_beamup_image() -> Result<u64, String> {
    let status = Command::new("bash")
        .arg(Path::new(REPO).join("scripts/build-static.sh"))
        .arg("x86_64")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run scripts/build-static.sh: {e}"))?;
    if !status.success() {
        return Err(format!("scripts/build-static.sh x86_64 failed ({status})"));
    }
    let binary = Path::new(REPO).join("target/dist/beamup-linux-amd64");
    let binary_bytes = std::fs::metadata(&binary)
        .map_err(|e| {
            format!(
                "{}: {e} (docker/Dockerfile copies it from the repository's target/; \
                 is CARGO_TARGET_DIR elsewhere?)",
                binary.display()
            )
        })?
        .len();
    let secs = docker_build(
        &format!("{REPO}/docker/Dockerfile"),
        BEAMUP_IMAGE,
        &["BEAMUP_VERSION=e2e".to_string()],
        REPO,
    )?;
    println!("measure: docker/Dockerfile (beamup's image) built in {secs:.1} s");
    let bytes = image_bytes(BEAMUP_IMAGE)?;
    // FROM scratch plus one file: the image is the binary and a few bytes of tar headers.
    if bytes < binary_bytes || bytes > binary_bytes + 16 * 1024 {
        return Err(format!(
            "{BEAMUP_IMAGE} is {bytes} bytes for a {binary_bytes}-byte binary: \
             it should hold /beamup and nothing else"
        ));
    }
    let version = docker_try(&["run", "--rm", BEAMUP_IMAGE, "--version"])?;
    if !version.contains("(x86_64-unknown-linux-musl, commit ") {
        return Err(format!(
            "docker run --rm {BEAMUP_IMAGE} --version said {version:?}"
        ));
    }
    Ok(bytes)
}

/// `beamup --version` and `inspect` inside an image built from Dockerfile.example: the
/// binary each path put at /usr/local/bin/beamup names the demo node from an env source.
fn beamup_in(image: &str) -> (String, serde_json::Value) {
    let version = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/usr/local/bin/beamup",
        image,
        "--version",
    ]);
    let out = docker_ok(&[
        "run",
        "--rm",
        "-e",
        "POD_IP=10.9.8.7",
        "--entrypoint",
        "/usr/local/bin/beamup",
        image,
        "inspect",
        "--json",
        "--ip",
        "env:POD_IP",
        "--",
        "/app/bin/demo",
        "start",
    ]);
    let json = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("{image}: beamup inspect --json printed no JSON ({e}): {out}"));
    (version, json)
}

/// Dockerfile.example both ways: the published-image path (the default) and the from-source
/// path (`BEAMUP_IMAGE` built by docker/Dockerfile.source) put a working static beamup in the
/// runner; the first carries the commit it was built from, the second (no .git in its
/// context) says `unknown`.
#[test]
fn example_dockerfile_paths_put_a_working_beamup_in_the_image() {
    let _heavy = testkit::heavy::exclusive();
    images();
    for (image, commit_known) in [(DEMO_IMAGE, true), (DEMO_SOURCE_IMAGE, false)] {
        let (version, json) = beamup_in(image);
        assert!(
            version.starts_with(&format!(
                "beamup {} (x86_64-unknown-linux-musl, commit ",
                env!("CARGO_PKG_VERSION")
            )),
            "{image}: {version}"
        );
        assert_eq!(
            !version.ends_with("commit unknown)"),
            commit_known,
            "{image}: {version}"
        );
        assert_eq!(json["node"], "demo@10.9.8.7", "{image}: {json}");
        assert_eq!(json["release"], "mix", "{image}: {json}");
    }
}

// ------------------------------------------------------------------------------------------
// cluster state, read from inside the containers

/// What one container says about itself: its node name (from the peers file) and its peers.
#[derive(Debug, Clone)]
struct View {
    node: String,
    /// Peers in the peers file, with their connect state.
    peers: Vec<(String, String)>,
}

/// Reads beamup's peers file inside `container`.
fn view(container: &str) -> Result<View, String> {
    let text = docker_try(&["exec", container, "cat", PEERS_FILE])?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("{container}: {PEERS_FILE}: {e}: {text}"))?;
    let node = doc["node"]
        .as_str()
        .ok_or_else(|| format!("{container}: no node in {text}"))?
        .to_string();
    let peers = doc["peers"]
        .as_array()
        .ok_or_else(|| format!("{container}: no peers array in {text}"))?
        .iter()
        .map(|p| {
            (
                p["node"].as_str().unwrap_or_default().to_string(),
                p["state"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    Ok(View { node, peers })
}

/// How `bin/demo rpc` finds the cluster's cookie inside a container.
#[derive(Debug, Clone, Copy)]
enum Cookie {
    /// The one baked into the release (`releases/COOKIE`), as beamup uses it by default.
    Release,
    /// A file mounted into the container (a swarm secret behind BEAMUP_COOKIE_FILE). It is read
    /// inside the container, so the cookie never appears in a command line or a message.
    File(&'static str),
}

/// `Node.list()` of the release in `container`, asked through the release's own `bin/demo rpc`
/// (a hidden VM; `docker exec` does not see the RELEASE_NODE beamup exported to the release, so
/// the node name is passed in).
fn node_list(container: &str, node: &str, cookie: Cookie) -> Result<BTreeSet<String>, String> {
    let release_node = format!("RELEASE_NODE={node}");
    let expr = "IO.puts(Enum.map_join(Node.list(), \" \", &Atom.to_string/1))";
    let mut args = vec![
        "exec",
        "-e",
        &release_node,
        "-e",
        "RELEASE_DISTRIBUTION=name",
        container,
    ];
    let script;
    match cookie {
        Cookie::Release => args.extend(["/app/bin/demo", "rpc", expr]),
        Cookie::File(path) => {
            script = format!("RELEASE_COOKIE=$(cat {path}) exec /app/bin/demo rpc \"$0\"");
            args.extend(["sh", "-c", &script, expr]);
        }
    }
    let out = docker_try(&args)?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

/// Waits until every container's peers file lists exactly the others as `connected` and every
/// release's `Node.list()` holds exactly the others; returns container -> node name.
fn wait_full_mesh(containers: &[String], cookie: Cookie, what: &str) -> Vec<(String, String)> {
    wait_until(
        what,
        CONVERGE,
        || {
            let views = containers
                .iter()
                .map(|c| view(c).map(|v| (c.clone(), v)))
                .collect::<Result<Vec<_>, _>>()?;
            let all: BTreeSet<String> = views.iter().map(|(_, v)| v.node.clone()).collect();
            if all.len() != containers.len() {
                return Err(format!("node names are not distinct: {views:?}"));
            }
            for (c, v) in &views {
                let mut want = all.clone();
                want.remove(&v.node);
                let have: BTreeSet<String> = v.peers.iter().map(|(n, _)| n.clone()).collect();
                if have != want {
                    return Err(format!(
                        "{c} ({}) has peers {have:?}, want {want:?}",
                        v.node
                    ));
                }
                if let Some((n, s)) = v.peers.iter().find(|(_, s)| s != "connected") {
                    return Err(format!("{c}: peer {n} is {s}, not connected"));
                }
            }
            // The peers file is beamup's opinion; the VM's own Node.list() is the mesh.
            for (c, v) in &views {
                let mut want = all.clone();
                want.remove(&v.node);
                let have = node_list(c, &v.node, cookie)?;
                if have != want {
                    return Err(format!("{c}: Node.list() = {have:?}, want {want:?}"));
                }
            }
            Ok(views.into_iter().map(|(c, v)| (c, v.node)).collect())
        },
        || logs_of(containers),
    )
}

// ------------------------------------------------------------------------------------------
// tests

#[test]
fn network_alias_cluster() {
    let _heavy = testkit::heavy::exclusive();
    images();
    let mut cleanup = Cleanup::new("alias");
    let network = cleanup.name("net");
    cleanup.networks.push(network.clone());
    docker_ok(&["network", "create", "--driver", "bridge", &network]);

    // n3 and n4 run read-only with a tmpfs on /tmp: the Dockerfile's RELEASE_TMP/HOME/crash dump
    // all point there, so nothing else is written.
    // `extra`: more `-e NAME=value` settings (another cookie for the intruder below).
    let run = |cleanup: &mut Cleanup, n: &str, read_only: bool, extra: &[&str]| -> String {
        let name = cleanup.name(n);
        cleanup.containers.push(name.clone());
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &network,
            "--network-alias",
            "demo",
            "-e",
            "BEAMUP_QUERY=demo",
        ]
        .map(String::from)
        .to_vec();
        for (k, v) in BEAMUP_ENV {
            args.extend(["-e".to_string(), format!("{k}={v}")]);
        }
        for setting in extra {
            args.extend(["-e".to_string(), setting.to_string()]);
        }
        if read_only {
            args.extend(["--read-only", "--tmpfs", "/tmp"].map(String::from));
        }
        args.push(DEMO_IMAGE.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&args);
        name
    };

    let start = Instant::now();
    let first: Vec<String> = [("n1", false), ("n2", false), ("n3", true)]
        .into_iter()
        .map(|(n, ro)| run(&mut cleanup, n, ro, &[]))
        .collect();
    let nodes = wait_full_mesh(
        &first,
        Cookie::Release,
        "a full mesh of 3 containers sharing --network-alias demo",
    );
    println!(
        "measure: network alias: docker run of 3 -> full mesh (peers files + Node.list) in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    for (c, node) in &nodes {
        assert!(
            node.starts_with("demo@"),
            "{c}: node {node} is not named after the release"
        );
    }

    // Day-2 operations through `docker exec`, which gets only the image's environment (none of
    // beamup's exports): beamup's own commands, and the release's own `bin/demo rpc` through the
    // env.sh line of Dockerfile.example, reach the running node by its long name.
    let (c1, node1) = &nodes[0];
    let t = Instant::now();
    let said = docker_ok(&["exec", c1, "beamup", "rpc", "IO.puts(node())"]);
    assert_eq!(said, *node1, "{c1}: `beamup rpc` answered {said:?}");
    println!(
        "measure: docker exec beamup rpc took {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let said = docker_ok(&["exec", c1, "/app/bin/demo", "rpc", "IO.puts(node())"]);
    assert_eq!(
        said, *node1,
        "{c1}: the release's own `bin/demo rpc` answered {said:?}"
    );
    let pid = docker_ok(&["exec", c1, "beamup", "pid"]);
    assert_eq!(
        pid, "1",
        "{c1}: `beamup pid` says {pid}: the VM is PID 1 after the exec"
    );
    // `beamup doctor` in the container: the boot record names the node, every check passes.
    let doctor = docker(&["exec", c1, "beamup", "doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(
        doctor.status.success() && said.contains("2 of 2 peers connected; all checks passed"),
        "{c1}: `beamup doctor` on a healthy mesh ({}):\n{said}{}",
        doctor.status,
        String::from_utf8_lossy(&doctor.stderr)
    );
    assert!(
        !said.contains('✗'),
        "{c1}: a failed check on a healthy mesh:\n{said}"
    );
    let ready = docker(&["exec", c1, "beamup", "status", "--min-peers", "2"]);
    assert!(
        ready.status.success(),
        "{c1}: `beamup status --min-peers 2` failed on a full mesh of 3: {}{}",
        String::from_utf8_lossy(&ready.stdout),
        String::from_utf8_lossy(&ready.stderr)
    );

    // The VM is PID 1 after beamup's exec, so docker's SIGTERM reaches it: init:stop(), exit 0.
    // A shell in between, or a VM ignoring SIGTERM, shows up as 137 after the grace period.
    let (stopped, stopped_node) = nodes[1].clone();
    let pid1 = docker_ok(&["exec", &stopped, "cat", "/proc/1/comm"]);
    assert_eq!(pid1, "beam.smp", "{stopped}: PID 1 is {pid1}, not the VM");
    let t = Instant::now();
    docker_ok(&["stop", "-t", STOP_GRACE_SECS, &stopped]);
    println!(
        "measure: docker stop of one node took {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &stopped]);
    assert_eq!(
        code,
        "0",
        "{stopped} exited {code} after docker stop: not a graceful stop\n{}",
        logs_of(std::slice::from_ref(&stopped))
    );

    let remaining: Vec<String> = first.iter().filter(|c| **c != stopped).cloned().collect();
    let t = Instant::now();
    wait_until(
        "the remaining nodes to report the stopped one as left",
        CONVERGE,
        || {
            for c in &remaining {
                let v = view(c)?;
                if v.peers.iter().any(|(n, _)| *n == stopped_node) {
                    return Err(format!("{c} still lists {stopped_node}: {:?}", v.peers));
                }
                if node_list(c, &v.node, Cookie::Release)?.contains(&stopped_node) {
                    return Err(format!("{c}: Node.list() still holds {stopped_node}"));
                }
            }
            Ok(())
        },
        || logs_of(&remaining),
    );
    println!(
        "measure: stopped node reported left in {:.1} s (interval 1s, leave-after 2)",
        t.elapsed().as_secs_f64()
    );
    // One peer gone: a readiness probe asking for 2 says no, with a reason.
    let not_ready = docker(&[
        "exec",
        &remaining[0],
        "beamup",
        "status",
        "--min-peers",
        "2",
    ]);
    assert_eq!(
        not_ready.status.code(),
        Some(1),
        "{}: `beamup status --min-peers 2` with one peer left: {}{}",
        remaining[0],
        String::from_utf8_lossy(&not_ready.stdout),
        String::from_utf8_lossy(&not_ready.stderr)
    );

    let t = Instant::now();
    let fourth = run(&mut cleanup, "n4", true, &[]);
    let mut now = remaining.clone();
    now.push(fourth);
    wait_full_mesh(&now, Cookie::Release, "a fourth container to join the mesh");
    println!(
        "measure: network alias: docker run of a 4th -> full mesh of 3 in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // `beamup stop` from inside: the release's own graceful stop, the container exits 0.
    let last = &now[2];
    docker_ok(&["exec", last, "beamup", "stop"]);
    let code = wait_until(
        "the container to exit after `beamup stop`",
        CONVERGE,
        || {
            let state = docker_try(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.State.ExitCode}}",
                last,
            ])?;
            match state.split_once(' ') {
                Some(("exited", code)) => Ok(code.to_string()),
                _ => Err(format!("{last} is {state}")),
            }
        },
        || logs_of(std::slice::from_ref(last)),
    );
    assert_eq!(code, "0", "{last} exited {code} after `beamup stop`");

    // A container with another cookie under the same alias: doctor names it.
    let intruder = run(
        &mut cleanup,
        "other-cookie",
        false,
        &["RELEASE_COOKIE=not-the-demo-cookie"],
    );
    let healthy = &now[0];
    wait_until(
        "`beamup doctor` to name the peer with another cookie",
        CONVERGE,
        || {
            let out = docker(&["exec", healthy, "beamup", "doctor"]);
            let said = String::from_utf8_lossy(&out.stdout).to_string();
            if out.status.code() == Some(1) && said.contains("cookie differs") {
                Ok(())
            } else {
                Err(format!("doctor exited {}:\n{said}", out.status))
            }
        },
        || logs_of(&[healthy.clone(), intruder.clone()]),
    );
}

#[test]
fn swarm_service_cluster() {
    let _heavy = testkit::heavy::exclusive();
    images();
    let mut cleanup = Cleanup::new("swarm");

    let state = docker_ok(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
    match state.as_str() {
        "inactive" => {
            let had_gwbridge = docker(&["network", "inspect", "docker_gwbridge"])
                .status
                .success();
            // Loopback only: a single-node swarm needs no other address, and the test must not
            // listen on the machine's real interfaces.
            docker_ok(&[
                "swarm",
                "init",
                "--advertise-addr",
                "127.0.0.1",
                "--listen-addr",
                "127.0.0.1:2377",
            ]);
            cleanup.leave_swarm = true;
            cleanup.remove_gwbridge = !had_gwbridge;
        }
        "active" => println!("note: using the swarm this engine is already part of"),
        other => panic!("the engine's swarm state is {other}; want inactive or active"),
    }

    let network = cleanup.name("ovl");
    cleanup.networks.push(network.clone());
    docker_ok(&["network", "create", "--driver", "overlay", &network]);

    let service = cleanup.name("svc");
    cleanup.services.push(service.clone());
    let mut args: Vec<String> = [
        "service",
        "create",
        "--detach",
        // The image exists only locally: do not ask a registry for its digest.
        "--no-resolve-image",
        "--name",
        &service,
        "--replicas",
        "3",
        "--network",
        &network,
        "--read-only",
        "--mount",
        "type=tmpfs,destination=/tmp",
        "--stop-grace-period",
        "30s",
        // The swarm preset queries tasks.<service>; swarm fills in its own service name.
        "-e",
        "BEAMUP_PLATFORM=swarm",
        "-e",
        "BEAMUP_SERVICE={{.Service.Name}}",
    ]
    .map(String::from)
    .to_vec();
    for (k, v) in BEAMUP_ENV {
        args.extend(["-e".to_string(), format!("{k}={v}")]);
    }
    args.push(DEMO_IMAGE.to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let start = Instant::now();
    docker_ok(&args);

    let tasks = |n: usize| running(&format!("label=com.docker.swarm.service.name={service}"), n);
    let service_logs = || {
        let out = docker(&["service", "logs", "--tail", "40", &service]);
        format!(
            "---- docker service logs {service} ----\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let three = wait_until("3 running tasks", CONVERGE, || tasks(3), service_logs);
    wait_full_mesh(
        &three,
        Cookie::Release,
        "a full mesh of the 3 replicas through tasks.<service>",
    );
    println!(
        "measure: swarm: service create (3 replicas) -> full mesh in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    docker_ok(&["service", "scale", "--detach", &format!("{service}=4")]);
    let four = wait_until("4 running tasks", CONVERGE, || tasks(4), service_logs);
    wait_full_mesh(&four, Cookie::Release, "the 4th replica to join the mesh");
    println!(
        "measure: swarm: scale to 4 -> full mesh in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // examples/compose/stack.yml as users deploy it: the cookie from a swarm secret
    // (BEAMUP_COOKIE_FILE), BEAMUP_SERVICE={{.Service.Name}} expanded by swarm to <stack>_demo.
    let secret = cleanup.name("cookie");
    let cookie = random_hex(32);
    let mut create = Command::new("docker")
        .args(["secret", "create", &secret, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("docker secret create");
    {
        use std::io::Write as _;
        let mut stdin = create.stdin.take().expect("stdin of docker secret create");
        stdin
            .write_all(cookie.as_bytes())
            .expect("writing the cookie to docker secret create");
    }
    assert!(
        create.wait().expect("docker secret create").success(),
        "docker secret create {secret} failed"
    );
    cleanup.secrets.push(secret.clone());

    let stack = cleanup.name("stk");
    cleanup.stacks.push(stack.clone());
    let file = format!("{REPO}/examples/compose/stack.yml");
    let t = Instant::now();
    let out = Command::new("docker")
        .args([
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &file,
            &stack,
        ])
        .env("DEMO_IMAGE", DEMO_IMAGE)
        .env("DEMO_COOKIE_SECRET", &secret)
        .stdin(Stdio::null())
        .output()
        .expect("docker stack deploy");
    assert!(
        out.status.success(),
        "docker stack deploy -c examples/compose/stack.yml failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack_service = format!("{stack}_demo");
    let stack_tasks = wait_until(
        "3 running tasks of the stack",
        CONVERGE,
        || {
            running(
                &format!("label=com.docker.swarm.service.name={stack_service}"),
                3,
            )
        },
        || {
            let out = docker(&["service", "logs", "--tail", "40", &stack_service]);
            String::from_utf8_lossy(&out.stdout).to_string()
        },
    );
    wait_full_mesh(
        &stack_tasks,
        Cookie::File("/run/secrets/demo_cookie"),
        "a full mesh of examples/compose/stack.yml's 3 replicas",
    );
    println!(
        "measure: swarm: docker stack deploy of examples/compose/stack.yml -> full mesh in {:.1} s",
        t.elapsed().as_secs_f64()
    );
}

/// `n` hex digits from the kernel's random source (a throwaway cookie; never printed).
fn random_hex(n: usize) -> String {
    use std::io::Read as _;
    let mut bytes = vec![0u8; n.div_ceil(2)];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("reading /dev/urandom");
    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()[..n].to_string()
}

/// The ids of the running containers matching a `docker ps` filter, if there are `n`.
fn running(filter: &str, n: usize) -> Result<Vec<String>, String> {
    let ids = docker_try(&["ps", "-q", "--filter", filter])?;
    let ids: Vec<String> = ids.lines().map(str::to_string).collect();
    if ids.len() == n {
        Ok(ids)
    } else {
        Err(format!(
            "{} running containers for {filter}, want {n}",
            ids.len()
        ))
    }
}

#[test]
fn compose_example_cluster() {
    let _heavy = testkit::heavy::exclusive();
    images();
    let mut cleanup = Cleanup::new("compose");
    let project = cleanup.name("c");
    let file = Path::new(REPO).join("examples/compose/docker-compose.yml");
    cleanup.compose.push((project.clone(), file.clone()));
    let file = file.to_string_lossy().to_string();

    let t = Instant::now();
    compose_ok(&["-p", &project, "-f", &file, "up", "-d", "--scale", "demo=3"]);
    let ids = compose_ok(&["-p", &project, "-f", &file, "ps", "-q"]);
    let containers: Vec<String> = ids.lines().map(str::to_string).collect();
    assert_eq!(containers.len(), 3, "compose started {containers:?}");
    wait_full_mesh(
        &containers,
        Cookie::Release,
        "a full mesh of examples/compose/docker-compose.yml scaled to 3",
    );
    println!(
        "measure: compose: up --scale demo=3 -> full mesh in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for c in &containers {
        let ro = docker_ok(&["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", c]);
        assert_eq!(ro, "true", "{c}: the example's read_only did not apply");
    }
}

// ------------------------------------------------------------------------------------------
// the examples' configuration (no Docker needed)

/// `BEAMUP_*` names in `text`, e.g. `BEAMUP_QUERY` (not the bare prefix of `BEAMUP_*`).
fn beamup_variables(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while let Some(at) = text[i..].find("BEAMUP_") {
        let start = i + at;
        let word_start =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start + "BEAMUP_".len();
        while end < bytes.len()
            && (bytes[end].is_ascii_uppercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if word_start && end > start + "BEAMUP_".len() {
            found.insert(text[start..end].trim_end_matches('_').to_string());
        }
        i = end;
    }
    found
}

fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files_below(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every `BEAMUP_*` variable the examples and Dockerfile.example set is one beamup reads or
/// exports (it appears in src/ as a string literal or a template variable), so a renamed flag cannot leave an example
/// silently configuring nothing. Dockerfile.example's own build ARGs are not beamup's.
#[test]
fn examples_use_only_variables_beamup_knows() {
    let mut sources = Vec::new();
    files_below(&Path::new(REPO).join("src"), &mut sources);
    let src: String = sources
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_default())
        .collect();
    let known: BTreeSet<String> = beamup_variables(&src)
        .into_iter()
        // A literal ("BEAMUP_IP") or a template variable a preset renders (${BEAMUP_X:-...}).
        .filter(|v| src.contains(&format!("\"{v}\"")) || src.contains(&format!("{{{v}")))
        .collect();
    assert!(
        known.contains("BEAMUP_QUERY"),
        "no BEAMUP_QUERY literal in src/: {known:?}"
    );

    let dockerfile_path = Path::new(REPO).join("Dockerfile.example");
    let dockerfile = std::fs::read_to_string(&dockerfile_path).expect("Dockerfile.example");
    let build_args: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("ARG "))
        .map(|a| a.split('=').next().unwrap_or_default().trim().to_string())
        .collect();

    let mut files = vec![dockerfile_path];
    files_below(&Path::new(REPO).join("examples"), &mut files);
    let mut used = 0;
    for file in &files {
        let text =
            std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for var in beamup_variables(&text) {
            used += 1;
            assert!(
                known.contains(&var) || build_args.contains(&var),
                "{} uses {var}, which beamup neither reads nor exports (known: {known:?})",
                file.display()
            );
        }
    }
    assert!(
        used > 10,
        "only {used} BEAMUP_ variables found in the examples: is examples/ there?"
    );
}

#[test]
fn beamup_variables_are_found_as_words() {
    let table: [(&str, &[&str]); 5] = [
        ("BEAMUP_QUERY=demo", &["BEAMUP_QUERY"]),
        ("  - name: BEAMUP_IP\n    value: x", &["BEAMUP_IP"]),
        ("BEAMUP_* variables", &[]),
        ("XBEAMUP_QUERY, ${BEAMUP_SERVICE}", &["BEAMUP_SERVICE"]),
        ("ARG BEAMUP_SRC=beamup", &["BEAMUP_SRC"]),
    ];
    for (text, want) in table {
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(beamup_variables(text), want, "{text:?}");
    }
}

// ------------------------------------------------------------------------------------------
// issue 17: the current toolchain

/// Dockerfile.example's demo image built on Debian unstable's base images (OTP 29 /
/// Elixir 1.20), the same beamup image as the others.
const DEMO_OTP29_IMAGE: &str = "beamup-e2e-demo-otp29:latest";

/// `DEBIAN_SUITE=<suite> docker/base-images.sh`: (runner, builder) tags.
fn base_images_for(suite: &str) -> (String, String) {
    let out = Command::new(Path::new(REPO).join("docker/base-images.sh"))
        .env("DEBIAN_SUITE", suite)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run docker/base-images.sh: {e}"));
    assert!(
        out.status.success(),
        "DEBIAN_SUITE={suite} docker/base-images.sh failed ({}); its messages are above",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tag = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("docker/base-images.sh printed no {key}=: {stdout}"))
    };
    (tag("RUNNER_IMAGE"), tag("BUILDER_IMAGE"))
}

/// Issue 17: Dockerfile.example, unchanged, on Debian unstable's OTP 29 / Elixir 1.20 builder
/// and runner: the release runs OTP 29 and Elixir 1.20; three containers sharing
/// `--network-alias demo` mesh; `beamup rpc` and the release's own `bin/demo rpc` (the env.sh
/// line) answer from `docker exec`, and so do `beamup doctor` and `beamup peers`, with
/// the discovery flags given in the container's command only; `docker stop` is a graceful
/// stop (exit 0).
#[test]
fn otp29_example_build_and_network_alias_cluster() {
    let _heavy = testkit::heavy::exclusive();
    // Only beamup's own image from the rest: the bookworm images are not needed here.
    build_beamup_image().unwrap_or_else(|e| panic!("{e}"));
    let start = Instant::now();
    let (runner, builder) = base_images_for("sid");
    println!(
        "measure: OTP 29 base images ready in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let ctx = std::env::temp_dir().join(format!("bu-e2e-{}-context29", std::process::id()));
    let _ = std::fs::remove_dir_all(&ctx);
    let _ctx_guard = TempDir(ctx.clone());
    let status = Command::new(Path::new(REPO).join("docker/example-context.sh"))
        .arg(&ctx)
        .arg(Path::new(REPO).join("tests/fixtures/demo_mix"))
        .status()
        .expect("run docker/example-context.sh");
    assert!(
        status.success(),
        "docker/example-context.sh failed ({status})"
    );
    let secs = docker_build(
        &format!("{REPO}/Dockerfile.example"),
        DEMO_OTP29_IMAGE,
        &[
            format!("BUILDER_IMAGE={builder}"),
            format!("RUNNER_IMAGE={runner}"),
            format!("BEAMUP_IMAGE={BEAMUP_IMAGE}"),
            "RELEASE_NAME=demo".to_string(),
        ],
        &ctx.join("app").to_string_lossy(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    println!("measure: Dockerfile.example on OTP 29 built in {secs:.1} s");

    let mut cleanup = Cleanup::new("otp29");
    let network = cleanup.name("net");
    cleanup.networks.push(network.clone());
    docker_ok(&["network", "create", "--driver", "bridge", &network]);
    let mut containers = Vec::new();
    for n in ["n1", "n2", "n3"] {
        let name = cleanup.name(n);
        cleanup.containers.push(name.clone());
        // Discovery in the command (Kubernetes `args:`, a compose `command:`), not in
        // the environment `docker exec` sees: the day-2 commands find it in the boot record.
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            &network,
            "--network-alias",
            "demo",
            "--entrypoint",
            "/usr/local/bin/beamup",
            DEMO_OTP29_IMAGE,
            "--query",
            "demo",
        ]
        .map(String::from)
        .to_vec();
        for (k, v) in BEAMUP_ENV {
            let flag = k
                .trim_start_matches("BEAMUP_")
                .to_lowercase()
                .replace('_', "-");
            args.push(match v {
                "true" => format!("--{flag}"),
                _ => format!("--{flag}={v}"),
            });
        }
        args.extend(["--", "/app/bin/demo", "start"].map(String::from));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker_ok(&args);
        containers.push(name);
    }
    let t = Instant::now();
    let nodes = wait_full_mesh(
        &containers,
        Cookie::Release,
        "a full mesh of 3 OTP 29 containers sharing --network-alias demo",
    );
    println!(
        "measure: OTP 29 network alias: docker run of 3 -> full mesh in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (c1, node1) = &nodes[0];
    let versions = docker_ok(&[
        "exec",
        c1,
        "beamup",
        "rpc",
        "IO.puts(\"#{:erlang.system_info(:otp_release)} #{System.version()}\")",
    ]);
    let (otp, elixir) = versions
        .split_once(' ')
        .unwrap_or_else(|| panic!("{c1}: versions {versions:?}"));
    assert_eq!(otp, "29", "{c1}: OTP release");
    assert!(elixir.starts_with("1.20."), "{c1}: Elixir {elixir}");
    let said = docker_ok(&["exec", c1, "/app/bin/demo", "rpc", "IO.puts(node())"]);
    assert_eq!(said, *node1, "{c1}: the release's own `bin/demo rpc`");

    // Issue 16: the discovery flags live only in the command; `docker exec c beamup
    // doctor` / `peers` with no flags take them from the boot record.
    let doctor = docker(&["exec", c1, "beamup", "doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor.status.success() && said.contains("2 of 2 peers connected; all checks passed"),
        "{c1}: beamup doctor with discovery given in CMD:\n{said}{}",
        String::from_utf8_lossy(&doctor.stderr)
    );
    let listed = docker_ok(&["exec", c1, "beamup", "peers"]);
    let mut want: Vec<&str> = nodes[1..].iter().map(|(_, n)| n.as_str()).collect();
    want.sort_unstable();
    assert_eq!(
        listed.lines().collect::<Vec<_>>(),
        want,
        "{c1}: beamup peers"
    );

    let (stopped, _) = &nodes[1];
    docker_ok(&["stop", "-t", STOP_GRACE_SECS, stopped]);
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", stopped]);
    assert_eq!(
        code,
        "0",
        "{stopped} exited {code} after docker stop: not a graceful stop\n{}",
        logs_of(std::slice::from_ref(stopped))
    );
}
