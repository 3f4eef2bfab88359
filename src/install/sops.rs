//! The real decoder behind `install`: the sops engine of `crate::sops`, with the manifest's
//! identities (`ageSshKeyPaths` → converted X25519 *and* native ssh-ed25519 identities, kept in
//! memory; `ageKeyFile`). Unlike sops-install-secrets, no `age-keys.txt` is written to the ramfs
//! and sops files with native `ssh-ed25519` recipients open too (sops-nix #824).
//!
//! `inspect` loads the encrypted tree without a key: key names are plaintext in sops, and every
//! encrypted value carries its type (`ENC[…,type:str]`), so `--check` can say "missing" or "not a
//! string" at build time.

use std::path::Path;

use zeroize::Zeroizing;

use crate::log;
use crate::sops::tree::{Item, Node};
use crate::sops::{self as engine, DecodeError, DecryptOptions, Document, Identities, Sources};
use crate::source::Origin;

use super::files::{FileError, FileProblem, Format, KeyError, KeyIndex, Plaintext, SecretFiles};
use super::{Decoder, IdentitySources, InstallError};

/// Decrypts sops files with the manifest's identities.
#[derive(Default)]
pub struct SopsDecoder {
    ids: Identities,
}

fn engine_format(f: Format) -> engine::Format {
    match f {
        Format::Yaml => engine::Format::Yaml,
        Format::Json => engine::Format::Json,
        Format::Binary => engine::Format::Binary,
        Format::Dotenv => engine::Format::Dotenv,
        Format::Ini => engine::Format::Ini,
    }
}

fn file_err(origin: &Origin) -> impl Fn(DecodeError) -> FileError + '_ {
    move |e| {
        let msg = e.to_string();
        // The decode error names the file; `InstallError::File` does too.
        let prefix = format!("{origin}: ");
        FileError {
            problem: if e.is_permission() {
                FileProblem::Undecryptable
            } else {
                FileProblem::Malformed
            },
            detail: msg.strip_prefix(&prefix).unwrap_or(&msg).to_string(),
        }
    }
}

impl Decoder for SopsDecoder {
    fn load_identities(&mut self, s: &IdentitySources) -> Result<(), InstallError> {
        let mut explicit = s.ssh_keys.clone();
        explicit.extend(s.age_key_file.iter().cloned());
        let (ids, warnings) = Identities::load_from(&Sources {
            explicit,
            ..Sources::default()
        });
        for w in warnings {
            log::warn(w);
        }
        if s.log_import && log::level() >= 0 {
            for e in ids.entries() {
                eprintln!(
                    "tskeyctl: imported {} as age key with recipient {}",
                    e.source, e.recipient
                );
            }
        }
        self.ids = ids;
        Ok(())
    }
}

impl SecretFiles for SopsDecoder {
    fn inspect(
        &mut self,
        file: &Path,
        bytes: &[u8],
        format: Format,
    ) -> Result<Box<dyn KeyIndex>, FileError> {
        let origin = Origin::File(file.to_path_buf());
        let loaded = engine::load_encrypted(&origin, bytes, engine_format(format))
            .map_err(file_err(&origin))?;
        let mut branches = loaded.branches;
        let top = if branches.is_empty() {
            Vec::new()
        } else {
            branches.swap_remove(0)
        };
        Ok(Box::new(Encrypted(top)))
    }

    fn decrypt(
        &mut self,
        file: &Path,
        bytes: &[u8],
        format: Format,
    ) -> Result<Box<dyn Plaintext>, FileError> {
        let origin = Origin::File(file.to_path_buf());
        let doc = engine::decrypt(
            &origin,
            bytes,
            engine_format(format),
            &self.ids,
            DecryptOptions::default(),
        )
        .map_err(DecodeError::without_ignore_mac_hint)
        .map_err(file_err(&origin))?;
        Ok(Box::new(Decrypted(doc, origin)))
    }
}

/// Walks `key` (`a/b/c`) through nested mappings.
fn walk<'a>(top: &'a [Item], key: &str) -> Result<&'a Node, KeyError> {
    let mut items = top;
    let mut so_far = String::new();
    let mut comps = key.split('/').peekable();
    while let Some(comp) = comps.next() {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(comp);
        let node = items
            .iter()
            .find(|i| i.key.as_deref() == Some(comp))
            .map(|i| &i.value)
            .ok_or_else(|| KeyError::NotFound {
                path: so_far.clone(),
            })?;
        if comps.peek().is_none() {
            return Ok(node);
        }
        match node {
            Node::Map(m) => items = m,
            _ => return Err(KeyError::NotADictionary { path: so_far }),
        }
    }
    Err(KeyError::NotFound { path: so_far })
}

/// The encrypted top-level mapping.
struct Encrypted(Vec<Item>);

impl KeyIndex for Encrypted {
    fn check(&self, key: &str) -> Result<(), KeyError> {
        let not_string = || KeyError::NotAString { path: key.into() };
        match walk(&self.0, key)? {
            // Encrypted values say their type; unencrypted ones (unencrypted_suffix …) are as is.
            Node::Str(b) => {
                let s = String::from_utf8_lossy(b);
                match s.strip_prefix("ENC[").and_then(|r| r.rsplit_once(",type:")) {
                    Some((_, t)) if t.trim_end_matches(']') != "str" => Err(not_string()),
                    _ => Ok(()),
                }
            }
            _ => Err(not_string()),
        }
    }
}

/// A decrypted document.
struct Decrypted(Document, Origin);

impl Plaintext for Decrypted {
    fn leaf(&self, key: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let top = self.0.branches().first().map(Vec::as_slice).unwrap_or(&[]);
        match walk(top, key)? {
            Node::Str(b) => Ok(Zeroizing::new(b.clone())),
            _ => Err(KeyError::NotAString { path: key.into() }),
        }
    }

    fn whole(&self) -> Result<Zeroizing<Vec<u8>>, FileError> {
        self.0.render(self.0.format()).map_err(file_err(&self.1))
    }
}
