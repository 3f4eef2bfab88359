//! Writing *into* an existing character device or FIFO, the way `cat > /dev/null` or
//! `sops -d > fifo` would, for the commands that stream output (`decrypt`, `encrypt`, `mint -o`).
//!
//! The node is opened `O_WRONLY|O_NONBLOCK|O_NOCTTY` relative to the trusted directory fd, so a
//! FIFO with no reader does not block: `open` fails with `ENXIO` and is retried every 50 ms until
//! [`FIFO_WAIT`] has passed, then the write is refused (73) rather than hanging forever as `cat`
//! would. Once open, `O_NONBLOCK` is cleared so a slow reader is simply waited for. Nothing is
//! created, renamed or removed; mode and owner options do not apply to an existing node.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, FcntlArg, OFlag, fcntl, openat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};

use super::{Dir, SinkError, io_err, sys, type_of};

/// How long a write into a FIFO waits for a reader to open it before giving up.
pub const FIFO_WAIT: Duration = Duration::from_secs(5);

/// Opens a character device or FIFO for writing without blocking: a FIFO with no reader is
/// retried until [`FIFO_WAIT`] has passed. Returns `None` when `name` turns out to be something
/// else (only possible through a symlink).
fn open_special(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    extra: OFlag,
) -> Result<Option<File>, SinkError> {
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC | extra;
    let start = Instant::now();
    let fd = loop {
        match openat(dir.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => break fd,
            // ENXIO: a FIFO without a reader (or a socket, which is not ours to write).
            Err(Errno::ENXIO) => {
                let st = fstatat(dir.fd.as_fd(), name, AtFlags::empty())
                    .map_err(sys(path, "inspect the target"))?;
                if type_of(&st) != SFlag::S_IFIFO {
                    return Ok(None);
                }
                if start.elapsed() >= FIFO_WAIT {
                    return Err(SinkError::FifoNoReader {
                        path: path.to_path_buf(),
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(Errno::ENOENT | Errno::EISDIR | Errno::ELOOP) if extra.is_empty() => {
                return Ok(None);
            }
            Err(e) => return Err(sys(path, "open the target for writing")(e)),
        }
    };
    let st = fstat(fd.as_fd()).map_err(sys(path, "inspect the target"))?;
    if !matches!(type_of(&st), SFlag::S_IFCHR | SFlag::S_IFIFO) {
        return Ok(None);
    }
    // Writes may block from here on (a slow reader is fine; no reader was the problem).
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(OFlag::empty()))
        .map_err(sys(path, "open the target for writing"))?;
    Ok(Some(File::from(fd)))
}

pub(super) fn write_into(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
    extra: OFlag,
) -> Result<(), SinkError> {
    match open_special(dir, name, path, extra)? {
        Some(mut f) => f
            .write_all(contents)
            .and_then(|()| f.flush())
            .map_err(io_err(path, "write")),
        // Swapped for something else between the check and the open: refuse, touch nothing.
        None => Err(SinkError::NotAFile {
            path: path.to_path_buf(),
            kind: "file that changed type while being opened",
        }),
    }
}

/// Writes into what a symlink at the target points to when that is a character device or FIFO
/// (`true`); `false` means it is not, and the link itself is to be replaced.
pub(super) fn write_into_link(
    dir: &Dir,
    name: &OsStr,
    path: &Path,
    contents: &[u8],
) -> Result<bool, SinkError> {
    match fstatat(dir.fd.as_fd(), name, AtFlags::empty()) {
        Ok(st) if matches!(type_of(&st), SFlag::S_IFCHR | SFlag::S_IFIFO) => {}
        _ => return Ok(false),
    }
    match open_special(dir, name, path, OFlag::empty())? {
        Some(mut f) => {
            f.write_all(contents)
                .and_then(|()| f.flush())
                .map_err(io_err(path, "write"))?;
            Ok(true)
        }
        None => Ok(false),
    }
}
