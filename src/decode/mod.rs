//! Decoding a source: detecting what it is (sops file in one of five formats, age file, or
//! plaintext), loading identities, and decrypting sops files and age files into a [`Document`].
//!
//! This is the library API that `decrypt`, `provision` and `install` build on:
//! * [`detect`] says what a file is;
//! * [`Identities::load`] gathers the identities of the contract;
//! * [`decrypt`] opens a sops file (data key via age, Shamir-combined for key groups, every
//!   value decrypted, MAC verified) into a [`Document`]; [`decrypt_age`] opens an age file;
//! * [`Document`] gives one leaf by sops-nix key path, an `--extract` result, a whole-file
//!   rendering in any format, and its top-level pairs.

pub mod agefile;
mod config;

mod document;
pub mod encrypt;

pub mod formats;
pub mod identities;
pub mod sops;
mod store;

use zeroize::Zeroizing;

pub use document::{Document, PathPart, parse_extract};
pub use formats::{Format, FormatError};
pub use identities::{Identities, Sources};
pub use store::{Loaded, load_encrypted, load_plain};

use crate::source::Origin;
use agefile::AgeError;
use sops::TreeError;
use sops::metadata::MetadataError;
use sops::shamir::ShamirError;

/// What a source file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A sops-encrypted file in this format.
    Sops(Format),
    /// An age file (binary or armored).
    Age,
    /// Anything else: plaintext.
    Plain,
}

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
        crate::bounded::list(v, ", ")
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
        .take(crate::bounded::ITEMS)
        .map(|n| {
            format!(
                "\n  note: {}",
                crate::bounded::clip(n, crate::bounded::ITEM_CHARS)
            )
        })
        .collect();
    if v.len() > crate::bounded::ITEMS {
        out.push_str(&format!(
            "\n  note: and {} more",
            v.len() - crate::bounded::ITEMS
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

/// Says what `bytes` is: an age file (by its header), a sops file (by its metadata, in the
/// format the file name implies or, for names sops would treat as binary, by content), or
/// plaintext.
pub fn detect(origin: &Origin, bytes: &[u8]) -> Kind {
    let t = &bytes[bytes.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    if t.starts_with(b"age-encryption.org/") || t.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
    {
        return Kind::Age;
    }
    let by_name = match origin {
        Origin::File(p) => Format::from_path(p),
        Origin::Stdin => Format::Binary,
    };
    if has_metadata(bytes, by_name) {
        return Kind::Sops(by_name);
    }
    if by_name == Format::Binary {
        for f in [Format::Json, Format::Yaml, Format::Dotenv, Format::Ini] {
            if has_metadata(bytes, f) {
                return Kind::Sops(f);
            }
        }
    }
    Kind::Plain
}

fn has_metadata(bytes: &[u8], f: Format) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    match f {
        Format::Json | Format::Binary => {
            text.trim_start().starts_with('{')
                && text.contains("\"sops\"")
                && text.contains("\"mac\"")
        }
        Format::Yaml => text
            .lines()
            .any(|l| l == "sops:" || l.starts_with("sops:") && l[5..].trim().is_empty()),
        Format::Dotenv => text
            .lines()
            .any(|l| l.starts_with("sops_mac=") || l.starts_with("sops_version=")),
        Format::Ini => text.lines().any(|l| l.trim() == "[sops]"),
    }
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
        sops::decrypt_tree(&mut loaded.branches, &loaded.metadata, key).map_err(tree_err)?;
    if !opts.ignore_mac {
        sops::verify_mac(&loaded.metadata, key, &computed).map_err(tree_err)?;
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
