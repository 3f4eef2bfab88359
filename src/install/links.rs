//! The symlinks `install` makes — `/run/secrets -> /run/secrets.d/N` and each secret's `path` —
//! created relative to a directory held open after the sink's trusted walk ([`crate::sink::walk`]),
//! so nothing on the way can be swapped: `symlinkat` a temp link, `fchownat` it, `renameat` it
//! over the target. Only a symlink or a regular file is replaced; a device, FIFO or socket is
//! refused; a directory at `/run/secrets` is removed first (as sops-nix does), one at a `path`
//! is refused.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, readlinkat, renameat};
use nix::sys::stat::{FileStat, SFlag, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, symlinkat, unlinkat};

use super::error::{InstallError, io_err};
use crate::sink::{self, Dir, SinkError, WalkOptions};

fn sys(path: &Path, step: &'static str) -> impl FnOnce(Errno) -> InstallError {
    let path = path.to_path_buf();
    move |e| io_err(path, step)(io::Error::from(e))
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// Walks to the directory `p` goes into (created 0755 when missing) with the sink's checks, and
/// returns it held open with the file name.
fn trusted_parent(p: &Path) -> Result<(Dir, &OsStr), InstallError> {
    let name = sink::walk::file_name(p).ok_or_else(|| SinkError::TargetIsDirectory {
        path: p.to_path_buf(),
    })?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let walk = WalkOptions {
        mkdir: Some(0o755),
        allow_sticky: false,
    };
    Ok((sink::walk::open_dir(&parent, walk)?, name))
}

fn not_a_file(p: &Path, st: &FileStat) -> InstallError {
    SinkError::NotAFile {
        path: p.to_path_buf(),
        kind: sink::kind_of(st),
    }
    .into()
}

/// Refuses a device, FIFO or socket at `p` before anything is written (a missing `p` is fine).
pub fn check_not_special(p: &Path) -> Result<(), InstallError> {
    match nix::sys::stat::lstat(p) {
        Ok(st) if matches!(kind(&st), SFlag::S_IFREG | SFlag::S_IFDIR | SFlag::S_IFLNK) => Ok(()),
        Ok(st) => Err(not_a_file(p, &st)),
        Err(_) => Ok(()),
    }
}

fn temp_name(name: &OsStr) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".tskeyctl-{}", std::process::id()));
    t
}

/// Makes a temp link to `target` in `dir`, lets `prepare` adjust it, and renames it over `name`;
/// the temp link is removed on any failure.
fn place(
    dir: &Dir,
    name: &OsStr,
    shown: &Path,
    target: &Path,
    prepare: impl FnOnce(&Dir, &OsStr) -> Result<(), InstallError>,
) -> Result<(), InstallError> {
    let tmp = temp_name(name);
    let _ = unlinkat(dir.fd.as_fd(), tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
    symlinkat(target, dir.fd.as_fd(), tmp.as_os_str())
        .map_err(sys(&dir.path.join(&tmp), "create a symlink"))?;
    let done = prepare(dir, &tmp).and_then(|()| {
        renameat(dir.fd.as_fd(), tmp.as_os_str(), dir.fd.as_fd(), name)
            .map_err(sys(shown, "put the symlink in place"))
    });
    if done.is_err() {
        let _ = unlinkat(dir.fd.as_fd(), tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
    }
    done
}

/// Points `symlink` at `target` atomically: a new link beside it, `rename`d over it. A directory
/// at `symlink` (not a link) is removed first, as sops-nix does; a device, FIFO or socket there
/// is refused.
pub fn switch(target: &Path, symlink: &Path) -> Result<(), InstallError> {
    let (dir, name) = trusted_parent(symlink)?;
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if kind(&st) == SFlag::S_IFDIR => std::fs::remove_dir_all(dir.path.join(name))
            .map_err(io_err(symlink, "remove the directory in the way"))?,
        Ok(st) if !matches!(kind(&st), SFlag::S_IFREG | SFlag::S_IFLNK) => {
            return Err(not_a_file(symlink, &st));
        }
        _ => {}
    }
    place(&dir, name, symlink, target, |_, _| Ok(()))
}

/// Makes `path` a symlink to `target` owned `uid:gid` (when `privileged`, i.e. root); a correct
/// link is left alone,
/// a file or wrong link is replaced atomically, a directory, device, FIFO or socket is an error.
/// Its directory must pass the sink's trusted walk (created 0755 when missing).
pub fn link(
    path: &Path,
    target: &Path,
    uid: u32,
    gid: u32,
    privileged: bool,
) -> Result<(), InstallError> {
    let (dir, name) = trusted_parent(path)?;
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if kind(&st) == SFlag::S_IFLNK => {
            let same = readlinkat(dir.fd.as_fd(), name).is_ok_and(|t| Path::new(&t) == target);
            let owned = !privileged || (st.st_uid == uid && st.st_gid == gid);
            if same && owned {
                return Ok(());
            }
        }
        Ok(st) if kind(&st) == SFlag::S_IFDIR => {
            return Err(io_err(path, "replace it with a symlink")(io::Error::new(
                io::ErrorKind::IsADirectory,
                "a directory is in the way; remove it or choose another path",
            )));
        }
        Ok(st) if kind(&st) != SFlag::S_IFREG => return Err(not_a_file(path, &st)),
        _ => {}
    }
    place(&dir, name, path, target, |dir, tmp| {
        if privileged {
            fchownat(
                dir.fd.as_fd(),
                tmp,
                Some(Uid::from_raw(uid)),
                Some(Gid::from_raw(gid)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(sys(path, "set the owner of the symlink"))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn links_replace_files_but_not_directories() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("etc/x/key");
        link(&p, Path::new("/run/secrets/k"), 0, 0, false).unwrap();
        assert_eq!(fs::read_link(&p).unwrap(), Path::new("/run/secrets/k"));
        fs::remove_file(&p).unwrap();
        fs::write(&p, b"old").unwrap();
        link(&p, Path::new("/run/secrets/k"), 0, 0, false).unwrap();
        assert_eq!(fs::read_link(&p).unwrap(), Path::new("/run/secrets/k"));
        let d = t.path().join("dir");
        fs::create_dir(&d).unwrap();
        assert!(link(&d, Path::new("/t"), 0, 0, false).is_err());
    }

    #[test]
    fn switch_replaces_a_directory() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("secrets");
        fs::create_dir(&link).unwrap();
        fs::write(link.join("f"), b"").unwrap();
        switch(Path::new("/nowhere/1"), &link).unwrap();
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("/nowhere/1"));
    }
}
