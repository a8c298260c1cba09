//! Files beamup writes into contested directories (issue 9, "Files"), through
//! the real binary: symlinks planted at vm.args' name, at the render
//! directory and at the peers file; directories owned by someone else
//! (uid 65534, `nobody`); group/world-writable directories without the
//! sticky bit. Each time the victim file is untouched, and beamup either
//! writes its own file safely or stops with exit 3 naming the directory and
//! the fix, never exec'ing the release. A sticky root-owned directory (a
//! `RELEASE_TMP=/tmp`, as Dockerfile.example sets) keeps working, and
//! `beamup inspect` writes nothing.
//!
//! Names held by another user (issue 16, item 4), the way Dockerfile.example
//! runs beamup: two unprivileged users made with `useradd` for the test (a
//! planter and beamup's own user, both non-root; removed with `userdel`
//! whatever happens), a sticky 1777 directory as `RELEASE_TMP` and the peers
//! file's directory. A name the planter holds first stops the boot (exit 3,
//! the path, the owner, the fix, nothing exec'd); names beamup claimed at
//! boot cannot be taken later, and the reporter's writes go on.

use std::fs;
use std::net::UdpSocket;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _, symlink};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
        fs::create_dir_all(w.path("out")).expect("mkdir");
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

    /// In `out/`, which a test may hand to the user beamup runs as.
    fn marker(&self) -> PathBuf {
        self.path("out/exec-happened")
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
    // Claimed at boot (the empty set: an empty file in this format), then
    // written by the reporter's first poll.
    wait_until(
        Duration::from_secs(30),
        "the peers file to be written",
        || {
            fs::symlink_metadata(&peers_file).is_ok_and(|m| m.is_file())
                && fs::read_to_string(&peers_file).is_ok_and(|t| !t.is_empty())
        },
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

/// A user made for one test with `useradd` (no home, no shell), removed with
/// `userdel` on Drop, also when the test panics. Named `bu<pid><tag>`, so
/// tests running at once (and other test runs) never share one.
struct Account {
    name: String,
    uid: u32,
    gid: u32,
}

impl Account {
    fn new(tag: &str) -> Account {
        let name = format!("bu{}{tag}", std::process::id());
        // /etc/passwd's lock may be held by another useradd a moment.
        retry(&format!("useradd {name}"), || {
            Command::new("useradd")
                .args(["--system", "--no-create-home", "--user-group"])
                .args(["--shell", "/usr/sbin/nologin", &name])
                .status()
                .is_ok_and(|s| s.success())
        });
        // Made first, so a failure below still removes the user.
        let mut account = Account {
            name: name.clone(),
            uid: 0,
            gid: 0,
        };
        let user = nix::unistd::User::from_name(&name)
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("useradd made no user {name}"));
        account.uid = user.uid.as_raw();
        account.gid = user.gid.as_raw();
        account
    }

    /// `cmd`, run as this user (no supplementary groups: std drops them).
    fn run<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.uid(self.uid).gid(self.gid)
    }

    /// `uid 1001 (bu42p)`, as beamup names an owner.
    fn shown(&self) -> String {
        format!("uid {} ({})", self.uid, self.name)
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        // Nothing left running as the user here: every process the tests
        // start as it is waited for or killed before the Account drops.
        retry(&format!("userdel {}", self.name), || {
            Command::new("userdel")
                .arg(&self.name)
                .status()
                .is_ok_and(|s| s.success())
                || nix::unistd::User::from_name(&self.name).is_ok_and(|u| u.is_none())
        });
    }
}

fn retry(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..50 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if !std::thread::panicking() {
        panic!("{what} kept failing");
    }
}

/// `script` run by `sh` as `who` with `args` ($1...): whether it succeeded.
fn sh_as(who: &Account, script: &str, args: &[&Path]) -> bool {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(script).arg("sh").args(args);
    who.run(&mut cmd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The planter and beamup's user, and a world whose release marker beamup's
/// user can write: a fake release exec'd by beamup runs as that user.
struct Shared {
    w: World,
    planter: Account,
    runner: Account,
}

impl Shared {
    fn new(tag: &str) -> Shared {
        let w = World::new(tag);
        let planter = Account::new(&format!("{tag}p"));
        let runner = Account::new(&format!("{tag}r"));
        chown(&w.path("out"), Some(Uid::from_raw(runner.uid)), None).expect("chown");
        w.file(
            "rel/bin/demo",
            &format!(
                "#!/bin/sh\ntouch {}\nexec sleep 120\n",
                w.marker().display()
            ),
            0o755,
        );
        Shared { w, planter, runner }
    }

    /// A fresh sticky 1777 directory, root's (a machine's /tmp, an emptyDir
    /// with `medium: Memory`).
    fn sticky(&self, name: &str) -> PathBuf {
        self.w.dir(name, 0o1777)
    }

    /// beamup as its user, RELEASE_TMP and the peers file in `shared`.
    fn beamup(&self, shared: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(["--ip", "cidr:127.0.0.0/8", "--interval", "1s"])
            .arg("--vm-args")
            .arg(self.w.path("vm.args.tmpl"))
            .arg("--peers-file")
            .arg(shared.join("peers.config"))
            .args(["--peers-format", "erlang"])
            .args(args)
            .arg("--")
            .arg(self.w.path("rel/bin/demo"));
        clean_env(&mut cmd);
        cmd.env("RELEASE_TMP", shared);
        self.runner.run(&mut cmd);
        cmd
    }
}

/// Names the planter holds first in a sticky shared directory: each stops
/// the boot with exit 3, naming the path, its owner (uid and user name),
/// beamup's user and the fix; nothing is exec'd, no reporter runs, and the
/// planted entry is left as it was. Before issue 16 a planted peers file or
/// live status was silently kept (the boot went on and the reporter warned
/// EPERM every interval), and a planted vm.args stopped the boot with a bare
/// EPERM.
#[test]
fn names_another_user_holds_in_a_sticky_dir_stop_the_boot() {
    let s = Shared::new("hold");
    let cases = [
        (
            "vm.args",
            "-eval 'os:cmd(\"touch /tmp/pwned\")'\n",
            "vm.args",
        ),
        (
            "peers.config",
            "{peers, ['evil@10.6.6.6']}.\n",
            "--peers-file",
        ),
        ("beamup.status.json", "{}", "the live status"),
        ("beamup.state.json", "{}", "the boot record"),
    ];
    for (i, (name, planted, what)) in cases.into_iter().enumerate() {
        let shared = s.sticky(&format!("shared{i}"));
        let path = shared.join(name);
        assert!(
            sh_as(
                &s.planter,
                "printf '%s' \"$2\" > \"$1\"",
                &[&path, Path::new(planted)]
            ),
            "the planter could not plant {}",
            path.display()
        );
        let out = testkit::output_timeout(
            s.beamup(&shared, &["--peers", "demo@127.0.0.2"]),
            Duration::from_secs(30),
        );
        assert_refused(
            &s.w,
            &out,
            &[
                what,
                &format!("{} is owned by {}", path.display(), s.planter.shown()),
                &format!("not by beamup's user ({})", s.runner.shown()),
                &format!(
                    "`rm -- {}`, as uid {} or root",
                    path.display(),
                    s.planter.uid
                ),
                "RELEASE_TMP/TMPDIR",
            ],
        );
        assert_eq!(fs::read_to_string(&path).expect("planted"), planted);
        // Every name was checked before any was claimed: nothing of beamup's.
        let names: Vec<_> = fs::read_dir(&shared).expect("ls").collect();
        assert_eq!(names.len(), 1, "beamup wrote next to {name}: {names:?}");
    }

    // A directory at a name stops even a writer allowed to replace files.
    let shared = s.sticky("shared-dir");
    let path = shared.join("vm.args");
    assert!(sh_as(&s.planter, "mkdir \"$1\"", &[&path]));
    let out = testkit::output_timeout(s.beamup(&shared, &[]), Duration::from_secs(30));
    assert_refused(
        &s.w,
        &out,
        &[
            &format!(
                "{} is a directory (owned by {}) where beamup writes a file",
                path.display(),
                s.planter.shown()
            ),
            &format!("`rm -r -- {}`", path.display()),
        ],
    );
}

/// beamup's names claimed at boot: once the release runs, the planter can
/// neither replace, remove nor create any of them (vm.args, the boot record,
/// the live status, and the peers file, which the reporter writes only after
/// its first successful poll); the reporter's writes go on, and `beamup
/// status` (as `docker exec` runs it: the same user, the same RELEASE_TMP)
/// becomes ready. The DNS server answers SERVFAIL until the planter has
/// tried, so the reporter has written no peers yet: before issue 16 the
/// planter's peers file won and the release read its peers for good.
#[test]
fn names_claimed_at_boot_cannot_be_taken_later() {
    let s = Shared::new("claim");
    let shared = s.sticky("shared");
    let dns = FakeDns::start();
    let server = dns.addr();
    let mut cmd = s.beamup(&shared, &["--query", "peers.test", "--dns-server", &server]);
    let log = s.w.file("beamup.log", "", 0o644);
    cmd.stdout(Stdio::null())
        .stderr(fs::File::create(&log).expect("log"));
    let release = Running(cmd.spawn().expect("spawn beamup"));
    wait_until(Duration::from_secs(30), "the release to be exec'd", || {
        s.w.marker().exists()
    });
    let peers = shared.join("peers.config");
    let names = [
        shared.join("vm.args"),
        peers.clone(),
        shared.join("beamup.state.json"),
        shared.join("beamup.status.json"),
    ];
    for path in &names {
        let attempts = [
            "rm -f -- \"$1\"",
            "mv -f -- \"$1\" \"$1.x\"",
            "printf planted > \"$1\"",
            "ln -sf /etc/passwd \"$1\"",
        ];
        for attempt in attempts {
            assert!(
                !sh_as(&s.planter, attempt, &[path]),
                "the planter took {} with `{attempt}`:\n{}",
                path.display(),
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        let meta = fs::symlink_metadata(path).expect("a claimed name");
        assert!(meta.is_file(), "{}", path.display());
        assert_eq!(meta.uid(), s.runner.uid, "{} changed hands", path.display());
    }
    assert_eq!(
        fs::read_to_string(&peers).expect("peers"),
        "{node, 'demo@127.0.0.1'}.\n{peers, []}.\n",
        "the claimed peers file holds the empty set until the first poll"
    );

    dns.answer();
    let written = (0..600).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        fs::read_to_string(&peers).is_ok_and(|t| t.contains("{peers, ['demo@10.77.0.2']}"))
    });
    assert!(
        written,
        "the reporter did not write the peers in 30 s:\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(fs::metadata(&peers).expect("peers").uid(), s.runner.uid);
    // `docker exec c beamup status`: beamup's user, the container's RELEASE_TMP.
    let mut said = String::new();
    let ready = (0..60).any(|_| {
        let mut cmd = Command::new(beamup_bin());
        cmd.args(["status", "--min-peers", "1"]);
        clean_env(&mut cmd);
        cmd.env("RELEASE_TMP", &shared);
        s.runner.run(&mut cmd);
        let out = testkit::output_timeout(cmd, Duration::from_secs(30));
        said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success() || {
            std::thread::sleep(Duration::from_millis(500));
            false
        }
    });
    assert!(ready, "`beamup status` never became ready: {said}");
    assert!(said.starts_with("ready: 1 of 1 peers discovered"), "{said}");
    drop(release);
}

/// A spawned beamup (the release after its exec), killed and reaped on
/// Drop; its reporter dies with it (PR_SET_PDEATHSIG).
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A DNS server on loopback that answers SERVFAIL until [`FakeDns::answer`],
/// then `peers.test A 10.77.0.2` (a peer need not be reachable to be
/// discovered; a loopback one would be skipped) (and an empty answer to anything else).
struct FakeDns {
    socket: UdpSocket,
    answering: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl FakeDns {
    fn start() -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("timeout");
        let dns = FakeDns {
            socket: socket.try_clone().expect("clone"),
            answering: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let (answering, stop) = (dns.answering.clone(), dns.stop.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(reply) = reply(&buf[..n], answering.load(Ordering::Relaxed)) {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        dns
    }

    fn addr(&self) -> String {
        self.socket.local_addr().expect("addr").to_string()
    }

    fn answer(&self) {
        self.answering.store(true, Ordering::Relaxed);
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The reply to one query (RFC 1035 4.1): its id and question echoed;
/// SERVFAIL, or an A record for an A question.
fn reply(query: &[u8], answering: bool) -> Option<Vec<u8>> {
    let mut end = 12;
    while *query.get(end)? != 0 {
        end += 1 + usize::from(query[end]);
    }
    let question = query.get(12..end + 5)?;
    let is_a = question[question.len() - 4..question.len() - 2] == [0, 1];
    let answers = u8::from(answering && is_a);
    let rcode = if answering { 0 } else { 2 };
    let mut out = vec![query[0], query[1], 0x80 | (query[2] & 1), 0x80 | rcode];
    out.extend([0, 1, 0, answers, 0, 0, 0, 0]);
    out.extend(question);
    if answers == 1 {
        out.extend([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0, 4, 10, 77, 0, 2]);
    }
    Some(out)
}
