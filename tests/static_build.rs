//! The release binaries, as `scripts/build-static.sh x86_64 aarch64` builds them for the release
//! workflow: for each architecture a fully static ELF for that machine within the 2.5 MB
//! budget, copied into target/dist/ under both names (Rust triple, Docker TARGETARCH) with
//! SHA256SUMS, and working: `--version` names the version, the triple and the commit, and
//! `inspect --json` with an env source names the node. The aarch64 binary runs under Debian's
//! qemu-user-static (installed by the script when missing).
//!
//! The script builds both architectures once per test run (a few minutes cold;
//! cargo's no-op when nothing changed). The unit and property tests for aarch64 run under qemu
//! through `scripts/test-cross.sh aarch64` (scripts/test.sh).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

const REPO: &str = env!("CARGO_MANIFEST_DIR");
const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The project's size target for the static binary (README "Install").
const MAX_BYTES: u64 = 2_500_000;

struct Arch {
    name: &'static str,
    triple: &'static str,
    docker: &'static str,
    /// ELF e_machine (EM_X86_64, EM_AARCH64).
    machine: u16,
}

const ARCHES: [Arch; 2] = [
    Arch {
        name: "x86_64",
        triple: "x86_64-unknown-linux-musl",
        docker: "amd64",
        machine: 62,
    },
    Arch {
        name: "aarch64",
        triple: "aarch64-unknown-linux-musl",
        docker: "arm64",
        machine: 183,
    },
];

/// Runs the build script once for both architectures; panics with its output if it fails.
fn build() -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let out = Command::new("bash")
            .arg(Path::new(REPO).join("scripts/build-static.sh"))
            .args(ARCHES.map(|a| a.name))
            .stdin(Stdio::null())
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| format!("cannot run scripts/build-static.sh: {e}"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprint!("{stderr}");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/build-static.sh failed ({}):\n{stderr}",
                out.status
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    target_dir().join("dist")
}

/// cargo's target directory (the script builds into the same one: CARGO_TARGET_DIR or target/).
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|d| {
            if d.is_absolute() {
                d
            } else {
                Path::new(REPO).join(d)
            }
        })
        .unwrap_or_else(|| Path::new(REPO).join("target"))
}

fn release_binary(arch: &Arch) -> PathBuf {
    target_dir().join(arch.triple).join("release/beamup")
}

/// Runs a built binary: natively on its own machine, else under `qemu-<arch>-static`.
fn run(arch: &Arch, args: &[&str], env: &[(&str, &str)]) -> Output {
    let bin = release_binary(arch);
    let mut cmd = if std::env::consts::ARCH == arch.name {
        Command::new(&bin)
    } else {
        let mut c = Command::new(format!("qemu-{}-static", arch.name));
        c.arg(&bin);
        c
    };
    cmd.args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {} ({}): {e}", bin.display(), arch.name))
}

/// (e_machine, has PT_INTERP, has PT_DYNAMIC) of a little-endian ELF64 file.
fn elf_facts(bytes: &[u8]) -> (u16, bool, bool) {
    assert!(
        bytes.len() > 64 && bytes[..4] == *b"\x7fELF",
        "not an ELF file"
    );
    assert_eq!(bytes[4], 2, "not ELF64");
    assert_eq!(bytes[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().expect("8 bytes"));
    let machine = u16_at(18);
    let phoff = usize::try_from(u64_at(32)).expect("e_phoff");
    let phentsize = usize::from(u16_at(54));
    let phnum = usize::from(u16_at(56));
    let (mut interp, mut dynamic) = (false, false);
    for i in 0..phnum {
        match u32_at(phoff + i * phentsize) {
            2 => dynamic = true, // PT_DYNAMIC
            3 => interp = true,  // PT_INTERP
            _ => {}
        }
    }
    (machine, interp, dynamic)
}

#[test]
fn binaries_are_static_elves_for_their_machine_within_budget() {
    let _heavy = testkit::heavy::exclusive();
    build();
    for arch in &ARCHES {
        let path = release_binary(arch);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (machine, interp, dynamic) = elf_facts(&bytes);
        assert_eq!(
            machine,
            arch.machine,
            "{}: wrong ELF machine",
            path.display()
        );
        assert!(!interp, "{}: has a program interpreter", path.display());
        assert!(!dynamic, "{}: has a dynamic section", path.display());
        let size = bytes.len() as u64;
        println!("measure: {}: {size} bytes", arch.triple);
        assert!(
            size <= MAX_BYTES,
            "{}: {size} bytes, over the {MAX_BYTES}-byte budget",
            path.display()
        );
    }
}

#[test]
fn version_names_the_version_target_and_commit() {
    let _heavy = testkit::heavy::exclusive();
    build();
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(REPO)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    // build.rs says `unknown` outside a git checkout (a source tarball, a crates.io build).
    let commit = head.unwrap_or_else(|| "unknown".to_string());
    for arch in &ARCHES {
        let out = run(arch, &["--version"], &[]);
        assert!(out.status.success(), "{}: --version failed", arch.triple);
        let line = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            line.trim(),
            format!("beamup {VERSION} ({}, commit {commit})", arch.triple),
            "{}",
            arch.triple
        );
    }
}

#[test]
fn inspect_json_names_the_node_from_an_env_source() {
    let _heavy = testkit::heavy::exclusive();
    build();
    // IPv4 and IPv6 (the inet6_tcp rule), parsed and decided by the binary of each machine.
    let cases = [
        ("10.20.30.40", "demo@10.20.30.40", None),
        ("fd00::7", "demo@fd00::7", Some("-proto_dist inet6_tcp")),
    ];
    for arch in &ARCHES {
        for (ip, node, aflags) in cases {
            let out = run(
                arch,
                &[
                    "inspect",
                    "--json",
                    "--platform",
                    "none",
                    "--ip",
                    "env:POD_IP",
                    "--basename",
                    "demo",
                ],
                &[("POD_IP", ip)],
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{}: inspect failed: {stderr}",
                arch.triple
            );
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{}: inspect --json is not JSON: {e}", arch.triple));
            assert_eq!(json["node"], node, "{}: {json}", arch.triple);
            assert_eq!(json["source"], "env:POD_IP", "{}: {json}", arch.triple);
            assert_eq!(json["env"]["RELEASE_NODE"], node, "{}: {json}", arch.triple);
            match aflags {
                Some(flag) => assert_eq!(json["env"]["ERL_AFLAGS"], flag, "{}", arch.triple),
                None => assert!(json["env"].get("ERL_AFLAGS").is_none(), "{}", arch.triple),
            }
        }
    }
}

#[test]
fn dist_names_each_binary_both_ways_with_checksums() {
    let _heavy = testkit::heavy::exclusive();
    let dist = build();
    let sums = std::fs::read_to_string(dist.join("SHA256SUMS")).expect("target/dist/SHA256SUMS");
    for arch in &ARCHES {
        let built = std::fs::read(release_binary(arch)).expect("the release binary");
        for name in [
            format!("beamup-{}", arch.triple),
            format!("beamup-linux-{}", arch.docker),
        ] {
            let copy = std::fs::read(dist.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(copy == built, "{name} differs from {}", arch.triple);
            assert!(
                sums.lines().any(|l| l.ends_with(&format!("  {name}"))),
                "SHA256SUMS has no line for {name}:\n{sums}"
            );
        }
    }
    // The check users run after downloading (README "Install").
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&dist)
        .output()
        .expect("sha256sum");
    assert!(
        check.status.success(),
        "sha256sum --check failed: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
