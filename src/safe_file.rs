//! The one way beamup writes a file (rendered vm.args and templates, the
//! peers file, the state files) and reads one back: safe in a contested
//! directory.
//!
//! beamup runs as root in front of every boot, and the directories it writes
//! into (`$TMPDIR/beamup/<node>`, a `RELEASE_TMP` such as /tmp, a peers file's
//! directory) may be shared with other users (a Kubernetes emptyDir with a
//! sidecar, a host mount). So, as systemd's tmpfiles and s6 do:
//! - every directory on the way is opened without following a planted
//!   symlink (one in a directory others may write to is followed only when
//!   it is ours or the directory owner's), and trusted only when its owner is
//!   us or root and nobody else may rename its entries (not
//!   group/world-writable, or sticky like /tmp); a directory beamup creates
//!   is created 0700 (0755 for a file others are meant to read). A symlink
//!   that is followed leads to a directory that is checked itself; the
//!   directories along the link's target path are not walked (the link's
//!   owner, us or root, chose them);
//! - a file is written to an exclusively created temp file with an
//!   unpredictable name (`O_CREAT|O_EXCL|O_NOFOLLOW`) inside the already
//!   opened directory, synced, and renamed into place: a reader sees the old
//!   or the new content, never half, and a symlink planted at the final name
//!   is replaced, never followed;
//! - every name beamup writes (the rendered files, the boot record, and the
//!   peers file and live status the reporter writes only after the exec) is
//!   claimed at boot, before the exec ([`Dir::claim`]): created
//!   exclusively when free, so that in a sticky shared directory (`RELEASE_TMP
//!   =/tmp`, a 1777 emptyDir) no other user can take it later; an entry there
//!   that another user owns, or that is not a file (a directory, a FIFO), is
//!   refused with its owner and the fix, never used nor silently left in
//!   place (issue 16: a non-root beamup cannot rename over another user's
//!   file in a sticky directory, so it would never be replaced).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::{Context as _, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, open, openat, renameat};
use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Uid, UnlinkatFlags, User, geteuid, unlinkat};

/// Writes `contents` to `path` atomically with file mode `mode`, creating
/// missing directories ([`dir_mode_for`]). Refuses directories others could
/// tamper with.
pub fn write(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_file(path, contents, mode, true)
}

/// [`write`] without the fsync, for files that mean nothing after a crash
/// (the boot record and the live status: their PIDs die with the machine).
/// The rename still makes them atomic for readers, and the boot path saves
/// an fsync (about 0.5 ms on these machines).
pub fn write_volatile(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    write_file(path, contents, mode, false)
}

fn write_file(path: &Path, contents: &[u8], mode: u32, sync: bool) -> anyhow::Result<()> {
    let (dir, name) = split(path)?;
    Dir::open(&dir, Some(dir_mode_for(mode)))?.write_file(&name, contents, mode, sync)
}

/// A directory opened and checked once ([`open_dir`]), for the steps that
/// touch several names in it or one name several times (the boot record:
/// claimed, read back, replaced), so each does not walk the path from `/`
/// again (issue 19).
pub struct Dir {
    fd: OwnedFd,
    /// Its status as checked when it was opened.
    stat: FileStat,
    path: PathBuf,
}

impl Dir {
    /// [`open_dir`]: `create` makes missing directories with that mode.
    pub fn open(path: &Path, create: Option<u32>) -> anyhow::Result<Dir> {
        let (fd, stat) = walk(path, create)?;
        Ok(Dir {
            fd,
            stat,
            path: path.to_path_buf(),
        })
    }

    /// [`Dir::open`] of a directory that may not exist yet: None then.
    pub fn open_existing(path: &Path) -> anyhow::Result<Option<Dir>> {
        match Dir::open(path, None) {
            Ok(dir) => Ok(Some(dir)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Claims `name` (`path` names it in errors) for beamup at boot, so that
    /// nobody else can take the name before beamup writes it (the reporter
    /// writes the peers file and the live status only after the exec). A free
    /// name is created exclusively (`O_CREAT|O_EXCL|O_NOFOLLOW`) holding
    /// `initial`, mode `mode`; a name already holding beamup's own file (from
    /// an earlier boot) is kept as it is. In a directory others may write to
    /// (sticky, like /tmp), an entry another user owns is refused: beamup
    /// would hand its content to the release (or `beamup status`), and a
    /// non-root beamup cannot replace it; anywhere, an entry that is not a
    /// file or a symlink is refused (a directory stops even root's rename).
    /// The error names the path, the owner and the fix.
    pub fn claim(
        &self,
        name: &str,
        path: &Path,
        mode: u32,
        initial: &[u8],
    ) -> anyhow::Result<Claimed> {
        for _ in 0..4 {
            match openat(
                &self.fd,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::S_IRUSR | Mode::S_IWUSR,
            ) {
                Ok(fd) => {
                    return fill(File::from(fd), initial, mode, false)
                        .map(|()| Claimed::Created)
                        .with_context(|| format!("while creating {}", path.display()));
                }
                Err(Errno::EEXIST) => match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                    Ok(entry) => {
                        return ours_to_replace(&entry, &self.stat, path).map(|()| Claimed::Kept);
                    }
                    // Removed in between: try again.
                    Err(Errno::ENOENT) => continue,
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("while checking {}", path.display()));
                    }
                },
                Err(e) => {
                    return Err(e).with_context(|| format!("while creating {}", path.display()));
                }
            }
        }
        bail!("{} keeps changing while beamup claims it", path.display())
    }

    /// [`Dir::claim`]'s check of `name` without creating anything. Run over
    /// every name first, so a boot that a claim would refuse halfway creates
    /// nothing.
    pub fn check_claim(&self, name: &str, path: &Path) -> anyhow::Result<()> {
        match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(entry) => ours_to_replace(&entry, &self.stat, path),
            Err(Errno::ENOENT) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("while checking {}", path.display())),
        }
    }

    /// The path of `name` in this directory, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// [`write_volatile`] of `name` in this directory.
    pub fn write_volatile(&self, name: &str, contents: &[u8], mode: u32) -> anyhow::Result<()> {
        self.write_file(name, contents, mode, false)
    }

    fn write_file(&self, name: &str, contents: &[u8], mode: u32, sync: bool) -> anyhow::Result<()> {
        let (dirfd, path) = (&self.fd, self.join(name));
        // beamup's stop handler `_exit`s: a SIGTERM between the temp file and the
        // rename would leave the temp file (which may hold the cookie) behind.
        let _held = HeldStopSignals::hold();
        let (tmp, file) = create_temp(dirfd, name).with_context(|| {
            format!("while creating a temporary file in {}", self.path.display())
        })?;
        let result = fill(file, contents, mode, sync)
            .and_then(|()| {
                replace(dirfd, &tmp, name, !sync)
                    .map_err(|e| why_not_replaced(e, dirfd, name, &path))
            })
            .with_context(|| format!("while writing {}", path.display()));
        if result.is_err() {
            let _ = unlinkat(dirfd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// [`read`] of `name` in this directory.
    pub fn read(&self, name: &str, max: u64) -> anyhow::Result<String> {
        let path = self.join(name);
        let fd = openat(&self.fd, name, READ | OFlag::O_NOFOLLOW, Mode::empty())
            .with_context(|| format!("while opening {}", path.display()))?;
        let stat = fstat(&fd).with_context(|| format!("while checking {}", path.display()))?;
        if file_type(&stat) != SFlag::S_IFREG {
            bail!("{} is not a regular file", path.display());
        }
        if !ours_or_root(stat.st_uid) || stat.st_mode & 0o022 != 0 {
            bail!(
                "{} is owned by uid {} or writable by others: not beamup's",
                path.display(),
                stat.st_uid
            );
        }
        read_bounded(fd, &stat, &path, max, || {
            format!("{} is larger than {max} bytes", path.display())
        })
    }
}

/// Puts the temp file `tmp` in place at `name`. For a file that was not
/// synced (`exchange`), an existing entry is swapped with the temp file
/// (RENAME_EXCHANGE) and then removed: ext4 (auto_da_alloc) flushes a file
/// renamed over another one, about 0.15 ms on the boot path for the boot
/// record (issue 19), while a swap flushes nothing and is as atomic for
/// readers. A free name, or a filesystem without the swap, takes the plain
/// rename.
fn replace(dirfd: &OwnedFd, tmp: &str, name: &str, exchange: bool) -> Result<(), Errno> {
    if exchange {
        match exchange_names(dirfd, tmp, name) {
            // `tmp` now names the old entry (a file, or a symlink that
            // was never followed): removed as a rename would have. A
            // directory, which a rename would not replace, is swapped back.
            Ok(()) => match unlinkat(dirfd, tmp, UnlinkatFlags::NoRemoveDir) {
                Err(Errno::EISDIR) => {
                    exchange_names(dirfd, tmp, name)?;
                    return Err(Errno::EISDIR);
                }
                _ => return Ok(()),
            },
            // EPERM: another user's entry in a sticky directory; the rename
            // fails the same way and explains it.
            Err(Errno::ENOENT | Errno::EINVAL | Errno::ENOSYS | Errno::EPERM) => {}
            Err(e) => return Err(e),
        }
    }
    renameat(dirfd, tmp, dirfd, name)
}

/// renameat2(RENAME_EXCHANGE) of two names in `dirfd`.
fn exchange_names(dirfd: &OwnedFd, a: &str, b: &str) -> Result<(), Errno> {
    use std::os::fd::AsRawFd as _;
    let (a, b) = (
        std::ffi::CString::new(a).map_err(|_| Errno::EINVAL)?,
        std::ffi::CString::new(b).map_err(|_| Errno::EINVAL)?,
    );
    let fd = dirfd.as_raw_fd();
    // The raw system call: the musl that Rust links statically has no
    // renameat2() wrapper.
    // SAFETY: both names are NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            fd,
            a.as_ptr(),
            fd,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    Errno::result(r).map(drop)
}

/// A failed rename into `name`, explained by what holds the name when that
/// is the cause (another user's file in a sticky directory: EPERM; a
/// directory: EISDIR), so the reporter's warning says whose it is and what
/// to do rather than a bare errno.
fn why_not_replaced(e: Errno, dirfd: &OwnedFd, name: &str, path: &Path) -> anyhow::Error {
    let held = fstat(dirfd).and_then(|dir| {
        fstatat(dirfd, name, AtFlags::AT_SYMLINK_NOFOLLOW).map(|entry| (dir, entry))
    });
    match held.map(|(dir, entry)| ours_to_replace(&entry, &dir, path)) {
        Ok(Err(why)) => why.context(e),
        _ => e.into(),
    }
}

/// What [`Dir::claim`] found at the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The name was free: created, holding `initial`.
    Created,
    /// beamup's own entry from an earlier boot: kept as it was.
    Kept,
}

/// Whether the entry at `path` (in a directory `dir`) is beamup's to
/// replace: a file or a symlink (replaced by the rename, never followed),
/// and, where others may create entries (a sticky directory: any other one
/// is refused before), beamup's own.
fn ours_to_replace(entry: &FileStat, dir: &FileStat, path: &Path) -> anyhow::Result<()> {
    let kind = file_type(entry);
    let fix = "or point RELEASE_TMP/TMPDIR (or the file's path) at a directory only beamup's \
               user can write to";
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFLNK {
        let (what, rm) = match kind {
            SFlag::S_IFDIR => ("a directory", "rm -r --"),
            SFlag::S_IFIFO => ("a FIFO", "rm --"),
            SFlag::S_IFSOCK => ("a socket", "rm --"),
            _ => ("a device", "rm --"),
        };
        bail!(
            "{} is {what} (owned by {}) where beamup writes a file: remove it (`{rm} {}`, as its \
             owner or root), {fix}",
            path.display(),
            user(entry.st_uid),
            path.display(),
        );
    }
    let others_may_create = dir.st_mode & 0o022 != 0;
    if others_may_create && entry.st_uid != geteuid().as_raw() {
        bail!(
            "{} is owned by {}, not by beamup's user ({}), in a directory others can write to: \
             another user holds this name, and beamup neither uses their file nor takes the name \
             over; remove it (`rm -- {}`, as uid {} or root) before beamup starts, {fix}",
            path.display(),
            user(entry.st_uid),
            user(geteuid().as_raw()),
            path.display(),
            entry.st_uid,
        );
    }
    Ok(())
}

/// `uid 1001 (app)`, or `uid 1001` when no user of that uid is known.
fn user(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => format!("uid {uid} ({})", u.name.escape_debug()),
        _ => format!("uid {uid}"),
    }
}

/// A missing file or directory somewhere in `e`'s chain.
pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<Errno>() == Some(&Errno::ENOENT)
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

/// The stop signals blocked while it lives, then delivered.
struct HeldStopSignals(Option<SigSet>);

impl HeldStopSignals {
    fn hold() -> HeldStopSignals {
        let mut stop = SigSet::empty();
        for signal in crate::process::signals::STOP {
            stop.add(signal);
        }
        let mut old = SigSet::empty();
        let held = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&stop), Some(&mut old)).is_ok();
        HeldStopSignals(held.then_some(old))
    }
}

impl Drop for HeldStopSignals {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(old), None);
        }
    }
}

/// Reads a file beamup wrote (the state files) back: every directory on the
/// way checked as for writing, the file itself not a symlink, a regular file
/// (a planted FIFO would block the read forever), ours or root's and not
/// writable by others; at most `max` bytes (an error past that).
pub fn read(path: &Path, max: u64) -> anyhow::Result<String> {
    let (dir, name) = split(path)?;
    Dir::open(&dir, None)?.read(&name, max)
}

/// Reads a file the user named (a template, a cookie file): symlinks are
/// followed (Kubernetes mounts Secrets and ConfigMaps through them), but a
/// FIFO, socket or directory is refused rather than read (a FIFO would block
/// the boot forever), and at most `max` bytes are read: past that, the
/// error `too_large` says.
pub fn read_given(
    path: &Path,
    max: u64,
    too_large: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    let fd = open(path, READ, Mode::empty())?;
    let stat = fstat(&fd)?;
    let kind = file_type(&stat);
    if kind != SFlag::S_IFREG && kind != SFlag::S_IFCHR {
        bail!(
            "{} is not a file (a FIFO, socket or directory)",
            path.display()
        );
    }
    read_bounded(fd, &stat, path, max, too_large)
}

/// Never blocks on open (O_NONBLOCK) nor takes a terminal.
const READ: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_CLOEXEC)
    .union(OFlag::O_NOCTTY)
    .union(OFlag::O_NONBLOCK);

fn file_type(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT
}

fn read_bounded(
    fd: OwnedFd,
    stat: &FileStat,
    path: &Path,
    max: u64,
    too_large: impl FnOnce() -> String,
) -> anyhow::Result<String> {
    // Sized from the file, so a small file is read at once (not in growing
    // probes: `take` hides the size from read_to_string); one byte more
    // sees the end (or a file over the cap).
    let size = (stat.st_size.max(0) as u64).min(max) as usize;
    let mut text = String::with_capacity(size + 1);
    File::from(fd)
        .take(max + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("while reading {}", path.display()))?;
    if text.len() as u64 > max {
        bail!("{}", too_large());
    }
    Ok(text)
}

/// The mode of a directory made for a file of `file_mode`: readable by
/// others only when the file is (the peers file, for a sidecar of another
/// user), else 0700. Never writable by others.
pub fn dir_mode_for(file_mode: u32) -> u32 {
    if file_mode & 0o044 != 0 { 0o755 } else { 0o700 }
}

/// Opens `dir` (making missing directories with mode `create`, when given),
/// checking every directory on the way, `/` included (see the module doc).
/// Returns the open directory, so what is checked is what is written into,
/// whatever happens to the path afterwards.
pub fn open_dir(dir: &Path, create: Option<u32>) -> anyhow::Result<OwnedFd> {
    walk(dir, create).map(|(fd, _)| fd)
}

/// [`open_dir`], with the opened directory's status as checked.
fn walk(dir: &Path, create: Option<u32>) -> anyhow::Result<(OwnedFd, FileStat)> {
    let dir = absolute(dir)?;
    let mut fd = open(
        "/",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("while opening /")?;
    let mut walked = PathBuf::from("/");
    let mut stat = fstat(&fd).context("while checking /")?;
    trusted(&stat, &walked)?;
    for part in dir.components() {
        let Component::Normal(part) = part else {
            continue;
        };
        walked.push(part);
        fd = open_child(&fd, &stat, part, &walked, create)?;
        stat = fstat(&fd).with_context(|| format!("while checking {}", walked.display()))?;
        trusted(&stat, &walked)?;
    }
    Ok((fd, stat))
}

fn open_child(
    parent: &OwnedFd,
    parent_stat: &FileStat,
    name: &std::ffi::OsStr,
    path: &Path,
    create: Option<u32>,
) -> anyhow::Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    for _ in 0..4 {
        match (
            openat(parent, name, flags | OFlag::O_NOFOLLOW, Mode::empty()),
            create,
        ) {
            (Ok(fd), _) => return Ok(fd),
            (Err(Errno::ENOENT), Some(mode)) => {
                match mkdirat(parent, name, Mode::from_bits_truncate(mode)) {
                    Ok(()) | Err(Errno::EEXIST) => continue,
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("while creating {}", path.display()));
                    }
                }
            }
            // A symlink (ELOOP with O_NOFOLLOW): in a directory others may
            // write to (a sticky /tmp too) it is followed only when it is
            // ours or the directory owner's, Linux's fs.protected_symlinks
            // rule; otherwise a link planted at /tmp/beamup would make
            // beamup create its files wherever the link points.
            (Err(Errno::ELOOP) | Err(Errno::ENOTDIR), _) => {
                let link = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .with_context(|| format!("while checking {}", path.display()))?;
                if file_type(&link) != SFlag::S_IFLNK {
                    bail!("{} is not a directory", path.display());
                }
                let others_may_write = parent_stat.st_mode & 0o022 != 0;
                if others_may_write
                    && link.st_uid != geteuid().as_raw()
                    && link.st_uid != parent_stat.st_uid
                {
                    bail!(
                        "{} is a symlink owned by uid {} in a directory others can write to: beamup \
                         does not follow it; remove it, or point RELEASE_TMP/TMPDIR (or the file's \
                         path) at a directory only you can write to",
                        path.display(),
                        link.st_uid
                    );
                }
                return openat(parent, name, flags, Mode::empty())
                    .with_context(|| format!("while opening {}", path.display()));
            }
            (Err(e), _) => {
                return Err(e).with_context(|| format!("while opening {}", path.display()));
            }
        }
    }
    bail!("{} keeps changing while beamup opens it", path.display())
}

/// A directory beamup writes into or through: owned by us or root, and
/// nobody else may rename its entries.
fn trusted(stat: &FileStat, path: &Path) -> anyhow::Result<()> {
    if !ours_or_root(stat.st_uid) {
        bail!(
            "{} is owned by uid {}, not by beamup's user (uid {}) or root: its owner could swap the \
             files beamup writes there; remove it, or point RELEASE_TMP/TMPDIR (or the file's path) \
             at a directory you own",
            path.display(),
            stat.st_uid,
            geteuid()
        );
    }
    if others_may_rename(stat) {
        bail!(
            "{} is writable by others (mode {:o}) without the sticky bit: anyone could swap the files \
             beamup writes there; `chmod o-w,g-w` it (or `chmod +t` for a shared /tmp), or point \
             RELEASE_TMP/TMPDIR (or the file's path) at a directory only you can write to \
             (Kubernetes: a disk-backed emptyDir is 0777 without the sticky bit; mount it with \
             `medium: Memory`, a tmpfs with mode 1777)",
            path.display(),
            stat.st_mode & 0o7777
        );
    }
    Ok(())
}

fn ours_or_root(uid: u32) -> bool {
    uid == 0 || uid == geteuid().as_raw()
}

/// Group- or world-writable and not sticky: others may rename our entries.
fn others_may_rename(stat: &FileStat) -> bool {
    stat.st_mode & 0o022 != 0 && stat.st_mode & 0o1000 == 0
}

fn create_temp(dirfd: &OwnedFd, name: &str) -> anyhow::Result<(String, File)> {
    // The final name's start, for whoever finds a leftover; bounded so the
    // temp name stays within NAME_MAX (255 bytes) whatever the final name.
    let stem: String = name.chars().take(32).collect();
    for _ in 0..8 {
        let tmp = format!(".{stem}.{:016x}.tmp", random_u64()?);
        match openat(
            dirfd,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        ) {
            Ok(fd) => return Ok((tmp, File::from(fd))),
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    bail!("no unused temporary name after 8 tries")
}

fn fill(mut file: File, contents: &[u8], mode: u32, sync: bool) -> anyhow::Result<()> {
    file.write_all(contents)?;
    // Exactly `mode`, whatever the umask (the peers file is meant to be
    // world-readable, everything else 0600).
    fchmod(file.as_fd(), Mode::from_bits_truncate(mode))?;
    if sync {
        file.sync_all()?;
    }
    Ok(())
}

fn random_u64() -> anyhow::Result<u64> {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most buf.len() bytes into buf.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n != buf.len() as isize {
        bail!("getrandom failed: {}", std::io::Error::last_os_error());
    }
    Ok(u64::from_ne_bytes(buf))
}

/// The directory (absolute) and the file name of `path`.
pub fn split(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let path = absolute(path)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .with_context(|| format!("{} has no file name", path.display()))?
        .to_string();
    let dir = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Ok((dir, name))
}

/// `path` made absolute against the working directory, `..` refused (it
/// would make the checked path differ from the written one).
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.components().any(|c| c == Component::ParentDir) {
        bail!(
            "{}: a path with `..` is not accepted; give it without",
            path.display()
        );
    }
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("while reading the working directory")?
        .join(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt as _, symlink};

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("beamup-safe-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("scratch dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        dir
    }

    #[test]
    fn writes_creates_0700_dirs_and_sets_the_mode() {
        let dir = scratch("write");
        let path = dir.join("a/b/vm.args");
        write(&path, b"-name x@1.2.3.4\n", 0o600).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "-name x@1.2.3.4\n"
        );
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.join("a")), 0o700);
        write(&path, b"second", 0o644).expect("rewrite");
        assert_eq!(read(&path, 100).expect("read"), "second");
        assert_eq!(mode(&path), 0o644);
        assert!(read(&path, 3).is_err(), "size cap");
        // No temp file left behind.
        let names: Vec<_> = std::fs::read_dir(dir.join("a/b")).expect("ls").collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// write_volatile swaps the new file in (RENAME_EXCHANGE) and removes the
    /// old entry: a file or a planted symlink goes as a rename would take it;
    /// a directory stays (a rename would not replace it) and nothing is left.
    #[test]
    fn volatile_writes_swap_the_old_entry_out() {
        let dir = scratch("swap");
        let path = dir.join("beamup.state.json");
        write_volatile(&path, b"first", 0o600).expect("free name");
        write_volatile(&path, b"second", 0o600).expect("over a file");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "second");
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").expect("victim");
        std::fs::remove_file(&path).expect("rm");
        symlink(&victim, &path).expect("plant");
        write_volatile(&path, b"third", 0o600).expect("over a symlink");
        assert!(!std::fs::symlink_metadata(&path).expect("meta").is_symlink());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "third");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "untouched"
        );
        let held = dir.join("held");
        std::fs::create_dir(&held).expect("mkdir");
        std::fs::write(held.join("inside"), "kept").expect("inside");
        assert!(write_volatile(&held, b"x", 0o600).is_err(), "a directory");
        assert_eq!(
            std::fs::read_to_string(held.join("inside")).expect("kept"),
            "kept"
        );
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["beamup.state.json", "held", "victim"],
            "no temp file left"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn a_planted_symlink_at_the_name_is_replaced_not_followed() {
        let dir = scratch("link");
        let victim = dir.join("victim");
        std::fs::write(&victim, "untouched").expect("victim");
        symlink(&victim, dir.join("vm.args")).expect("plant");
        write(&dir.join("vm.args"), b"new", 0o600).expect("write");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "untouched"
        );
        assert!(
            !std::fs::symlink_metadata(dir.join("vm.args"))
                .expect("meta")
                .is_symlink()
        );
        symlink(&victim, dir.join("state")).expect("plant");
        assert!(read(&dir.join("state"), 100).is_err(), "reads never follow");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn refuses_dirs_others_can_write() {
        let dir = scratch("open");
        let open = dir.join("open");
        std::fs::create_dir(&open).expect("mkdir");
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let err = write(&open.join("f"), b"x", 0o600).expect_err("world-writable");
        assert!(format!("{err:#}").contains("writable by others"), "{err:#}");
        // Sticky, like /tmp: fine.
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        write(&open.join("f"), b"x", 0o600).expect("sticky dir");
        assert!(
            write(&dir.join("../x"), b"x", 0o600).is_err(),
            "`..` refused"
        );
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    /// fs.protected_symlinks' rule in a sticky shared directory: a link
    /// planted by someone else is not followed (as root, too).
    #[test]
    fn a_foreign_symlink_in_a_sticky_dir_is_not_followed() {
        let dir = scratch("sticky");
        let shared = dir.join("shared");
        let victim = dir.join("victim");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::create_dir(&victim).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        symlink(&victim, shared.join("beamup")).expect("plant");
        let err = nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &shared.join("beamup"),
            Some(nix::unistd::Uid::from_raw(65534)),
            None,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        err.expect("lchown (the unit tests run as root)");
        let err = write(&shared.join("beamup/node/vm.args"), b"x", 0o600).expect_err("refused");
        assert!(format!("{err:#}").contains("does not follow it"), "{err:#}");
        assert_eq!(std::fs::read_dir(&victim).expect("ls").count(), 0);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
    /// Issue 16: a name is claimed once and stays beamup's; in a sticky
    /// shared directory another user's entry is refused with its owner, a
    /// directory at the name anywhere; in a directory only beamup may write
    /// to, an entry owned by someone else is not a plant (only root or the
    /// directory's owner could have put it there) and is replaced as before.
    #[test]
    fn claims_free_names_and_refuses_names_others_hold() {
        // As the boot claims a name: its directory opened (made when
        // missing) for the claim, opened if it exists for the check.
        let claim = |path: &Path, mode: u32, initial: &[u8]| {
            let (dir, name) = split(path)?;
            Dir::open(&dir, Some(dir_mode_for(mode)))?.claim(&name, path, mode, initial)
        };
        let check_claim = |path: &Path| {
            let (dir, name) = split(path)?;
            match Dir::open_existing(&dir)? {
                Some(dir) => dir.check_claim(&name, path),
                None => Ok(()),
            }
        };
        let dir = scratch("claim");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o7777;
        let mine = dir.join("new/peers");
        check_claim(&mine).expect("a free name in a missing directory");
        claim(&mine, 0o644, b"{peers, []}.\n").expect("claim");
        assert_eq!(std::fs::read(&mine).expect("read"), b"{peers, []}.\n");
        assert_eq!(mode(&mine), 0o644);
        assert_eq!(mode(&dir.join("new")), 0o755);
        write(&mine, b"second", 0o644).expect("write");
        claim(&mine, 0o644, b"").expect("claimed again: ours, kept");
        assert_eq!(std::fs::read(&mine).expect("read"), b"second");

        let nobody = || Some(nix::unistd::Uid::from_raw(65534));
        let shared = dir.join("shared");
        std::fs::create_dir(&shared).expect("mkdir");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        let planted = shared.join("vm.args");
        std::fs::write(&planted, "-eval planted").expect("plant");
        nix::unistd::chown(&planted, nobody(), None).expect("chown (as root)");
        for err in [
            check_claim(&planted).expect_err("planted"),
            claim(&planted, 0o600, b"").expect_err("planted"),
        ] {
            let err = format!("{err:#}");
            assert!(err.contains("vm.args is owned by uid 65534"), "{err}");
            assert!(err.contains("`rm -- "), "{err}");
        }
        assert_eq!(std::fs::read(&planted).expect("read"), b"-eval planted");
        let a_dir = shared.join("beamup.status.json");
        std::fs::create_dir(&a_dir).expect("mkdir");
        let err = format!("{:#}", claim(&a_dir, 0o600, b"").expect_err("a directory"));
        assert!(err.contains("beamup.status.json is a directory"), "{err}");
        assert!(err.contains("rm -r --"), "{err}");

        let private = dir.join("private");
        std::fs::create_dir(&private).expect("mkdir");
        let left = private.join("vm.args");
        std::fs::write(&left, "old").expect("old");
        nix::unistd::chown(&left, nobody(), None).expect("chown");
        claim(&left, 0o600, b"").expect("not contested");
        write(&left, b"new", 0o600).expect("replaced");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
