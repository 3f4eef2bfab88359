//! What tskeyctl remembers about each provisioned key, so `status`, `revoke`,
//! `--reuse-if-valid-for` and `--revoke-previous` can work across runs and reboots.
//!
//! Layout: `<state-dir>/<name>/state.json` (0600, written atomically through [`crate::sink`]) and
//! `<state-dir>/<name>/lock` (an `flock` so concurrent runs for one name serialize). A record holds
//! the key id, times, tags, flags, source and the last result — never the key. To know that the
//! file at `--out` is still the key it minted, it keeps the SHA-256 of the written file: a hash of
//! a high-entropy key reveals nothing usable.
//!
//! The state directory is reached by the same trusted walk as an output directory
//! ([`crate::sink::walk`]), and `state.json` and `lock` are opened `O_NOFOLLOW|O_NONBLOCK` and
//! used only when they are regular files, so a FIFO or device planted there cannot hang a run.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};
use serde::{Deserialize, Serialize};

use crate::sink::{self, Dir, SinkError, WalkOptions, WriteOptions};

/// Problems with the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A name that is not a single safe path component.
    #[error(
        "invalid key name {name:?}: use letters, digits, '.', '_', '-', '@' (not starting with '.')"
    )]
    BadName { name: String },
    /// The state directory cannot be created, read or locked.
    #[error("{}: cannot {step}: {source}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    /// The state directory or a record cannot be read (e.g. `status` without root).
    #[error("{}: cannot {step}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
    },
    /// A state file that is not ours or is corrupt.
    #[error("{}: corrupt state record ({reason}); delete it to start over", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// `state.json` or `lock` is a FIFO, device, directory, symlink or socket.
    #[error("{}: is a {kind}, not a regular file; refusing to use it as state (remove it)", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    /// Writing the record failed, or the state directory is not trustworthy.
    #[error(transparent)]
    Write(#[from] SinkError),
}

/// Key flags as minted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub reusable: bool,
    pub ephemeral: bool,
    pub preauthorized: bool,
}

/// The record of one name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// Where the key was written.
    pub out: PathBuf,
    /// `raw`, `env` or `json`.
    pub format: String,
    /// The source file and key path inside it.
    pub source: Option<PathBuf>,
    pub source_key: Option<String>,
    /// `auth-key` (written as found), `oauth` or `api-key` (minted).
    pub material: Option<String>,
    /// API base URL and tailnet used to mint (revoke uses the same).
    pub api_url: Option<String>,
    pub tailnet: Option<String>,
    /// Whether tskeyctl minted the current key (and may revoke it).
    pub minted: bool,
    pub key_id: Option<String>,
    /// RFC 3339 times from the API.
    pub created: Option<String>,
    pub expires: Option<String>,
    pub tags: Vec<String>,
    pub flags: Option<Flags>,
    /// SHA-256 (hex) of the file written at `out`.
    pub out_sha256: Option<String>,
    /// When the current key was revoked (RFC 3339), if it was.
    pub revoked: Option<String>,
    /// Key ids revoked by `--revoke-previous` or `revoke`, oldest first (last 20).
    pub revoked_ids: Vec<String>,
    /// The last run: time (RFC 3339), `ok` / `reused` / `error`, its exit code and message.
    pub last_run: Option<String>,
    pub result: Option<String>,
    pub exit_code: Option<u8>,
    pub error: Option<String>,
}

impl Record {
    /// Seconds since the epoch at which the current key expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires
            .as_deref()
            .and_then(|e| humantime::parse_rfc3339_weak(e.trim_end_matches('Z')).ok())
    }

    /// Whether the current key is usable for at least `margin` more.
    pub fn valid_for(&self, margin: Duration, now: SystemTime) -> bool {
        self.revoked.is_none()
            && self.result.as_deref() != Some("error")
            && self
                .expires_at()
                .zip(now.checked_add(margin))
                .is_some_and(|(t, limit)| t > limit)
    }
}

/// RFC 3339 (UTC, seconds) of a time.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Checks that `name` is one safe path component.
pub fn check_name(name: &str) -> Result<(), StateError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadName { name: name.into() })
    }
}

/// The state of one name, locked for the lifetime of this value.
pub struct Locked {
    /// `<root>/<name>`, reached by a trusted walk and held open.
    dir: Dir,
    /// The same as given (for messages).
    shown: PathBuf,
    _lock: Flock<File>,
}

/// Largest state record read.
const RECORD_LIMIT: u64 = 1 << 20;

fn not_regular(path: &Path, st: &FileStat) -> StateError {
    StateError::NotRegular {
        path: path.to_path_buf(),
        kind: sink::kind_of(st),
    }
}

fn is_regular(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// Opens `name` in `dir` without following a symlink or blocking on a FIFO, and refuses anything
/// but a regular file (a FIFO planted as `state.json` or `lock` must not hang a run).
fn open_regular(
    dir: &Dir,
    name: &str,
    shown: &Path,
    flags: OFlag,
) -> Result<Option<File>, StateError> {
    let io = |step| {
        let path = shown.to_path_buf();
        move |e: Errno| StateError::Io {
            path,
            step,
            source: io::Error::from(e),
        }
    };
    match fstatat(dir.fd.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if !is_regular(&st) => return Err(not_regular(shown, &st)),
        Ok(_) => {}
        Err(Errno::ENOENT) if !flags.contains(OFlag::O_CREAT) => return Ok(None),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(io("inspect")(e)),
    }
    let fd = match openat(
        dir.fd.as_fd(),
        name,
        flags | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        Mode::from_bits_truncate(0o600),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(io("open")(e)),
    };
    let st = fstat(fd.as_fd()).map_err(io("inspect"))?;
    if !is_regular(&st) {
        return Err(not_regular(shown, &st));
    }
    Ok(Some(File::from(fd)))
}

/// Opens (creating 0700, every component trusted) `<root>/<name>/` and takes its lock, waiting
/// for other runs.
pub fn lock(root: &Path, name: &str) -> Result<Locked, StateError> {
    check_name(name)?;
    let shown = root.join(name);
    let walk = WalkOptions {
        mkdir: Some(0o700),
        allow_sticky: false,
    };
    let dir = sink::walk::open_dir(&shown, walk)?;
    let lock_path = shown.join("lock");
    let file = open_regular(&dir, "lock", &lock_path, OFlag::O_RDWR | OFlag::O_CREAT)?.ok_or_else(
        || StateError::Io {
            path: lock_path.clone(),
            step: "open the lock file",
            source: io::ErrorKind::NotFound.into(),
        },
    )?;
    let lock = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| StateError::Io {
        path: lock_path.clone(),
        step: "lock",
        source: io::Error::from(e),
    })?;
    Ok(Locked {
        dir,
        shown,
        _lock: lock,
    })
}

impl Locked {
    /// The record, or `None` for a name never provisioned.
    pub fn load(&self) -> Result<Option<Record>, StateError> {
        let path = self.shown.join("state.json");
        let file = open_regular(&self.dir, "state.json", &path, OFlag::O_RDONLY)?;
        file.map(|f| parse_record(f, &path)).transpose()
    }

    /// Replaces the record atomically.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.shown.join("state.json");
        let mut json = serde_json::to_vec_pretty(record).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        let opts = WriteOptions::default();
        sink::write_in(&self.dir, OsStr::new("state.json"), &path, &json, &opts)?;
        Ok(())
    }
}

fn parse_record(f: File, path: &Path) -> Result<Record, StateError> {
    let mut bytes = Vec::new();
    f.take(RECORD_LIMIT)
        .read_to_end(&mut bytes)
        .map_err(|source| StateError::Unreadable {
            path: path.to_path_buf(),
            step: "read the state record",
            source,
        })?;
    serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

fn load_file(path: &Path) -> Result<Option<Record>, StateError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Unreadable {
                path: path.to_path_buf(),
                step: "read the state record",
                source,
            });
        }
    };
    let st = fstat(file.as_fd()).map_err(|e| StateError::Unreadable {
        path: path.to_path_buf(),
        step: "inspect the state record",
        source: io::Error::from(e),
    })?;
    if !is_regular(&st) {
        return Err(not_regular(path, &st));
    }
    parse_record(file, path).map(Some)
}

/// Every record under `root` (unlocked reads, for `status`), sorted by name.
pub fn list(root: &Path) -> Result<Vec<Record>, StateError> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StateError::Unreadable {
                path: root.to_path_buf(),
                step: "list the state directory",
                source,
            });
        }
    };
    let mut records = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if check_name(&name).is_ok() {
            if let Some(r) = load_file(&entry.path().join("state.json"))? {
                records.push(r);
            }
        }
    }
    records.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(records)
}

/// One record by name, unlocked.
pub fn read(root: &Path, name: &str) -> Result<Option<Record>, StateError> {
    check_name(name)?;
    load_file(&root.join(name).join("state.json"))
}
