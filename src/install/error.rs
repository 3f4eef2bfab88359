//! Why `install` failed. Validation problems are collected (every bad secret is reported, not just
//! the first) and nothing on disk changes until all of them are fixed; errors while writing come
//! after validation and name the path and the step.
//!
//! Exit codes (mapped in `crate::error`):
//! * 66: manifest or a sops file missing or unreadable;
//! * 65: manifest is not JSON of the right shape; a sops file does not parse or its MAC fails;
//! * 78: the manifest asks for something impossible — bad name, mode or format, unknown owner or
//!   group, a `key` that is not in the file, PGP/templates/user mode;
//! * 77: no identity opens a sops file;
//! * 73: the secrets directory, a file, a symlink, the mount or the unit lists cannot be written,
//!   a directory on the way is untrusted (`--root`, a `path`'s directory), or a target is a
//!   device, FIFO or socket;
//! * 75: `systemctl` failed to queue restarts.

use std::io;
use std::path::PathBuf;

use crate::source::SourceError;

use super::files::{FileError, FileProblem, KeyError};

/// One reason the install cannot proceed or did not complete.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The manifest or a sops file could not be read.
    #[error(transparent)]
    Read(#[from] SourceError),
    /// The manifest is not JSON of the sops-nix shape.
    #[error("{}: not a valid manifest: {reason}", path.display())]
    Syntax { path: PathBuf, reason: String },
    /// A manifest option tskeyctl does not implement.
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    /// A secret entry is invalid (name, mode, format, owner, group, path, conflicts).
    #[error("secret '{name}': {reason}")]
    Secret { name: String, reason: String },
    /// A key path does not lead to a string in its sops file.
    #[error("secret '{name}' in {}: {source}", file.display())]
    Key {
        name: String,
        file: PathBuf,
        source: KeyError,
    },
    /// A sops file does not parse or decrypt.
    #[error("{}: {source}", file.display())]
    File { file: PathBuf, source: FileError },
    /// A system setting is missing (e.g. neither group `keys` nor `nogroup`).
    #[error("{0}")]
    System(String),
    /// Several of the above; nothing was changed.
    #[error("{} problems, nothing was changed:\n  - {}", .0.len(), list(.0))]
    Many(Vec<InstallError>),
    /// A filesystem step failed.
    #[error("{}: cannot {step}: {source}{hint}", path.display())]
    Io {
        path: PathBuf,
        step: &'static str,
        source: io::Error,
        hint: &'static str,
    },
    /// A directory on the way is not trustworthy, or a target is not a file or symlink.
    #[error(transparent)]
    Path(#[from] crate::sink::SinkError),
    /// Mounting the secrets filesystem failed.
    #[error("{}: cannot mount {fs}: {source} (run as root, or pass --no-mount to use the directory as it is)", path.display())]
    Mount {
        path: PathBuf,
        fs: &'static str,
        source: nix::Error,
    },
    /// `systemctl` could not be run or failed.
    #[error("cannot request unit restarts: {0}")]
    Systemctl(String),
}

/// The first few errors (a manifest may hold hundreds of secrets), then "and N more".
fn list(errors: &[InstallError]) -> String {
    let shown: Vec<String> = errors
        .iter()
        .map(|e| e.to_string().replace('\n', "\n    "))
        .collect();
    crate::log::bounded::list_of(&shown, "\n  - ", 400)
}

/// Exit-code classes of [`InstallError`], so `crate::error` can map them without knowing the
/// variants' contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// 66 or 65, as `SourceError` says.
    Read,
    /// 65.
    Data,
    /// 78.
    Config,
    /// 77.
    Permission,
    /// 73.
    Write,
    /// 75.
    Temporary,
}

impl InstallError {
    /// The class of this error (for `Many`, the class of the first problem).
    pub fn class(&self) -> Class {
        match self {
            InstallError::Read(_) => Class::Read,
            InstallError::Syntax { .. } => Class::Data,
            InstallError::File { source, .. } => match source.problem {
                FileProblem::Malformed => Class::Data,
                FileProblem::Undecryptable => Class::Permission,
            },
            InstallError::Unsupported { .. }
            | InstallError::Secret { .. }
            | InstallError::Key { .. }
            | InstallError::System(_) => Class::Config,
            InstallError::Many(v) => v.first().map_or(Class::Config, InstallError::class),
            InstallError::Io { .. } | InstallError::Path(_) | InstallError::Mount { .. } => {
                Class::Write
            }
            InstallError::Systemctl(_) => Class::Temporary,
        }
    }

    /// The source error of a `Read`, for its exit code.
    pub fn read_source(&self) -> Option<&SourceError> {
        match self {
            InstallError::Read(e) => Some(e),
            InstallError::Many(v) => v.first().and_then(InstallError::read_source),
            _ => None,
        }
    }

    /// Collapses a list of problems into one error (`None` when empty).
    pub fn from_list(mut v: Vec<InstallError>) -> Option<InstallError> {
        match v.len() {
            0 => None,
            1 => v.pop(),
            _ => Some(InstallError::Many(v)),
        }
    }
}

/// Builds an `Io` error for `path` and `step`.
pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    step: &'static str,
) -> impl FnOnce(io::Error) -> InstallError {
    let path = path.into();
    move |source| {
        let hint = if source.kind() == io::ErrorKind::PermissionDenied {
            " (run as root, or give owners/groups the caller may use)"
        } else {
            ""
        };
        InstallError::Io {
            path,
            step,
            source,
            hint,
        }
    }
}
