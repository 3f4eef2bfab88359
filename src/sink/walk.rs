//! Finding the output directory without trusting anything an unprivileged user could swap: the
//! path is resolved one component at a time from `/` with `openat(O_NOFOLLOW|O_DIRECTORY)`, each
//! step relative to the directory fd held from the step before, and every directory on the way
//! and every symlink followed must be owned by root or by the invoking user (as OpenSSH's
//! `StrictModes`). An ancestor writable by group or others is allowed only when it is root-owned
//! and sticky (like `/tmp`); the output directory itself must not be writable by group or others.
//! Symlinks are resolved by reading them and continuing the walk (relative ones from their own
//! directory), so a root-owned `/run/secrets -> secrets.d/N` keeps working while a link planted
//! by another user is refused. Directories `--mkdir` creates are made here, relative to the held
//! fd, and given their exact mode.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};

use super::SinkError;

/// Symlinks followed in one walk before giving up (the kernel's limit is 40).
const MAX_LINKS: usize = 40;

/// A directory reached by a trusted walk, held open so later steps are relative to it.
#[derive(Debug)]
pub struct Dir {
    /// An `O_PATH` (or, for a directory just created, `O_RDONLY`) descriptor of the directory.
    pub fd: OwnedFd,
    /// The path it was reached by (symlinks resolved), for messages.
    pub path: PathBuf,
}

/// What the walk may do and allow.
#[derive(Clone, Copy, Debug)]
pub struct WalkOptions {
    /// Create missing directories with exactly this mode (`None`: a missing one is an error).
    pub mkdir: Option<u32>,
    /// The final directory may be world-writable when root-owned and sticky (like `/tmp`).
    pub allow_sticky: bool,
}

fn untrusted(path: &Path, why: String) -> SinkError {
    SinkError::Untrusted {
        path: path.to_path_buf(),
        why,
    }
}

fn sys<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(Errno) -> SinkError + 'a {
    move |e| SinkError::Io {
        path: path.to_path_buf(),
        step,
        source: std::io::Error::from(e),
    }
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Who may own a directory or symlink on the way: root or the invoking user.
fn owner_ok(uid: u32) -> bool {
    uid == 0 || uid == me()
}

fn is_type(st: &FileStat, t: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == t
}

fn check_owner(st: &FileStat, path: &Path) -> Result<(), SinkError> {
    if owner_ok(st.st_uid) {
        return Ok(());
    }
    Err(untrusted(
        path,
        format!(
            "directory is owned by uid {} (not root or uid {})",
            st.st_uid,
            me()
        ),
    ))
}

/// Checks a directory on the way (not the last one).
fn check_ancestor(st: &FileStat, path: &Path) -> Result<(), SinkError> {
    check_owner(st, path)?;
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 && !(mode & 0o1000 != 0 && st.st_uid == 0) {
        return Err(untrusted(
            path,
            format!(
                "directory is writable by group or others (mode {mode:04o}) and not a root-owned sticky directory"
            ),
        ));
    }
    Ok(())
}

/// Checks the directory the file goes into.
fn check_final(st: &FileStat, path: &Path, allow_sticky: bool) -> Result<(), SinkError> {
    check_owner(st, path)?;
    let mode = st.st_mode & 0o7777;
    let sticky_ok = allow_sticky && mode & 0o1000 != 0 && st.st_uid == 0;
    if mode & 0o022 != 0 && !sticky_ok {
        return Err(SinkError::DirUnsafe {
            dir: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Pushes the components of `p` (relative to wherever the walk stands) in front of `pending`.
fn push_front(pending: &mut VecDeque<OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => pending.push_front(n.to_os_string()),
            Component::ParentDir => pending.push_front(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

fn open_dir_at(dir: &Dir, name: &OsStr) -> nix::Result<OwnedFd> {
    openat(
        dir.fd.as_fd(),
        name,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Walks to directory `path` (absolute or relative to the working directory) and returns it held
/// open, or says which component is missing, untrusted or not a directory.
pub fn open_dir(path: &Path, opts: WalkOptions) -> Result<Dir, SinkError> {
    let abs = std::path::absolute(path).map_err(|source| SinkError::Io {
        path: path.to_path_buf(),
        step: "resolve the directory",
        source,
    })?;
    let root = Path::new("/");
    let root_fd = openat(
        nix::fcntl::AT_FDCWD,
        root,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(sys(root, "open the directory"))?;
    let st = fstat(root_fd.as_fd()).map_err(sys(root, "inspect the directory"))?;
    check_owner(&st, root)?;
    let mut stack = vec![Dir {
        fd: root_fd,
        path: root.to_path_buf(),
    }];
    let mut pending = VecDeque::new();
    push_front(&mut pending, &abs);
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            if stack.len() > 1 {
                stack.pop();
            }
            continue;
        }
        let top = stack
            .last()
            .ok_or_else(|| untrusted(root, "empty walk".into()))?;
        // Going through `top`: it is an ancestor now, so group/other-writable only if sticky.
        let st = fstat(top.fd.as_fd()).map_err(sys(&top.path, "inspect the directory"))?;
        check_ancestor(&st, &top.path)?;
        let here = top.path.join(&c);
        match open_dir_at(top, &c) {
            Ok(fd) => {
                let st = fstat(fd.as_fd()).map_err(sys(&here, "inspect the directory"))?;
                check_owner(&st, &here)?;
                stack.push(Dir { fd, path: here });
            }
            Err(Errno::ENOENT) => match opts.mkdir {
                Some(mode) => {
                    let made = make_dir(top, &c, &here, mode)?;
                    stack.push(made);
                }
                None => {
                    return Err(SinkError::DirMissing {
                        dir: path.to_path_buf(),
                        hint: "create it first",
                    });
                }
            },
            Err(Errno::ELOOP) | Err(Errno::ENOTDIR) => {
                let st = fstatat(top.fd.as_fd(), c.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(sys(&here, "inspect"))?;
                if !is_type(&st, SFlag::S_IFLNK) {
                    return Err(SinkError::NotADirectory { dir: here });
                }
                if !owner_ok(st.st_uid) {
                    return Err(untrusted(
                        &here,
                        format!(
                            "symlink is owned by uid {} (not root or uid {}); refusing to follow it",
                            st.st_uid,
                            me()
                        ),
                    ));
                }
                links += 1;
                if links > MAX_LINKS {
                    return Err(untrusted(&here, "too many levels of symlinks".into()));
                }
                let target = readlinkat(top.fd.as_fd(), c.as_os_str())
                    .map_err(sys(&here, "read the symlink"))?;
                let target = PathBuf::from(target);
                if target.is_absolute() {
                    stack.truncate(1);
                }
                push_front(&mut pending, &target);
            }
            Err(e) => return Err(sys(&here, "open the directory")(e)),
        }
    }
    let last = stack
        .pop()
        .ok_or_else(|| untrusted(root, "empty walk".into()))?;
    let st = fstat(last.fd.as_fd()).map_err(sys(&last.path, "inspect the directory"))?;
    check_final(&st, &last.path, opts.allow_sticky)?;
    Ok(last)
}

/// `mkdirat` + exact mode, relative to `parent`; another run creating it meanwhile is fine as
/// long as what is there passes the same checks.
fn make_dir(parent: &Dir, name: &OsStr, here: &Path, mode: u32) -> Result<Dir, SinkError> {
    match mkdirat(parent.fd.as_fd(), name, Mode::from_bits_truncate(0o700)) {
        Ok(()) => {
            let fd = openat(
                parent.fd.as_fd(),
                name,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(sys(here, "open the new directory"))?;
            // umask 077 filtered the mode above; make it exact.
            fchmod(fd.as_fd(), Mode::from_bits_truncate(mode))
                .map_err(sys(here, "set the directory mode"))?;
            let st = fstat(fd.as_fd()).map_err(sys(here, "inspect the directory"))?;
            check_owner(&st, here)?;
            Ok(Dir {
                fd,
                path: here.to_path_buf(),
            })
        }
        Err(Errno::EEXIST) => {
            let fd = open_dir_at(parent, name).map_err(sys(here, "open the directory"))?;
            let st = fstat(fd.as_fd()).map_err(sys(here, "inspect the directory"))?;
            check_owner(&st, here)?;
            Ok(Dir {
                fd,
                path: here.to_path_buf(),
            })
        }
        Err(e) => Err(sys(here, "create the directory")(e)),
    }
}

/// A file name that can be created in a directory: one normal component.
pub fn file_name(path: &Path) -> Option<&OsStr> {
    let name = path.file_name()?;
    let bytes = name.as_bytes();
    // `Path::file_name` drops a trailing `/.` or `/`; a target spelled like a directory is refused.
    let raw = path.as_os_str().as_bytes();
    if raw.ends_with(b"/") || raw.ends_with(b"/.") || bytes.is_empty() {
        return None;
    }
    Some(name)
}
