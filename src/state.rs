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

/// How the key is laid out in the output file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// The bare key and a newline (`services.tailscale.authKeyFile`).
    #[default]
    Raw,
    /// `NAME=<key>` and a newline (a sidecar's `EnvironmentFile=`).
    Env,
    /// A JSON object with the key and what is known about it.
    Json,
}

impl OutputFormat {
    /// The name used in state records and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Raw => "raw",
            OutputFormat::Env => "env",
            OutputFormat::Json => "json",
        }
    }
}

/// What the source held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaterialKind {
    /// A ready `tskey-auth-…` key, written as found.
    #[serde(rename = "auth-key")]
    AuthKey,
    /// An OAuth client (a key was minted).
    #[serde(rename = "oauth")]
    OAuth,
    /// An API key (a key was minted).
    #[serde(rename = "api-key")]
    ApiKey,
    /// A federated identity: an ID token was exchanged (never recorded) and a key minted.
    #[serde(rename = "federated")]
    Federated,
}

/// How the last run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunResult {
    /// A key was written (and recorded).
    Ok,
    /// The existing key was kept.
    Reused,
    /// The run failed; `error` and `exit_code` say how.
    Error,
    /// A minted key is being written: recorded before `--out` is touched, so that a run cut
    /// short still names the key (the next run revokes it unless `--out` holds it).
    Pending,
    /// `provision --skip-if-logged-in`: tailscaled was logged in, so nothing was minted or
    /// written (`error` says why, as "skipped: …").
    Skipped,
    /// `revoke --after-join` gave up waiting for tailscaled to join: the key was kept, still
    /// live (`error` and `exit_code` say why).
    Kept,
}

/// A point in time, stored as RFC 3339 UTC (`2026-01-01T00:00:00Z`, fractions only when
/// present) — the same text the previous, string-typed records held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub SystemTime);

impl Timestamp {
    /// Now, to the second (as run times have always been recorded).
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Parses RFC 3339 as the API writes it (UTC, `Z`, optional fraction).
    pub fn parse(s: &str) -> Option<Self> {
        humantime::parse_rfc3339_weak(s.trim().trim_end_matches('Z'))
            .ok()
            .map(Timestamp)
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", humantime::format_rfc3339(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time")))
    }
}

/// The record of one name. The JSON layout is the one earlier versions wrote (same field names
/// and value spellings), so records written before the types were introduced load unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    /// Where the key was written (absolute).
    pub out: PathBuf,
    pub format: OutputFormat,
    /// The source file (absolute) and key path inside it.
    pub source: Option<PathBuf>,
    pub source_key: Option<String>,
    pub material: Option<MaterialKind>,
    /// API base URL used to mint (for information only: `revoke` never sends credentials to
    /// a URL read from here) and the tailnet.
    pub api_url: Option<String>,
    pub tailnet: Option<String>,
    /// Whether tskeyctl minted the current key (and may revoke it).
    pub minted: bool,
    pub key_id: Option<String>,
    /// Times from the API.
    pub created: Option<Timestamp>,
    pub expires: Option<Timestamp>,
    pub tags: Vec<String>,
    pub flags: Option<Flags>,
    /// SHA-256 (hex) of the file written at `out`.
    pub out_sha256: Option<String>,
    /// When the current key was revoked, if it was.
    pub revoked: Option<Timestamp>,
    /// Key ids revoked by `--revoke-previous` or `revoke`, oldest first (last 20).
    pub revoked_ids: Vec<String>,
    /// The last run: when, how it ended, its exit code and message.
    pub last_run: Option<Timestamp>,
    pub result: Option<RunResult>,
    pub exit_code: Option<u8>,
    pub error: Option<String>,
    /// Run markers of create requests whose reply was lost and whose keys could not be found
    /// then: the next run that mints revokes the keys carrying them. Absent when empty (the
    /// layout of earlier versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lost_markers: Vec<String>,
}

/// How many revoked ids a record keeps.
const REVOKED_IDS_KEPT: usize = 20;

impl Record {
    /// When the current key expires, if known.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires.map(|t| t.0)
    }

    /// Whether the current key is usable for at least `margin` more.
    pub fn valid_for(&self, margin: Duration, now: SystemTime) -> bool {
        self.revoked.is_none()
            && self.result != Some(RunResult::Error)
            && self
                .expires_at()
                .zip(now.checked_add(margin))
                .is_some_and(|(t, limit)| t > limit)
    }

    /// The id of a key tskeyctl minted, recorded here and not known to be revoked.
    pub fn live_minted_key(&self) -> Option<&str> {
        self.key_id
            .as_deref()
            .filter(|_| self.minted && self.revoked.is_none())
    }

    /// Notes `id` as revoked (keeping the last 20).
    pub fn note_revoked(&mut self, id: &str) {
        self.revoked_ids.push(id.to_owned());
        let excess = self.revoked_ids.len().saturating_sub(REVOKED_IDS_KEPT);
        self.revoked_ids.drain(..excess);
    }
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

/// A lock on one output path, held for the lifetime of this value.
pub struct OutLock {
    _lock: Flock<File>,
}

/// Takes the lock of the output file at `canonical` (an absolute path with its directory
/// resolved), waiting for other runs: `<root>/.out-locks/<sha256 of the path>`. Runs under
/// different names that write the same file serialize on it. Take it before [`lock`].
pub fn lock_out(root: &Path, canonical: &Path) -> Result<OutLock, StateError> {
    let dir = root.join(".out-locks");
    let hex = sha256_hex(canonical.as_os_str().as_encoded_bytes());
    let (_, lock) = lock_in(&dir, &hex)?;
    Ok(OutLock { _lock: lock })
}

/// SHA-256 of `bytes` in lowercase hex: a written file's fingerprint in a record, an output
/// path's lock name.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Opens (creating 0700, every component trusted) `<root>/<name>/` and takes its lock, waiting
/// for other runs.
pub fn lock(root: &Path, name: &str) -> Result<Locked, StateError> {
    check_name(name)?;
    let shown = root.join(name);
    let (dir, lock) = lock_in(&shown, "lock")?;
    Ok(Locked {
        dir,
        shown,
        _lock: lock,
    })
}

/// Walks to `dir` (creating 0700, every component trusted) and takes an exclusive `flock` on the
/// regular file `name` inside it (created 0600).
fn lock_in(dir: &Path, name: &str) -> Result<(Dir, Flock<File>), StateError> {
    let walk = WalkOptions {
        mkdir: Some(0o700),
        allow_sticky: false,
    };
    let held = sink::walk::open_dir(dir, walk)?;
    let lock_path = dir.join(name);
    let file = open_regular(&held, name, &lock_path, OFlag::O_RDWR | OFlag::O_CREAT)?.ok_or_else(
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
    Ok((held, lock))
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

/// What `status` was asked about and cannot find: a monitor must not read "nothing recorded"
/// as healthy.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    /// The state directory does not exist.
    #[error(
        "{}: no state directory; nothing was provisioned with this --state-dir (is it the one \
provision uses?)",
        dir.display()
    )]
    Dir { dir: PathBuf },
    /// No record under the name asked for.
    #[error(
        "{}: nothing was ever provisioned under the name {name:?} (names recorded: {known})",
        dir.display()
    )]
    Name {
        dir: PathBuf,
        name: String,
        known: String,
    },
}

/// Whether the state directory exists (a missing one is [`Missing::Dir`]).
pub fn require_dir(root: &Path) -> Result<(), Missing> {
    match fs::symlink_metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Missing::Dir {
            dir: root.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// One record by name, unlocked.
pub fn read(root: &Path, name: &str) -> Result<Option<Record>, StateError> {
    check_name(name)?;
    load_file(&root.join(name).join("state.json"))
}
