//! The sops engine: everything tskeyctl knows about sops files, and the age keys they use.
//!
//! * [`formats`] loads and emits the five stores byte for byte like sops 3.11 ([`gofmt`] emulates
//!   Go's number and string formatting); [`tree`] is the document they share;
//! * [`metadata`], [`rules`] (the crypt rule), [`value`] (`ENC[…]` AES-GCM), [`mac`], [`shamir`]
//!   and `crypt` (the walk that decrypts or encrypts a tree) are the engine proper;
//! * [`identities`] gathers the age identities to try and [`agefile`] opens and seals age data
//!   (a data key, or a whole age file);
//! * [`decrypt`] opens a sops file into a [`Document`] (data key via age, Shamir-combined for key
//!   groups, every value decrypted, MAC verified); [`decrypt_age`] opens an age file;
//! * [`encrypt`] writes sops files like `sops encrypt` / `updatekeys`, with the `.sops.yaml`
//!   creation rules of `config`; [`edit`] changes an encrypted file with its own data key
//!   (`sops edit` / `set` / `unset`).
//!
//! What a source *is*, and which of these to call, is `crate::decode`'s business.

pub mod agefile;
mod config;
pub mod config_edit;
mod crypt;
mod document;
pub mod edit;
pub mod encrypt;
pub mod formats;
pub mod gofmt;
pub mod identities;
mod keypaths;
pub mod mac;
pub mod metadata;
pub mod rules;
pub mod shamir;
mod store;
pub mod tree;
pub mod value;

use zeroize::Zeroizing;

pub use crypt::TreeError;
pub use document::{Document, PathPart, parse_extract};
pub use formats::{Format, FormatError};
pub use identities::{Identities, Sources};
pub use store::{Loaded, load_encrypted, load_plain};

use crate::source::Origin;
use agefile::AgeError;
use metadata::MetadataError;
use shamir::ShamirError;

/// Why decoding failed. Exit codes: [`DecodeError::is_permission`] → 77, else 65.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No sops metadata.
    #[error(
        "{origin}: not a sops file: no sops metadata found (is it encrypted? is --input-type right?)"
    )]
    NotSops { origin: Origin },
    /// A syntax or structure problem.
    #[error("{origin}: {source}")]
    Format { origin: Origin, source: FormatError },
    /// Bad metadata.
    #[error("{origin}: {source}")]
    Metadata {
        origin: Origin,
        source: MetadataError,
    },
    /// A value, the MAC, or the tree.
    #[error("{origin}: {source}")]
    Tree { origin: Origin, source: TreeError },
    /// No identity opened the data key / the age file.
    #[error("{origin}: no identity can decrypt this file (encrypted for another host or key?)\n  file recipients: {}\n  identities tried: {}{}",
        list(.file_recipients), tried_list(.tried), render_notes(.notes))]
    NoIdentity {
        origin: Origin,
        file_recipients: Vec<String>,
        tried: Vec<String>,
        notes: Vec<String>,
    },
    /// Key groups recovered fewer shares than the threshold.
    #[error("{origin}: the file is split into key groups with a Shamir threshold of {need}, but only {got} group(s) could be opened\n  file recipients: {}\n  identities tried: {}",
        list(.file_recipients), list(.tried))]
    Threshold {
        origin: Origin,
        need: usize,
        got: usize,
        file_recipients: Vec<String>,
        tried: Vec<String>,
    },
    /// Shamir shares do not combine.
    #[error("{origin}: key-group shares do not combine: {source}")]
    Shamir { origin: Origin, source: ShamirError },
    /// An age file or an age `enc` is malformed.
    #[error("{origin}: {source}")]
    Age { origin: Origin, source: AgeError },
    /// A data key of the wrong size.
    #[error("{origin}: the decrypted data key has {len} bytes, expected 32")]
    DataKey { origin: Origin, len: usize },
    /// `--extract`/`--key` problems.
    #[error("{origin}: {reason}")]
    Extract { origin: Origin, reason: String },
    /// `--extract` syntax.
    #[error("error parsing --extract path: {0}")]
    ExtractSyntax(String),
    /// A MAC problem reported by a command that has no `--ignore-mac` (provision, install):
    /// the same finding, without naming a flag the command lacks.
    #[error("{origin}: {}", mac_problem(.source))]
    Mac { origin: Origin, source: TreeError },
}

fn mac_problem(e: &TreeError) -> &'static str {
    match e {
        TreeError::NoMac => "the file has no MAC",
        _ => {
            "MAC mismatch: the file's content was changed after it was encrypted (values \
reordered, added or removed)"
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        crate::log::bounded::list(v, ", ")
    }
}

/// The identities tried ([`Identities::tried`] says what would have provided one when none
/// was loaded).
fn tried_list(v: &[String]) -> String {
    list(v)
}

/// At most a few notes (a hostile file can make one per stanza), each clipped.
fn render_notes(v: &[String]) -> String {
    let mut out: String = v
        .iter()
        .take(crate::log::bounded::ITEMS)
        .map(|n| {
            format!(
                "\n  note: {}",
                crate::log::bounded::clip(n, crate::log::bounded::ITEM_CHARS)
            )
        })
        .collect();
    if v.len() > crate::log::bounded::ITEMS {
        out.push_str(&format!(
            "\n  note: and {} more",
            v.len() - crate::log::bounded::ITEMS
        ));
    }
    out
}

impl DecodeError {
    /// True for "no identity opens it" (exit 77).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            DecodeError::NoIdentity { .. } | DecodeError::Threshold { .. }
        )
    }
    /// For commands without `--ignore-mac`: a MAC error that does not suggest it.
    pub fn without_ignore_mac_hint(self) -> DecodeError {
        match self {
            DecodeError::Tree {
                origin,
                source: source @ (TreeError::MacMismatch | TreeError::NoMac),
            } => DecodeError::Mac { origin, source },
            other => other,
        }
    }

    /// True for bad `--extract` syntax (usage).
    pub fn is_usage(&self) -> bool {
        matches!(self, DecodeError::ExtractSyntax(_))
    }
}

/// Options for [`decrypt`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DecryptOptions {
    /// Skip MAC verification (the caller warns).
    pub ignore_mac: bool,
}

/// Decrypts a sops file with `ids`.
pub fn decrypt(
    origin: &Origin,
    bytes: &[u8],
    format: Format,
    ids: &Identities,
    opts: DecryptOptions,
) -> Result<Document, DecodeError> {
    let loaded = load_encrypted(origin, bytes, format)?;
    let key = store::data_key(origin, &loaded.metadata, ids)?;
    finish(origin, loaded, &key, format, opts)
}

/// Decrypts a sops file with a data key obtained elsewhere (e.g. recorded from a PGP key,
/// which tskeyctl does not implement).
pub fn decrypt_with_data_key(
    origin: &Origin,
    bytes: &[u8],
    format: Format,
    key: &[u8; 32],
    opts: DecryptOptions,
) -> Result<Document, DecodeError> {
    let loaded = load_encrypted(origin, bytes, format)?;
    finish(origin, loaded, key, format, opts)
}

fn finish(
    origin: &Origin,
    mut loaded: Loaded,
    key: &[u8; 32],
    format: Format,
    opts: DecryptOptions,
) -> Result<Document, DecodeError> {
    let tree_err = |source| DecodeError::Tree {
        origin: origin.clone(),
        source,
    };
    let computed =
        crypt::decrypt_tree(&mut loaded.branches, &loaded.metadata, key).map_err(tree_err)?;
    if !opts.ignore_mac {
        crypt::verify_mac(&loaded.metadata, key, &computed).map_err(tree_err)?;
    }
    Ok(Document::new(
        origin.clone(),
        std::mem::take(&mut loaded.branches),
        format,
    ))
}

/// Decrypts a plain age file.
pub fn decrypt_age(
    origin: &Origin,
    bytes: &[u8],
    ids: &Identities,
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    agefile::open(ids, bytes).map_err(|e| match e {
        AgeError::NoMatch => DecodeError::NoIdentity {
            origin: origin.clone(),
            file_recipients: agefile::stanza_summary(&armor_decoded(bytes)),
            tried: ids.tried(),
            notes: Vec::new(),
        },
        source => DecodeError::Age {
            origin: origin.clone(),
            source,
        },
    })
}

fn armor_decoded(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    // Enough for the header of any age file tskeyctl accepts (each stanza is ~100 bytes), so
    // "and N more" counts every recipient.
    let mut r = age::armor::ArmoredReader::new(bytes).take(1 << 20);
    let _ = r.read_to_end(&mut out);
    out
}
