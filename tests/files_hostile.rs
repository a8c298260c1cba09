//! Files beamup writes into contested directories (issue 9, "Files"), through
//! the real binary: symlinks planted at vm.args' name, at the render
//! directory and at the peers file; directories owned by someone else
//! (uid 65534, `nobody`); group/world-writable directories without the
//! sticky bit. Each time the victim file is untouched, and beamup either
//! writes its own file safely or stops with exit 3 naming the directory and
//! the fix, never exec'ing the release. A sticky root-owned directory (a
//! `RELEASE_TMP=/tmp`, as Dockerfile.example sets) keeps working, and
//! `beamup inspect` writes nothing.

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::unistd::{Uid, chown};
use testkit::{TempDir, beamup_bin, require_root, wait_until};

const NOBODY: u32 = 65534;
const NODE: &str = "demo@127.0.0.1";
const TEMPLATE: &str = "## rendered by beamup\n-kernel net_ticktime 4\n";

/// A scratch world: a fake release `rel/bin/demo` that leaves a marker when
/// exec'd, and a vm.args template.
struct World {
    dir: TempDir,
}

impl World {
    fn new(tag: &str) -> World {
        require_root();
        let dir = TempDir::new(&format!("files-{tag}"));
        let w = World { dir };
        fs::create_dir_all(w.path("rel/bin")).expect("mkdir");
        w.file(
            "rel/bin/demo",
            &format!("#!/bin/sh\ntouch {}\n", w.marker().display()),
            0o755,
        );
        w.file("vm.args.tmpl", TEMPLATE, 0o644);
        w
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn file(&self, rel: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.path(rel);
        fs::write(&p, text).expect("write");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    fn dir(&self, rel: &str, mode: u32) -> PathBuf {
        let p = self.path(rel);
        fs::create_dir_all(&p).expect("mkdir");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod");
        p
    }

    fn marker(&self) -> PathBuf {
        self.path("exec-happened")
    }

    /// `beamup [args] --vm-args <template> -- rel/bin/demo` with `env`.
    fn beamup(&self, args: &[&str], env: &[(&str, &Path)]) -> Output {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(["--ip", "cidr:127.0.0.0/8", "--vm-args"])
            .arg(self.path("vm.args.tmpl"))
            .args(args)
            .arg("--")
            .arg(self.path("rel/bin/demo"));
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        testkit::output_timeout(cmd, Duration::from_secs(30))
    }
}

fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("BEAMUP_") || key.starts_with("RELEASE_") || key.starts_with("RELX_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("BEAMUP_PLATFORM", "none");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 3, every `needles` in the message, and the release never exec'd.
fn assert_refused(w: &World, out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for n in needles {
        assert!(err.contains(n), "the message lacks `{n}`:\n{err}");
    }
    assert!(!w.marker().exists(), "the release was exec'd:\n{err}");
}

fn lchown_nobody(path: &Path) {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        Some(Uid::from_raw(NOBODY)),
        None,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .expect("lchown");
}

#[test]
fn a_symlink_at_vm_args_name_is_replaced_and_its_target_untouched() {
    let w = World::new("name");
    let tmp = w.dir("tmp", 0o755);
    let render = tmp.join("beamup").join(NODE);
    fs::create_dir_all(&render).expect("mkdir");
    fs::set_permissions(&render, fs::Permissions::from_mode(0o700)).expect("chmod");
    let victim = w.file("victim", "precious\n", 0o644);
    symlink(&victim, render.join("vm.args")).expect("plant");

    let out = w.beamup(&[], &[("TMPDIR", &tmp)]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(w.marker().exists(), "the release was not exec'd");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    let meta = fs::symlink_metadata(render.join("vm.args")).expect("vm.args");
    assert!(meta.is_file(), "vm.args is still a symlink");
    assert_eq!(meta.mode() & 0o7777, 0o600);
    assert_eq!(
        fs::read_to_string(render.join("vm.args")).expect("read"),
        TEMPLATE
    );
    // vm.args and the boot record only: no temp file left behind.
    let mut names: Vec<String> = fs::read_dir(&render)
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["beamup.state.json", "vm.args"]);
}

#[test]
fn a_symlink_planted_at_the_render_dir_in_a_shared_tmp_is_not_followed() {
    let w = World::new("dirlink");
    // A shared /tmp: root-owned, sticky, world-writable.
    let shared = w.dir("shared", 0o1777);
    let victim_dir = w.dir("victim-dir", 0o755);
    symlink(&victim_dir, shared.join("beamup")).expect("plant");
    lchown_nobody(&shared.join("beamup"));

    let out = w.beamup(&[], &[("TMPDIR", &shared)]);
    assert_refused(
        &w,
        &out,
        &[
            &format!(
                "{}/beamup is a symlink owned by uid {NOBODY}",
                shared.display()
            ),
            "does not follow it",
            "RELEASE_TMP/TMPDIR",
        ],
    );
    assert_eq!(fs::read_dir(&victim_dir).expect("ls").count(), 0);
}

#[test]
fn a_render_dir_owned_by_someone_else_is_refused() {
    let w = World::new("foreign");
    let tmp = w.dir("tmp", 0o1777);
    // Made before beamup by another user, with a vm.args of their own.
    let render = tmp.join("beamup").join(NODE);
    fs::create_dir_all(&render).expect("mkdir");
    let planted = render.join("vm.args");
    fs::write(&planted, "-eval 'os:cmd(\"touch /pwned\")'\n").expect("plant");
    for p in [tmp.join("beamup"), render.clone(), planted.clone()] {
        chown(&p, Some(Uid::from_raw(NOBODY)), None).expect("chown");
    }

    let out = w.beamup(&[], &[("TMPDIR", &tmp)]);
    assert_refused(
        &w,
        &out,
        &[
            &format!("{}/beamup is owned by uid {NOBODY}", tmp.display()),
            "point RELEASE_TMP/TMPDIR",
        ],
    );
    assert!(
        fs::read_to_string(&planted)
            .expect("planted")
            .starts_with("-eval")
    );
}

#[test]
fn group_or_world_writable_dirs_without_the_sticky_bit_are_refused() {
    // 0777: a disk-backed Kubernetes emptyDir; 0770: a group-shared dir.
    for mode in [0o777, 0o770] {
        let w = World::new(&format!("open{mode:o}"));
        let open = w.dir("open", mode);
        let out = w.beamup(&[], &[("RELEASE_TMP", &open)]);
        assert_refused(
            &w,
            &out,
            &[
                &format!(
                    "{} is writable by others (mode {mode:o}) without the sticky bit",
                    open.display()
                ),
                "chmod o-w,g-w",
                "medium: Memory",
            ],
        );
        assert_eq!(fs::read_dir(&open).expect("ls").count(), 0, "wrote into it");
    }
}

/// `RELEASE_TMP=/tmp` as Dockerfile.example sets it: a sticky root-owned
/// directory works (vm.args straight into it), and so does a --template
/// into the machine's real /tmp.
#[test]
fn a_sticky_root_owned_tmp_keeps_working() {
    let w = World::new("sticky");
    let sticky = w.dir("sticky", 0o1777);
    let meta = fs::metadata("/tmp").expect("/tmp");
    assert_eq!(meta.uid(), 0, "/tmp is not root's on this machine");
    assert_eq!(meta.mode() & 0o1777, 0o1777, "/tmp is not sticky here");
    let dest = PathBuf::from(format!(
        "/tmp/beamup-files-test-{}.conf",
        std::process::id()
    ));
    let template = format!("{}:{}", w.path("vm.args.tmpl").display(), dest.display());
    let out = w.beamup(&["--template", &template], &[("RELEASE_TMP", &sticky)]);
    let written = fs::read_to_string(&dest);
    let _ = fs::remove_file(&dest);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(w.marker().exists());
    assert_eq!(written.expect("the --template in /tmp"), TEMPLATE);
    let vm_args = sticky.join("vm.args");
    assert_eq!(fs::read_to_string(&vm_args).expect("vm.args"), TEMPLATE);
    assert_eq!(fs::metadata(&vm_args).expect("meta").mode() & 0o7777, 0o600);
}

/// The peers file: a symlink at its name is replaced (mode 0644, no
/// secret), never followed; a peers file in a directory owned by someone
/// else stops beamup at boot (exit 3), before the release runs.
#[test]
fn the_peers_file_is_never_written_through_a_planted_symlink() {
    let w = World::new("peers");
    // A release that stays up while the reporter writes.
    w.file(
        "rel/bin/demo",
        &format!("#!/bin/sh\ntouch {}\nexec sleep 60\n", w.marker().display()),
        0o755,
    );
    let tmp = w.dir("tmp", 0o755);
    let victim = w.file("victim", "precious\n", 0o600);
    let peers_dir = w.dir("peers", 0o755);
    let peers_file = peers_dir.join("peers");
    symlink(&victim, &peers_file).expect("plant");
    let foreign = w.dir("foreign", 0o755);
    let planted = w.file("foreign/peers", "planted\n", 0o644);
    chown(&foreign, Some(Uid::from_raw(NOBODY)), None).expect("chown");

    let command = |peers_file: &Path| {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(["--ip", "cidr:127.0.0.0/8", "--interval", "1s"])
            .args(["--peers", "demo@127.0.0.2", "--peers-file"])
            .arg(peers_file)
            .arg("--")
            .arg(w.path("rel/bin/demo"));
        clean_env(&mut cmd);
        cmd.env("TMPDIR", &tmp);
        cmd
    };

    let out = testkit::output_timeout(command(&planted), Duration::from_secs(30));
    assert_refused(
        &w,
        &out,
        &[
            &format!("--peers-file {}", planted.display()),
            &format!("{} is owned by uid {NOBODY}", foreign.display()),
        ],
    );
    assert_eq!(fs::read_to_string(&planted).expect("planted"), "planted\n");

    let mut cmd = command(&peers_file);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn beamup");
    wait_until(
        Duration::from_secs(30),
        "the peers file to be written",
        || fs::symlink_metadata(&peers_file).is_ok_and(|m| m.is_file()),
    );
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    assert_eq!(
        fs::metadata(&victim).expect("victim").mode() & 0o7777,
        0o600,
        "the victim was chmod'ed"
    );
    assert_eq!(
        fs::read_to_string(&peers_file).expect("peers"),
        "demo@127.0.0.2\n"
    );
    assert_eq!(
        fs::metadata(&peers_file).expect("peers").mode() & 0o7777,
        0o644
    );
}

/// `beamup inspect` is a dry run: it leaves a live node's render directory
/// exactly as it was, and shows the rendered text instead, the cookie
/// redacted, in text and JSON.
#[test]
fn inspect_writes_nothing_and_shows_the_rendered_text_redacted() {
    let w = World::new("inspect");
    let tmp = w.dir("tmp", 0o755);
    let render = tmp.join("beamup").join(NODE);
    fs::create_dir_all(&render).expect("mkdir");
    let live = render.join("vm.args");
    fs::write(&live, "-name demo@127.0.0.1\n## the live node's\n").expect("live");
    let before = fs::metadata(&live)
        .expect("meta")
        .modified()
        .expect("mtime");
    let cookie = w.file("cookie", "inspect-c00kie-value\n", 0o600);
    w.file(
        "vm.args.tmpl",
        "-setcookie ${RELEASE_COOKIE}\n-probe ${BEAMUP_NODE}\n",
        0o644,
    );
    let fresh = w.dir("fresh", 0o755);

    for (args, tmpdir) in [
        (vec!["inspect"], &tmp),
        (vec!["inspect", "--json"], &tmp),
        (vec!["inspect"], &fresh),
    ] {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(&args)
            .args(["--ip", "cidr:127.0.0.0/8", "--vm-args"])
            .arg(w.path("vm.args.tmpl"))
            .arg("--cookie-file")
            .arg(&cookie)
            .arg("--")
            .arg(w.path("rel/bin/demo"))
            // A cookie on the command line (`erl -setcookie X`) is redacted too.
            .args(["-setcookie", "inspect-c00kie-on-the-command-line"]);
        clean_env(&mut cmd);
        cmd.env("TMPDIR", tmpdir).env("BEAMUP_LOG", "trace");
        let out = testkit::output_timeout(cmd, Duration::from_secs(30));
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert!(
            !stdout.contains("inspect-c00kie") && !stderr(&out).contains("inspect-c00kie"),
            "the cookie shows:\n{stdout}\n{}",
            stderr(&out)
        );
        let shown = if args.contains(&"--json") {
            let doc: serde_json::Value = serde_json::from_str(&stdout).expect("JSON");
            assert_eq!(doc["files"][0]["path"], live.display().to_string());
            assert!(
                doc["cookie"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("--cookie-file ")),
                "{doc}"
            );
            doc["files"][0]["content"]
                .as_str()
                .expect("content")
                .to_string()
        } else {
            stdout
        };
        assert!(shown.contains("-setcookie <redacted>"), "{shown}");
        if !args.contains(&"--json") {
            assert!(
                shown.contains("rel/bin/demo -setcookie <redacted>"),
                "{shown}"
            );
        }
        assert!(shown.contains("-probe demo@127.0.0.1"), "{shown}");
    }
    assert!(!w.marker().exists(), "inspect exec'd the release");
    assert_eq!(
        fs::read_to_string(&live).expect("live"),
        "-name demo@127.0.0.1\n## the live node's\n"
    );
    assert_eq!(
        fs::metadata(&live)
            .expect("meta")
            .modified()
            .expect("mtime"),
        before
    );
    assert_eq!(fs::read_dir(&render).expect("ls").count(), 1);
    assert_eq!(
        fs::read_dir(&fresh).expect("ls").count(),
        0,
        "inspect created the render directory"
    );
}
