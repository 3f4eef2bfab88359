//! The seam between installing and decrypting: what `install` needs from a sops file, and nothing
//! more.
//!
//! `install` reads each sops file once, asks the decoder to *inspect* it (parse the encrypted
//! document in its format and tell which key paths exist — key names are plaintext in sops, so
//! this needs no key; `--check` stops here) and, when installing, to *decrypt* it once and hand out
//! leaf values or the whole re-emitted file. Keeping this a trait lets the install flow (validation,
//! generations, units) be tested on its own and keeps every sops detail in the `sops` module.

use std::path::Path;

use zeroize::Zeroizing;

/// The sops formats sops-nix accepts in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML document (also the meaning of `""`).
    Yaml,
    /// JSON document.
    Json,
    /// `{"data": ENC[…], "sops": …}`: the secret is the raw `data` bytes.
    Binary,
    /// `KEY=value` lines; always installed whole.
    Dotenv,
    /// INI sections; always installed whole.
    Ini,
}

impl Format {
    /// The manifest spelling (`""` is yaml, as in sops-nix). Unknown strings are `None`.
    pub fn from_manifest(s: &str) -> Option<Format> {
        Some(match s {
            "" | "yaml" => Format::Yaml,
            "json" => Format::Json,
            "binary" => Format::Binary,
            "dotenv" => Format::Dotenv,
            "ini" => Format::Ini,
            _ => return None,
        })
    }

    /// The manifest spelling.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Binary => "binary",
            Format::Dotenv => "dotenv",
            Format::Ini => "ini",
        }
    }

    /// Whether a secret's `key` selects a value (yaml, json); the other formats install the
    /// whole file and ignore `key`, as sops-nix does.
    pub fn keyed(self) -> bool {
        matches!(self, Format::Yaml | Format::Json)
    }
}

/// What kind of failure a sops file had; decides the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileProblem {
    /// Not valid in its format, not a sops file, or the MAC does not match (exit 65).
    Malformed,
    /// No available identity opens the data key (exit 77).
    Undecryptable,
}

/// A sops file could not be parsed or decrypted. `detail` names the problem, never a value.
#[derive(Debug, thiserror::Error)]
#[error("{detail}")]
pub struct FileError {
    /// The kind, for the exit code.
    pub problem: FileProblem,
    /// Human-readable reason (file name, recipients, what to do).
    pub detail: String,
}

/// A `key` path that does not lead to a string. Wording as sops-nix's, with `/` paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Some component is missing (`path` is the prefix up to and including it).
    #[error("the key '{path}' cannot be found")]
    NotFound {
        /// The prefix that was not found.
        path: String,
    },
    /// A component before the last is not a mapping.
    #[error("key '{path}' does not refer to a dictionary")]
    NotADictionary {
        /// The prefix that is not a mapping.
        path: String,
    },
    /// The leaf is a mapping, list, number or bool.
    #[error("the value of key '{path}' is not a string")]
    NotAString {
        /// The full key.
        path: String,
    },
}

/// The key paths present in an encrypted document (no values).
pub trait KeyIndex {
    /// Ok if `key` (`a/b`, non-empty) names a string leaf.
    fn check(&self, key: &str) -> Result<(), KeyError>;
}

/// A decrypted document.
pub trait Plaintext {
    /// The string at `key` (`a/b`, non-empty), as bytes. Only for yaml and json.
    fn leaf(&self, key: &str) -> Result<Zeroizing<Vec<u8>>, KeyError>;
    /// The whole file as sops would emit it in its own format; for binary the raw `data` bytes.
    fn whole(&self) -> Result<Zeroizing<Vec<u8>>, FileError>;
}

/// Parses and decrypts sops files.
pub trait SecretFiles {
    /// Parses the encrypted `bytes` of `file` as `format` without decrypting.
    fn inspect(
        &mut self,
        file: &Path,
        bytes: &[u8],
        format: Format,
    ) -> Result<Box<dyn KeyIndex>, FileError>;
    /// Decrypts (checking the MAC) the encrypted `bytes` of `file` as `format`.
    fn decrypt(
        &mut self,
        file: &Path,
        bytes: &[u8],
        format: Format,
    ) -> Result<Box<dyn Plaintext>, FileError>;
}
