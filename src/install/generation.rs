//! The on-disk layout sops-nix established and NixOS hosts expect: a ramfs at
//! `/run/secrets.d` (`nodev,nosuid,noexec,mode=0751`; tmpfs with `noswap` on request) holding
//! numbered generations, `/run/secrets → /run/secrets.d/N` switched atomically with `rename`,
//! `path` symlinks pointing at the stable `/run/secrets/<name>`, and old generations pruned.
//!
//! Differences from sops-install-secrets, on purpose: every file gets its exact mode with
//! `fchmod` (sops-nix lets the umask filter it) and is created `O_EXCL|O_NOFOLLOW`; a failed run
//! removes the half-written generation so nothing changes; directory ownership (`root:keys`) is
//! only applied when running as root, so the same code runs unprivileged under `--root` in tests.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};

use super::error::{InstallError, io_err};

const RAMFS_MAGIC: u64 = 0x8584_58f6;
const TMPFS_MAGIC: u64 = 0x0102_1994;

/// Who owns the infrastructure (mount point, generation directories).
#[derive(Clone, Copy, Debug)]
pub struct Owners {
    /// Running as root: chown directories to `0:keys_gid` and links to their secret's owner.
    pub privileged: bool,
    /// The `keys` (or `nogroup`) group.
    pub keys_gid: u32,
    /// The caller's ids (new files start out owned by them).
    pub euid: u32,
    /// The caller's effective gid.
    pub egid: u32,
}

impl Owners {
    /// Detects the caller; as root, looks up the `keys` group (else `nogroup`, like sops-nix),
    /// or uses gid 0 when `ignore_passwd`.
    pub fn detect(ignore_passwd: bool) -> Result<Owners, InstallError> {
        let euid = nix::unistd::geteuid();
        let egid = nix::unistd::getegid().as_raw();
        if !euid.is_root() {
            return Ok(Owners {
                privileged: false,
                keys_gid: egid,
                euid: euid.as_raw(),
                egid,
            });
        }
        if ignore_passwd {
            return Ok(Owners {
                privileged: true,
                keys_gid: 0,
                euid: 0,
                egid,
            });
        }
        for name in ["keys", "nogroup"] {
            if let Ok(gid) = crate::perm::resolve_group(name) {
                return Ok(Owners {
                    privileged: true,
                    keys_gid: gid,
                    euid: 0,
                    egid,
                });
            }
        }
        Err(InstallError::System(
            "neither group 'keys' nor 'nogroup' exists; create one (NixOS has 'keys')".into(),
        ))
    }

    fn chown_dir(&self, dir: &Path) -> Result<(), InstallError> {
        if self.privileged {
            std::os::unix::fs::chown(dir, Some(0), Some(self.keys_gid))
                .map_err(io_err(dir, "set the owner of the directory"))?;
        }
        Ok(())
    }
}

/// Makes sure `mp` exists and, if `do_mount`, is a ramfs (or tmpfs) mount of its own.
pub fn ensure_mount(
    mp: &Path,
    tmpfs: bool,
    do_mount: bool,
    owners: &Owners,
) -> Result<(), InstallError> {
    // The mount point and every directory above it pass the sink's trusted walk (created 0751).
    let walk = crate::sink::WalkOptions {
        mkdir: Some(0o751),
        allow_sticky: false,
    };
    crate::sink::walk::open_dir(mp, walk)?;
    if do_mount {
        let (fs_name, magic) = if tmpfs {
            ("tmpfs", TMPFS_MAGIC)
        } else {
            ("ramfs", RAMFS_MAGIC)
        };
        let st = nix::sys::statfs::statfs(mp).map_err(|e| InstallError::Mount {
            path: mp.to_path_buf(),
            fs: fs_name,
            source: e,
        })?;
        let is_fs = (st.filesystem_type().0 as u64 & 0xffff_ffff) == magic;
        if !(is_fs && is_mount_point(mp)?) {
            let flags = MsFlags::MS_NODEV | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
            let opts = if tmpfs {
                "mode=0751,noswap"
            } else {
                "mode=0751"
            };
            let mut res = mount(Some("none"), mp, Some(fs_name), flags, Some(opts));
            if tmpfs && res == Err(nix::Error::EINVAL) {
                // Kernels before 6.4 do not know noswap.
                res = mount(Some("none"), mp, Some(fs_name), flags, Some("mode=0751"));
            }
            res.map_err(|e| InstallError::Mount {
                path: mp.to_path_buf(),
                fs: fs_name,
                source: e,
            })?;
        }
    }
    owners.chown_dir(mp)
}

/// Whether `p` is listed as a mount point in `/proc/self/mountinfo`.
fn is_mount_point(p: &Path) -> Result<bool, InstallError> {
    let canon = fs::canonicalize(p).map_err(io_err(p, "resolve the mount point"))?;
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(io_err("/proc/self/mountinfo", "read the mount table"))?;
    Ok(info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .is_some_and(|m| Path::new(&unescape_mountinfo(m)) == canon)
    }))
}

/// Undoes the `\040`-style octal escapes of mountinfo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Holds an exclusive `flock` on the mount point for the rest of the run, so two concurrent
/// installs cannot pick the same generation number (the second waits).
pub struct Lock {
    _flock: nix::fcntl::Flock<File>,
}

/// Takes the lock on `mp` (after it is mounted, so the lock is on the mounted directory).
pub fn lock(mp: &Path) -> Result<Lock, InstallError> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
        .open(mp)
        .map_err(io_err(mp, "open the mount point"))?;
    nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
        .map(|f| Lock { _flock: f })
        .map_err(|(_, e)| io_err(mp, "lock the mount point")(io::Error::from(e)))
}

/// The generation `symlink` points at (0 when it is missing or points elsewhere).
pub fn current(mp: &Path, symlink: &Path) -> Result<u64, InstallError> {
    match fs::read_link(symlink) {
        // A relative link counts from the link's directory; misreading it as 0 would make the
        // next generation 1 and `create` remove the live generation 1 before writing it anew.
        Ok(target) => Ok(match parent_of(symlink).join(target).strip_prefix(mp) {
            Ok(rest) => rest.to_str().and_then(|s| s.parse().ok()).unwrap_or(0),
            Err(_) => 0,
        }),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(io_err(symlink, "read the symlink")(e)),
    }
}

/// Creates the empty generation directory `<mp>/<generation>` (0751, root:keys), removing a
/// leftover of that number first.
pub fn create(mp: &Path, generation: u64, owners: &Owners) -> Result<PathBuf, InstallError> {
    let dir = mp.join(generation.to_string());
    if fs::symlink_metadata(&dir).is_ok() {
        remove_any(&dir)?;
    }
    fs::DirBuilder::new()
        .mode(0o751)
        .create(&dir)
        .map_err(io_err(&dir, "create the generation directory"))?;
    fs::set_permissions(&dir, Permissions::from_mode(0o751))
        .map_err(io_err(&dir, "set the directory mode"))?;
    owners.chown_dir(&dir)?;
    Ok(dir)
}

fn remove_any(p: &Path) -> Result<(), InstallError> {
    let r = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => return Ok(()),
    };
    r.map_err(io_err(p, "remove"))
}

/// Removes a generation that will not be switched to (best effort).
pub fn discard(dir: &Path) {
    let _ = fs::remove_dir_all(dir);
}

/// Writes one secret below `gen_dir`: parent directories 0751 root:keys, the file created
/// `O_EXCL|O_NOFOLLOW` with exactly `mode` and owned `uid:gid`.
pub fn write_secret(
    gen_dir: &Path,
    name: &str,
    contents: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
    owners: &Owners,
) -> Result<(), InstallError> {
    let path = gen_dir.join(name);
    if let Some((parents, _)) = name.rsplit_once('/') {
        let mut d = gen_dir.to_path_buf();
        for comp in parents.split('/') {
            d.push(comp);
            if fs::symlink_metadata(&d).is_err() {
                fs::DirBuilder::new()
                    .mode(0o751)
                    .create(&d)
                    .map_err(io_err(&d, "create the directory"))?;
                fs::set_permissions(&d, Permissions::from_mode(0o751))
                    .map_err(io_err(&d, "set the directory mode"))?;
                owners.chown_dir(&d)?;
            }
        }
    }
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_err(&path, "create the secret file"))?;
    fill(&file, &path, contents, mode, uid, gid, owners)
}

fn fill(
    file: &File,
    path: &Path,
    contents: &[u8],
    mode: u32,
    uid: u32,
    gid: u32,
    owners: &Owners,
) -> Result<(), InstallError> {
    // A new file is owned by the caller's euid:egid (generation directories are never setgid),
    // so chown only when that differs. This also lets an unprivileged --root run with its own
    // ids work, while other ids fail with EPERM as they must.
    if uid != owners.euid || gid != owners.egid {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))
            .map_err(io_err(path, "set the owner of the secret file"))?;
    }
    // After fchown (which may clear set-id bits): the exact mode, not filtered by umask.
    file.set_permissions(Permissions::from_mode(mode))
        .map_err(io_err(path, "set the mode of the secret file"))?;
    let mut w = file;
    w.write_all(contents)
        .map_err(io_err(path, "write the secret file"))
}

fn parent_of(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes generations `n <= current - keep` (never `current`; `keep == 0` keeps all) and
/// returns the numbers removed. Non-numeric entries are left alone.
pub fn prune(mp: &Path, current: u64, keep: u64) -> Result<Vec<u64>, InstallError> {
    let mut removed = Vec::new();
    if keep == 0 {
        return Ok(removed);
    }
    let entries = fs::read_dir(mp).map_err(io_err(mp, "list the generations"))?;
    for e in entries {
        let e = e.map_err(io_err(mp, "list the generations"))?;
        let Some(n) = e.file_name().to_str().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        if n != current && n.saturating_add(keep) <= current {
            remove_any(&e.path())?;
            removed.push(n);
        }
    }
    removed.sort_unstable();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    use crate::install::links::switch;

    fn me() -> Owners {
        Owners {
            privileged: false,
            keys_gid: 0,
            euid: nix::unistd::geteuid().as_raw(),
            egid: nix::unistd::getegid().as_raw(),
        }
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/run/a\\040b"), "/run/a b");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }

    #[test]
    fn numbering_switch_and_prune() {
        let t = tempfile::tempdir().unwrap();
        let mp = t.path().join("run/secrets.d");
        let link = t.path().join("run/secrets");
        ensure_mount(&mp, false, false, &me()).unwrap();
        assert_eq!(fs::metadata(&mp).unwrap().mode() & 0o7777, 0o751);
        assert_eq!(current(&mp, &link).unwrap(), 0);
        for g in 1..=5 {
            let d = create(&mp, g, &me()).unwrap();
            write_secret(&d, "a/b", b"x", 0o440, me().euid, me().egid, &me()).unwrap();
            switch(&d, &link).unwrap();
            assert_eq!(current(&mp, &link).unwrap(), g);
        }
        fs::create_dir(mp.join("keepme")).unwrap();
        assert_eq!(prune(&mp, 5, 2).unwrap(), vec![1, 2, 3]);
        let mut left: Vec<_> = fs::read_dir(&mp)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, vec!["4", "5", "keepme"]);
        let f = link.join("a/b");
        assert_eq!(fs::read(&f).unwrap(), b"x");
        assert_eq!(fs::metadata(&f).unwrap().mode() & 0o7777, 0o440);
        assert_eq!(fs::metadata(link.join("a")).unwrap().mode() & 0o7777, 0o751);
        assert_eq!(prune(&mp, 5, 0).unwrap(), Vec::<u64>::new());
    }

    #[test]
    fn current_follows_a_relative_link() {
        let t = tempfile::tempdir().unwrap();
        let mp = t.path().join("run/secrets.d");
        let link = t.path().join("run/secrets");
        fs::create_dir_all(mp.join("1")).unwrap();
        std::os::unix::fs::symlink("secrets.d/1", &link).unwrap();
        assert_eq!(current(&mp, &link).unwrap(), 1);
    }
}
