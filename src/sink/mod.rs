//! The last stage: writing a secret to disk so that readers see the old file or the new one,
//! never a half-written or over-permissive one, and a failure loses nothing.
//!
//! The recipe (contract, "Writing"): the directory is reached by a trusted walk ([`walk`]: every
//! component owned by root or the caller, opened `O_NOFOLLOW|O_DIRECTORY` relative to the one
//! before; created 0751 with `--mkdir`) and must not be group/world-writable; a temp file in that
//! directory is created relative to its fd with `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, given its
//! final mode with `fchmod` (so umask does not filter it) and owner with `fchown`, written,
//! `fsync`ed and `renameat`d over the target; then the directory is `fsync`ed. `rename` replaces
//! a symlink at the target instead of following it. On any error the temp file is removed and
//! the existing target is untouched.
//!
//! Only a regular file, a symlink or nothing is ever replaced: a directory, device, FIFO or
//! socket at the target is refused ([`Special::Refuse`]) — or, for commands that stream output
//! like `cat` (`decrypt`, `encrypt`, `mint -o`, [`Special::WriteInto`]), a character device or
//! FIFO is written into in place. A FIFO is opened without blocking; with no reader yet it is
//! retried for [`FIFO_WAIT`] and then refused, so a run never hangs on a FIFO nobody reads.

mod special;
pub mod walk;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, symlinkat, unlinkat};

pub use special::FIFO_WAIT;
use special::{write_into, write_into_link};
pub use walk::{Dir, WalkOptions};

/// What to do when the target path is a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymlinkPolicy {
    /// Replace the link itself with the new file (the link's target is never touched).
    Replace,
    /// Refuse with an error (for `identity -o`, where a link is more likely a mistake).
    Refuse,
}

/// What to do when the target is a character device or FIFO.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// Refuse (exit 73) naming its type: `provision`, `install`, state files.
    Refuse,
    /// Write into it in place, like `cat > /dev/null` (also through a symlink owned by root or
    /// the caller): `decrypt`, `encrypt`, `mint -o`. Mode and owner options do not apply.
    WriteInto,
}

/// How to write one file.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Final permission bits, applied exactly (not filtered by umask).
    pub mode: u32,
    /// Owner to `fchown` to, if any.
    pub uid: Option<u32>,
    /// Group to `fchown` to, if any.
    pub gid: Option<u32>,
    /// Create a missing directory (and parents) with mode 0751.
    pub mkdir: bool,
    /// Allow a world-writable directory when it is root-owned and sticky (like `/tmp`).
    /// Provisioning into `/run/secrets` never allows it.
    pub allow_sticky_dir: bool,
    /// What to do with a symlink at the target.
    pub symlink: SymlinkPolicy,
    /// What to do with a character device or FIFO at the target.
    pub special: Special,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            mode: 0o600,
            uid: None,
            gid: None,
            mkdir: false,
            allow_sticky_dir: false,
            symlink: SymlinkPolicy::Replace,
            special: Special::Refuse,
        }
    }
}

/// Why the output could not be written. Every variant maps to exit 73.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The directory is missing (and not to be created). `hint` says what the command offers:
    /// only `provision` has `--mkdir`.
    #[error("{}: directory does not exist ({hint})", dir.display())]
    DirMissing { dir: PathBuf, hint: &'static str },
    /// The directory is writable by group or others.
    #[error(
        "{}: directory is group- or world-writable (mode {mode:04o}); refusing to write a secret there",
        dir.display()
    )]
    DirUnsafe { dir: PathBuf, mode: u32 },
    /// A directory or symlink on the way is not trustworthy.
    #[error("{}: {why}; refusing to write through it", path.display())]
    Untrusted { path: PathBuf, why: String },
    /// The parent path exists but is not a directory.
    #[error("{}: not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    /// The target is a symlink and the policy refuses it.
    #[error("{}: is a symlink; refusing to overwrite it (remove it first)", path.display())]
    SymlinkRefused { path: PathBuf },
    /// The target is a directory.
    #[error("{}: is a directory", path.display())]
    TargetIsDirectory { path: PathBuf },
    /// The target exists and is not a regular file or symlink.
    #[error("{}: is a {kind}, not a regular file; refusing to replace or write into it", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    /// A FIFO at the target had no reader within [`FIFO_WAIT`].
    #[error("{}: is a FIFO with no reader (waited {}s); start the reader first", path.display(), FIFO_WAIT.as_secs())]
    FifoNoReader { path: PathBuf },
    /// A step of the write failed.
    #[error("{}: cannot {step}: {source}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        path: path.to_path_buf(),
        step,
        source,
    }
}

fn sys<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(Errno) -> SinkError + 'a {
    move |e| io_err(path, step)(io::Error::from(e))
}

/// The kind of a file, for messages.
pub fn kind_of(st: &FileStat) -> &'static str {
    match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
        SFlag::S_IFREG => "regular file",
        SFlag::S_IFDIR => "directory",
        SFlag::S_IFLNK => "symlink",
        SFlag::S_IFCHR => "character device",
        SFlag::S_IFBLK => "block device",
        SFlag::S_IFIFO => "FIFO",
        SFlag::S_IFSOCK => "socket",
        _ => "special file",
    }
}

fn type_of(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// The directory of `path` (`.` for a bare name) and its file name, or `TargetIsDirectory`.
fn split(path: &Path) -> Result<(PathBuf, &OsStr), SinkError> {
    let name = walk::file_name(path).ok_or_else(|| SinkError::TargetIsDirectory {
        path: path.to_path_buf(),
    })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((dir, name))
}

/// Walks to the directory `path` goes into (creating it with `opts.mkdir`), with every check.
pub fn open_parent<'p>(path: &'p Path, opts: &WriteOptions) -> Result<(Dir, &'p OsStr), SinkError> {
    let (dir, name) = split(path)?;
    let walk = WalkOptions {
        mkdir: opts.mkdir.then_some(0o751),
        allow_sticky: opts.allow_sticky_dir,
    };
    Ok((walk::open_dir(&dir, walk)?, name))
}

/// Writes `contents` to `path` atomically with `opts`.
pub fn write_atomic(path: &Path, contents: &[u8], opts: &WriteOptions) -> Result<(), SinkError> {
    let (dir, name) = open_parent(path, opts)?;
    write_in(&dir, name, path, contents, opts)
}

/// Writes `contents` to `name` inside the held directory `dir` (`path` is for messages).
pub fn write_in(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    opts: &WriteOptions,
) -> Result<(), SinkError> {
    let action = match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => target_action(&st, opts, path)?,
        Err(Errno::ENOENT) => Action::Replace,
        Err(e) => return Err(sys(path, "inspect the target")(e)),
    };
    match action {
        Action::Replace => {}
        Action::WriteInto => return write_into(dir, name, path, contents, OFlag::O_NOFOLLOW),
        Action::FollowLink => {
            if write_into_link(dir, name, path, contents)? {
                return Ok(());
            }
        }
    }
    replace(dir, name, path, contents, opts)
}

/// What to do with what is at the target: replace it by rename, write into it (a character
/// device or FIFO, for streaming commands), or follow a trusted link to one (falling back to
/// replacing the link). The one decision for [`write_in`] and [`preflight`].
enum Action {
    Replace,
    WriteInto,
    FollowLink,
}

fn target_action(st: &FileStat, opts: &WriteOptions, path: &Path) -> Result<Action, SinkError> {
    match type_of(st) {
        SFlag::S_IFREG => Ok(Action::Replace),
        SFlag::S_IFLNK if opts.symlink == SymlinkPolicy::Refuse => Err(SinkError::SymlinkRefused {
            path: path.to_path_buf(),
        }),
        SFlag::S_IFLNK if opts.special == Special::WriteInto => {
            if st.st_uid != 0 && st.st_uid != nix::unistd::geteuid().as_raw() {
                return Err(SinkError::Untrusted {
                    path: path.to_path_buf(),
                    why: format!(
                        "symlink is owned by uid {} (not root or you); refusing to follow it",
                        st.st_uid
                    ),
                });
            }
            Ok(Action::FollowLink)
        }
        SFlag::S_IFLNK => Ok(Action::Replace),
        SFlag::S_IFDIR => Err(SinkError::TargetIsDirectory {
            path: path.to_path_buf(),
        }),
        SFlag::S_IFCHR | SFlag::S_IFIFO if opts.special == Special::WriteInto => {
            Ok(Action::WriteInto)
        }
        _ => Err(SinkError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(st),
        }),
    }
}

fn replace(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    opts: &WriteOptions,
) -> Result<(), SinkError> {
    let (tmp_name, file) = create_temp(dir, name, path, opts.mode)?;
    let result = fill_and_rename(&file, dir, &tmp_name, name, path, contents, opts);
    drop(file);
    if result.is_err() {
        let _ = unlinkat(
            dir.fd.as_fd(),
            tmp_name.as_os_str(),
            UnlinkatFlags::NoRemoveDir,
        );
        return result;
    }
    // Make the rename itself durable (a directory the caller may only traverse is not fsynced).
    match openat(
        dir.fd.as_fd(),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(d) => File::from(d)
            .sync_all()
            .map_err(io_err(&dir.path, "fsync the directory")),
        Err(Errno::EACCES) => Ok(()),
        Err(e) => Err(sys(&dir.path, "fsync the directory")(e)),
    }
}

fn fill_and_rename(
    file: &File,
    dir: &Dir,
    tmp_name: &OsStr,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    opts: &WriteOptions,
) -> Result<(), SinkError> {
    if opts.uid.is_some() || opts.gid.is_some() {
        fchown(
            file.as_fd(),
            opts.uid.map(Uid::from_raw),
            opts.gid.map(Gid::from_raw),
        )
        .map_err(sys(path, "set the owner of the new file"))?;
    }
    // fchown may clear set-id bits; set the exact mode last.
    fchmod(file.as_fd(), Mode::from_bits_truncate(opts.mode & 0o777))
        .map_err(sys(path, "set the mode of the new file"))?;
    let mut w = file;
    w.write_all(contents)
        .map_err(io_err(path, "write the new file"))?;
    file.sync_all()
        .map_err(io_err(path, "fsync the new file"))?;
    // Check again right before the rename: never rename over anything but a file or a link.
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if !matches!(type_of(&st), SFlag::S_IFREG | SFlag::S_IFLNK) => {
            return Err(SinkError::NotAFile {
                path: path.to_path_buf(),
                kind: kind_of(&st),
            });
        }
        _ => {}
    }
    renameat(dir.fd.as_fd(), tmp_name, dir.fd.as_fd(), name)
        .map_err(sys(path, "rename the new file into place"))
}

fn create_temp(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    mode: u32,
) -> Result<(OsString, File), SinkError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let mut last = Errno::EEXIST;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tskeyctl-{pid}-{n}-{nanos:08x}"));
        match openat(
            dir.fd.as_fd(),
            tmp_name.as_os_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode & 0o777),
        ) {
            Ok(fd) => return Ok((tmp_name, File::from(fd))),
            Err(Errno::EEXIST) => last = Errno::EEXIST,
            Err(e) => return Err(sys(path, "create a temporary file")(e)),
        }
    }
    Err(sys(path, "create a temporary file")(last))
}

/// Checks, before any work is done, that `path` could be written with `opts`: its directory
/// passes the trusted walk (a missing one is fine with `opts.mkdir`; it is created at write
/// time) and the target is nothing [`write_in`] would refuse.
pub fn preflight(path: &Path, opts: &WriteOptions) -> Result<(), SinkError> {
    let check = WriteOptions {
        mkdir: false,
        ..opts.clone()
    };
    let (dir, name) = match open_parent(path, &check) {
        Ok(d) => d,
        Err(SinkError::DirMissing { .. }) if opts.mkdir => return Ok(()),
        Err(e) => return Err(e),
    };
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => target_action(&st, opts, path).map(|_| ()),
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(sys(path, "inspect the target")(e)),
    }
}

/// Removes the file (or symlink) at `path`, reached by the trusted walk; a missing one is fine,
/// anything else (directory, device, FIFO, socket) is refused and left alone.
pub fn remove(path: &Path) -> Result<bool, SinkError> {
    let opts = WriteOptions {
        allow_sticky_dir: true,
        ..WriteOptions::default()
    };
    let (dir, name) = open_parent(path, &opts)?;
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if matches!(type_of(&st), SFlag::S_IFREG | SFlag::S_IFLNK) => {
            unlinkat(dir.fd.as_fd(), name, UnlinkatFlags::NoRemoveDir)
                .map_err(sys(path, "remove the file"))?;
            Ok(true)
        }
        Ok(st) => Err(SinkError::NotAFile {
            path: path.to_path_buf(),
            kind: kind_of(&st),
        }),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(sys(path, "inspect the file")(e)),
    }
}

/// Puts a symlink to `target` at `path` atomically (a temp link, `renameat` over whatever file or
/// link is there), relative to the trusted directory: how `provision` restores an output that was
/// a link before a failed run replaced it.
pub fn put_symlink(path: &Path, target: &Path) -> Result<(), SinkError> {
    let opts = WriteOptions {
        allow_sticky_dir: true,
        ..WriteOptions::default()
    };
    let (dir, name) = open_parent(path, &opts)?;
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tskeyctl-link-{}", std::process::id()));
    symlinkat(target, dir.fd.as_fd(), tmp.as_os_str()).map_err(sys(path, "create the link"))?;
    renameat(dir.fd.as_fd(), tmp.as_os_str(), dir.fd.as_fd(), name).map_err(|e| {
        let _ = unlinkat(dir.fd.as_fd(), tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        sys(path, "rename the link into place")(e)
    })
}
