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
    dir: PathBuf,
    _lock: Flock<File>,
}

/// A lock on one output path, held for the lifetime of this value.
pub struct OutLock {
    _lock: Flock<File>,
}

/// Takes the lock of the output file at `canonical` (an absolute path with its directory
/// resolved), waiting for other runs: `<root>/.out-locks/<sha256 of the path>`. Runs under
/// different names that write the same file serialize on it. Take it before [`lock`].
pub fn lock_out(root: &Path, canonical: &Path) -> Result<OutLock, StateError> {
    use sha2::{Digest, Sha256};
    let dir = root.join(".out-locks");
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(OutLock {
        _lock: lock_file(&dir, &dir.join(hex))?,
    })
}

/// Opens (creating 0700) `<root>/<name>/` and takes its lock, waiting for other runs.
pub fn lock(root: &Path, name: &str) -> Result<Locked, StateError> {
    check_name(name)?;
    let dir = root.join(name);
    let lock = lock_file(&dir, &dir.join("lock"))?;
    Ok(Locked { dir, _lock: lock })
}

/// Creates `dir` (0700) and takes an exclusive `flock` on `lock_path` inside it.
fn lock_file(dir: &Path, lock_path: &Path) -> Result<Flock<File>, StateError> {
    let io = |path: &Path, step| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, step, source }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir, "create the state directory"))?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(lock_path)
        .map_err(io(lock_path, "open the lock file"))?;
    Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| io(lock_path, "lock")(io::Error::from(e)))
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
