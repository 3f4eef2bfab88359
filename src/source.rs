//! Reading input files: the first stage of every command.
//!
//! Inputs are read whole but never without bound: each caller names a size limit, and a larger
//! input is refused before it is held in memory (so a 50 MB file given as an ssh key costs at most
//! the limit). Buffers are zeroizing because an input may be a private key or plaintext. `-` means
//! standard input. Errors name the file and map to exit 66 (missing/unreadable) or 65 (too large).
//! A "path" that is really a pasted secret (`tskey-…`, `AGE-SECRET-KEY-…`, a PEM block) is refused
//! as a usage error without being echoed ([`looks_like_secret`]).

use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Where an input came from, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Standard input (`-`).
    Stdin,
    /// A file path.
    File(PathBuf),
}

impl Origin {
    /// `-` is standard input, anything else a path.
    pub fn from_arg(arg: &Path) -> Self {
        if arg.as_os_str() == "-" {
            Origin::Stdin
        } else {
            Origin::File(arg.to_path_buf())
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Stdin => f.write_str("<stdin>"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file does not exist.
    #[error("{origin}: no such file")]
    NotFound { origin: Origin },
    /// The path is a directory.
    #[error("{origin}: is a directory, expected a file")]
    IsDirectory { origin: Origin },
    /// Permission or other I/O failure.
    #[error("{origin}: cannot read: {source}")]
    Unreadable { origin: Origin, source: io::Error },
    /// A path argument that is a secret pasted where a file name belongs. Neither the value nor
    /// anything derived from it is kept: only the flag that received it.
    #[error(
        "{flag}: this looks like a secret, {}: put it in a 0600 file{}",
        if *.path { "not a file name" } else { "and secrets are never taken from the command line" },
        env_hint(.env)
    )]
    LooksLikeSecret {
        flag: String,
        env: Option<&'static str>,
        /// Whether the flag takes a path (else another value, such as a client id).
        path: bool,
    },
    /// The input is larger than this kind of input can be.
    #[error("{origin}: larger than {limit} bytes, which is too large for {what}")]
    TooLarge {
        origin: Origin,
        limit: u64,
        what: &'static str,
    },
}

fn env_hint(env: &Option<&'static str>) -> String {
    env.map(|e| format!(" (or {e})")).unwrap_or_default()
}

/// True when `arg` looks like a secret rather than a file name: a Tailscale key (`tskey-…` with
/// no `/` or `.` before any `?query`, or any path component shaped like a whole key), an age
/// identity (`AGE-SECRET-KEY-…`, `AGE-PLUGIN-…`), a PEM block, or a JWT (an OIDC ID token:
/// `eyJ…` in three base64url parts). A file may still be named `tskey-client.env` or
/// `./tskey-auth-key`.
pub fn looks_like_secret(arg: &std::ffi::OsStr) -> bool {
    let s = arg.to_string_lossy();
    let t = s.trim_start();
    if t.contains("-----BEGIN") || jwt_shaped(t.trim_end()) {
        return true;
    }
    let upper = t.get(..15).unwrap_or(t).to_ascii_uppercase();
    if upper.starts_with("AGE-SECRET-KEY-") || upper.starts_with("AGE-PLUGIN-") {
        return true;
    }
    let head = t.split('?').next().unwrap_or_default();
    (t.starts_with("tskey-") && !head.contains(['/', '.'])) || head.split('/').any(key_shaped)
}

/// A compact JWT: `eyJ…` (base64url of `{"`), three non-empty base64url parts.
fn jwt_shaped(t: &str) -> bool {
    let parts: Vec<&str> = t.split('.').collect();
    t.starts_with("eyJ")
        && parts.len() == 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `tskey-<kind>-<id>-<secret>` with ASCII letters and digits and a secret part of 16 or more
/// characters: no file is named like that by chance (the full grammar is `material::grammar`).
fn key_shaped(c: &str) -> bool {
    let parts: Vec<&str> = c.split('-').collect();
    let alnum = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric());
    parts.len() == 4 && parts[0] == "tskey" && parts[1..].iter().all(alnum) && parts[3].len() >= 16
}

/// Reads all of `origin`, refusing more than `limit` bytes. `what` names the expected content
/// for the error message ("an ssh key", "a sops file").
pub fn read_limited(
    origin: &Origin,
    limit: u64,
    what: &'static str,
) -> Result<Zeroizing<Vec<u8>>, SourceError> {
    let unreadable = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => SourceError::NotFound {
            origin: origin.clone(),
        },
        io::ErrorKind::IsADirectory => SourceError::IsDirectory {
            origin: origin.clone(),
        },
        _ => SourceError::Unreadable {
            origin: origin.clone(),
            source,
        },
    };
    if let Origin::File(p) = origin {
        // Paths from the environment (SOPS_AGE_KEY_FILE=…) or a library caller get the same
        // check as flags (`cli` checks those first, naming the flag).
        if looks_like_secret(p.as_os_str()) {
            return Err(SourceError::LooksLikeSecret {
                flag: format!("a path given for {what}"),
                env: None,
                path: true,
            });
        }
    }
    let mut buf = Zeroizing::new(Vec::new());
    let read = match origin {
        Origin::Stdin => io::stdin().lock().take(limit + 1).read_to_end(&mut buf),
        Origin::File(path) => {
            let file = std::fs::File::open(path).map_err(unreadable)?;
            let meta = file.metadata().map_err(unreadable)?;
            if meta.is_dir() {
                return Err(SourceError::IsDirectory {
                    origin: origin.clone(),
                });
            }
            if meta.len() > limit {
                return Err(SourceError::TooLarge {
                    origin: origin.clone(),
                    limit,
                    what,
                });
            }
            // Pre-size from metadata so the buffer never reallocates (a reallocation would leave
            // an unzeroized copy of the secret behind).
            buf.reserve_exact(meta.len() as usize + 1);
            file.take(limit + 1).read_to_end(&mut buf)
        }
    };
    read.map_err(unreadable)?;
    if buf.len() as u64 > limit {
        return Err(SourceError::TooLarge {
            origin: origin.clone(),
            limit,
            what,
        });
    }
    Ok(buf)
}
