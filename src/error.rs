//! The one place where errors become exit codes.
//!
//! Every module has its own error enum (what went wrong at that stage); [`Error`] wraps them and
//! [`Error::exit_code`] maps each variant to the contract's table (`docs/contract.md`,
//! "Exit codes"). No other code chooses an exit code. Messages carry paths, line numbers,
//! recipients and key types, never key material or plaintext.

use crate::credentials::CredentialsError;
use crate::hostkey::KeyError;
use crate::install::InstallError;
use crate::install::error::Class as InstallClass;
use crate::material::MaterialError;
use crate::mint::MintError;
use crate::sink::SinkError;
use crate::sops::DecodeError;
use crate::sops::edit::ChangeError;
use crate::sops::encrypt::EncryptError;
use crate::sops::identities::IdentityError;
use crate::source::SourceError;
use crate::state::{Missing, StateError};
use crate::tailscaled::TailscaledError;

/// The exit codes of the contract.
pub mod code {
    /// Success.
    pub const OK: u8 = 0;
    /// Unexpected internal error.
    pub const INTERNAL: u8 = 1;
    /// `status`: a last run failed, or nothing is recorded where it was asked to look.
    pub const UNHEALTHY: u8 = 1;
    /// Usage error (bad flags).
    pub const USAGE: u8 = 2;
    /// Bad input data: malformed sops/age/env/ssh key, MAC mismatch, no usable material.
    pub const DATA: u8 = 65;
    /// Input file missing or unreadable.
    pub const NO_INPUT: u8 = 66;
    /// Cannot create or write the output.
    pub const CANT_CREATE: u8 = 73;
    /// Temporary failure: network, timeout, 429, 5xx after retries.
    pub const TEMP_FAIL: u8 = 75;
    /// Permission: no identity can decrypt, API rejected the credentials.
    pub const NO_PERM: u8 = 77;
    /// Configuration: bad option values, non-https API URL, tags not permitted.
    pub const CONFIG: u8 = 78;
}

/// Any error a command can end with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading an input.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Parsing or converting an ssh key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// An explicit identity file (`-i`) that cannot be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// Writing an output file.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The state directory.
    #[error(transparent)]
    State(#[from] StateError),
    /// Classifying decrypted material.
    #[error(transparent)]
    Material(#[from] MaterialError),
    /// Finding the API credentials.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// Minting / the Tailscale API.
    #[error(transparent)]
    Mint(#[from] MintError),
    /// Writing to standard output failed (other than a closed pipe).
    #[error("cannot write to standard output: {0}")]
    Stdout(std::io::Error),
    /// Decoding a sops/age file.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A bad option value (exit 78).
    #[error("{0}")]
    Config(String),
    /// No state recorded for a name `revoke` was asked about (exit 66).
    #[error("{0}")]
    NoState(String),
    /// `status`: no state directory, or no record under the name asked about (exit 1).
    #[error(transparent)]
    Missing(#[from] Missing),
    /// `install` (manifest, sops files, generations, units).
    #[error(transparent)]
    Install(#[from] InstallError),
    /// Encrypting a sops file.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
    /// Asking tailscaled's LocalAPI (`revoke --after-join`).
    #[error(transparent)]
    Tailscaled(#[from] TailscaledError),
    /// A flag combination clap cannot express.
    #[error("{0}")]
    Usage(String),
    /// `edit` / `set` / `unset`: the change cannot be applied.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// `edit`: the editor (missing, a bad `$EDITOR`, a failed run) or its private directory.
    #[error("{0}")]
    Editor(String),
    /// `edit`: the private directory for the plaintext cannot be made (exit 73).
    #[error("{0}")]
    EditorTemp(String),
}

impl Error {
    /// The contract's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Source(e) => source_code(e),
            Error::Credentials(e) => credentials_code(e),
            Error::Key(e) => key_code(e),
            Error::Identity(e) => match e {
                IdentityError::Source(s) => source_code(s),
                IdentityError::Key(k) => key_code(k),
                e if e.is_permission() => code::NO_PERM,
                _ => code::DATA,
            },
            Error::Sink(_) | Error::Stdout(_) => code::CANT_CREATE,
            Error::State(e) => match e {
                StateError::BadName { .. } => code::CONFIG,
                StateError::Corrupt { .. } => code::DATA,
                StateError::Unreadable { .. } => code::NO_INPUT,
                StateError::Io { .. } | StateError::NotRegular { .. } | StateError::Write(_) => {
                    code::CANT_CREATE
                }
            },
            Error::Material(_) => code::DATA,
            Error::Mint(e) => match e {
                // Worth trying again later (systemd may restart the unit). A garbled 2xx reply
                // is counted here too: it is retried, then reported as temporary.
                MintError::Temporary { .. }
                | MintError::Deadline { .. }
                | MintError::Unsettled { .. }
                | MintError::Tls { .. } => code::TEMP_FAIL,
                MintError::IdToken(c) => credentials_code(c),
                MintError::Unauthorized { .. } | MintError::Forbidden { .. } => code::NO_PERM,
                // An ID token source that refuses is a credentials problem; one that cannot be
                // found, or answers 400, is configuration.
                MintError::TokenSource {
                    status: 401 | 403, ..
                } => code::NO_PERM,
                MintError::TokenSource { .. } | MintError::TokenSourceUrl { .. } => code::CONFIG,
                MintError::ExchangeRefused { .. } => code::CONFIG,
                // 404 means a wrong tailnet or base URL: configuration, not credentials.
                MintError::InvalidOption(_)
                | MintError::InsecureUrl { .. }
                | MintError::BadUrl { .. }
                | MintError::TagsNotPermitted { .. }
                | MintError::TagsRequired { .. }
                | MintError::Refused { .. }
                | MintError::Redirect { .. }
                | MintError::Unsendable { .. }
                | MintError::NotFound { .. } => code::CONFIG,
            },
            // tailscaled absent, slow or not yet joined: worth trying again later.
            Error::Tailscaled(_) => code::TEMP_FAIL,
            Error::Usage(_) => code::USAGE,
            Error::Config(_) => code::CONFIG,
            Error::Change(_) => code::DATA,
            Error::Editor(_) => code::CONFIG,
            Error::EditorTemp(_) => code::CANT_CREATE,
            Error::NoState(_) => code::NO_INPUT,
            Error::Missing(_) => code::UNHEALTHY,
            Error::Decode(e) if e.is_permission() => code::NO_PERM,
            Error::Decode(e) if e.is_usage() => code::USAGE,
            Error::Decode(_) => code::DATA,
            Error::Install(e) => match e.class() {
                InstallClass::Read => match e.read_source() {
                    Some(SourceError::TooLarge { .. }) => code::DATA,
                    Some(SourceError::LooksLikeSecret { .. }) => code::USAGE,
                    _ => code::NO_INPUT,
                },
                InstallClass::Data => code::DATA,
                InstallClass::Config => code::CONFIG,
                InstallClass::Permission => code::NO_PERM,
                InstallClass::Write => code::CANT_CREATE,
                InstallClass::Temporary => code::TEMP_FAIL,
            },
            Error::Encrypt(e) => match e {
                EncryptError::Config { .. }
                | EncryptError::NoRecipients
                | EncryptError::Recipient(_)
                | EncryptError::Options(_) => code::CONFIG,
                EncryptError::Decode(d) if d.is_permission() => code::NO_PERM,
                EncryptError::Decode(_)
                | EncryptError::AlreadyEncrypted { .. }
                | EncryptError::Format { .. } => code::DATA,
                EncryptError::Crypto { .. } => code::INTERNAL,
            },
        }
    }
}

/// The exit code of a credentials problem (also reached through the mint of a federated
/// identity, whose ID token is read or fetched then).
fn credentials_code(e: &CredentialsError) -> u8 {
    match e {
        CredentialsError::None
        | CredentialsError::NoIdToken { .. }
        | CredentialsError::TokenSourceEnv { .. }
        | CredentialsError::NoAudience { .. } => code::CONFIG,
        CredentialsError::Source(s) => source_code(s),
        CredentialsError::Material(_) => code::DATA,
        CredentialsError::IdTokenExpired { .. } => code::NO_PERM,
    }
}

/// The exit code of a failed read.
fn source_code(e: &SourceError) -> u8 {
    match e {
        SourceError::NotFound { .. }
        | SourceError::IsDirectory { .. }
        | SourceError::Unreadable { .. } => code::NO_INPUT,
        SourceError::TooLarge { .. } => code::DATA,
        SourceError::LooksLikeSecret { .. } => code::USAGE,
    }
}

fn key_code(e: &KeyError) -> u8 {
    match e {
        KeyError::PassphraseRequired { .. } | KeyError::WrongPassphrase { .. } => code::NO_PERM,
        KeyError::NoEd25519 { .. }
        | KeyError::NotEd25519 { .. }
        | KeyError::SecurityKey { .. }
        | KeyError::Malformed { .. }
        | KeyError::InvalidPoint { .. } => code::DATA,
    }
}
