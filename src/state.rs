//! What tskeyctl remembers about each provisioned key, so `status`, `revoke`,
//! `--reuse-if-valid-for` and `--revoke-previous` can work across runs and reboots.
//!
//! Layout: `<state-dir>/<name>/state.json` (0600, written atomically through [`crate::sink`]) and
//! `<state-dir>/<name>/lock` (an `flock` so concurrent runs for one name serialize). A record holds
//! the key id, times, tags, flags, source and the last result — never the key. To know that the
//! file at `--out` is still the key it minted, it keeps the SHA-256 of the written file: a hash of
//! a high-entropy key reveals nothing usable.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::sink::{self, SinkError, WriteOptions};

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
    /// Writing the record failed.
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
    dir: PathBuf,
    _lock: Flock<File>,
}

/// Opens (creating 0700) `<root>/<name>/` and takes its lock, waiting for other runs.
pub fn lock(root: &Path, name: &str) -> Result<Locked, StateError> {
    check_name(name)?;
    let dir = root.join(name);
    let io = |path: &Path, step| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, step, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(io(&dir, "create the state directory"))?;
    let lock_path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&lock_path)
        .map_err(io(&lock_path, "open the lock file"))?;
    let lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io(&lock_path, "lock")(io::Error::from(e)))?;
    Ok(Locked { dir, _lock: lock })
}

impl Locked {
    /// The record, or `None` for a name never provisioned.
    pub fn load(&self) -> Result<Option<Record>, StateError> {
        load_file(&self.dir.join("state.json"))
    }

    /// Replaces the record atomically.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let mut json = serde_json::to_vec_pretty(record).map_err(|e| StateError::Corrupt {
            path: self.dir.join("state.json"),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        let opts = WriteOptions::default();
        sink::write_atomic(&self.dir.join("state.json"), &json, &opts)?;
        Ok(())
    }
}

fn load_file(path: &Path) -> Result<Option<Record>, StateError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Corrupt {
                path: path.to_path_buf(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StateError::Unreadable {
            path: path.to_path_buf(),
            step: "read the state record",
            source,
        }),
    }
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
