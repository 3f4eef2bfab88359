//! Reading input files: the first stage of every command.
//!
//! Inputs are read whole but never without bound: each caller names a size limit, and a larger
//! input is refused before it is held in memory (so a 50 MB file given as an ssh key costs at most
//! the limit). Buffers are zeroizing because an input may be a private key or plaintext. `-` means
//! standard input. Errors name the file and map to exit 66 (missing/unreadable) or 65 (too large).

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
    /// The input is larger than this kind of input can be.
    #[error("{origin}: larger than {limit} bytes, which is too large for {what}")]
    TooLarge {
        origin: Origin,
        limit: u64,
        what: &'static str,
    },
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
