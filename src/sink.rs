//! The last stage: writing a secret to disk so that readers see the old file or the new one,
//! never a half-written or over-permissive one, and a failure loses nothing.
//!
//! The recipe (contract, "Writing"): the directory must exist (or is created 0751) and must not be
//! group/world-writable; a temp file in that directory is created with
//! `O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, given its final mode with `fchmod` (so umask does not
//! filter it) and owner with `fchown`, written, `fsync`ed and `rename`d over the target; then the
//! directory is `fsync`ed. `rename` replaces a symlink at the target instead of following it.
//! On any error the temp file is removed and the existing target is untouched.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// What to do when the target path is a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymlinkPolicy {
    /// Replace the link itself with the new file (the link's target is never touched).
    Replace,
    /// Refuse with an error (for `identity -o`, where a link is more likely a mistake).
    Refuse,
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
    /// Allow a world-writable directory when it has the sticky bit (like `/tmp`). Provisioning
    /// into `/run/secrets` never allows it.
    pub allow_sticky_dir: bool,
    /// What to do with a symlink at the target.
    pub symlink: SymlinkPolicy,
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
        }
    }
}

/// Why the output could not be written. Every variant maps to exit 73.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The directory is missing and `--mkdir` was not given.
    #[error("{}: directory does not exist (create it, or pass --mkdir)", dir.display())]
    DirMissing { dir: PathBuf },
    /// The directory is writable by group or others.
    #[error(
        "{}: directory is group- or world-writable (mode {mode:04o}); refusing to write a secret there",
        dir.display()
    )]
    DirUnsafe { dir: PathBuf, mode: u32 },
    /// The parent path exists but is not a directory.
    #[error("{}: not a directory", dir.display())]
    NotADirectory { dir: PathBuf },
    /// The target is a symlink and the policy refuses it.
    #[error("{}: is a symlink; refusing to overwrite it (remove it first)", path.display())]
    SymlinkRefused { path: PathBuf },
    /// The target is a directory.
    #[error("{}: is a directory", path.display())]
    TargetIsDirectory { path: PathBuf },
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

/// Writes `contents` to `path` atomically with `opts`.
pub fn write_atomic(path: &Path, contents: &[u8], opts: &WriteOptions) -> Result<(), SinkError> {
    let name = path
        .file_name()
        .ok_or_else(|| SinkError::TargetIsDirectory {
            path: path.to_path_buf(),
        })?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    check_dir(&dir, opts)?;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() && opts.symlink == SymlinkPolicy::Refuse => {
            return Err(SinkError::SymlinkRefused {
                path: path.to_path_buf(),
            });
        }
        Ok(m) if m.is_dir() => {
            return Err(SinkError::TargetIsDirectory {
                path: path.to_path_buf(),
            });
        }
        _ => {}
    }

    let (tmp_path, file) = create_temp(&dir, name, opts.mode)?;
    let result = fill_and_rename(&file, &tmp_path, path, contents, opts);
    drop(file);
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
        return result;
    }
    // Make the rename itself durable.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir, "fsync the directory"))
}

fn fill_and_rename(
    file: &File,
    tmp_path: &Path,
    path: &Path,
    contents: &[u8],
    opts: &WriteOptions,
) -> Result<(), SinkError> {
    if opts.uid.is_some() || opts.gid.is_some() {
        std::os::unix::fs::fchown(file, opts.uid, opts.gid)
            .map_err(io_err(path, "set the owner of the new file"))?;
    }
    // fchown may clear set-id bits; set the exact mode last.
    file.set_permissions(Permissions::from_mode(opts.mode))
        .map_err(io_err(path, "set the mode of the new file"))?;
    let mut w = file;
    w.write_all(contents)
        .map_err(io_err(path, "write the new file"))?;
    file.sync_all()
        .map_err(io_err(path, "fsync the new file"))?;
    fs::rename(tmp_path, path).map_err(io_err(path, "rename the new file into place"))
}

fn check_dir(dir: &Path, opts: &WriteOptions) -> Result<(), SinkError> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound && opts.mkdir => {
            make_dirs(dir)?;
            fs::metadata(dir).map_err(io_err(dir, "inspect the directory"))?
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SinkError::DirMissing {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(io_err(dir, "inspect the directory")(e)),
    };
    if !meta.is_dir() {
        return Err(SinkError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky && opts.allow_sticky_dir) {
        return Err(SinkError::DirUnsafe {
            dir: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Creates `dir` and every missing parent with mode exactly 0751 (traversable, not listable), so
/// an owner given with `--owner` can reach the file however deep it is.
fn make_dirs(dir: &Path) -> Result<(), SinkError> {
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|a| !a.as_os_str().is_empty() && fs::symlink_metadata(a).is_err())
        .collect();
    for d in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(0o751).create(d) {
            Ok(()) => {}
            // Another run created it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(d, "create the directory")(e)),
        }
        // umask 077 filtered the mode above; make it exactly 0751.
        fs::set_permissions(d, Permissions::from_mode(0o751))
            .map_err(io_err(d, "set the directory mode"))?;
    }
    Ok(())
}

fn create_temp(
    dir: &Path,
    name: &std::ffi::OsStr,
    mode: u32,
) -> Result<(PathBuf, File), SinkError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let pid = std::process::id();
    let mut last = None;
    for _ in 0..16 {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tskeyctl-{pid}-{n}-{nanos:08x}"));
        let tmp_path = dir.join(tmp_name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode & 0o777)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp_path)
        {
            Ok(f) => return Ok((tmp_path, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(io_err(&dir.join(name), "create a temporary file")(e)),
        }
    }
    Err(io_err(&dir.join(name), "create a temporary file")(
        last.unwrap_or_else(|| io::Error::other("too many collisions")),
    ))
}

/// Removes the file (or symlink, never its target) at `path`; `Ok(false)` when there was none.
/// A directory is never removed.
pub fn remove(path: &Path) -> Result<bool, SinkError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(SinkError::TargetIsDirectory {
            path: path.to_path_buf(),
        }),
        Ok(_) => match fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(path, "remove the file")(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, "inspect the file")(e)),
    }
}
