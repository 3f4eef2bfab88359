//! Loading a sops file into tree + metadata (per format, like sops's stores), and recovering
//! its data key from the age master keys (Shamir-combined across key groups).

use zeroize::Zeroizing;

use super::DecodeError;
use super::agefile::{self, AgeError};
use super::formats::{self, Format};
use super::identities::Identities;
use super::metadata::{self, Metadata};
use super::shamir;
use super::tree::{Branch, Node};
use crate::source::Origin;

/// A loaded, still encrypted sops file.
pub struct Loaded {
    /// The documents, metadata removed.
    pub branches: Vec<Branch>,
    /// The parsed metadata.
    pub metadata: Metadata,
}

fn fmt_err(origin: &Origin) -> impl Fn(formats::FormatError) -> DecodeError + '_ {
    move |source| DecodeError::Format {
        origin: origin.clone(),
        source,
    }
}

fn utf8<'a>(origin: &Origin, bytes: &'a [u8], format: Format) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(bytes).map_err(|_| DecodeError::Format {
        origin: origin.clone(),
        source: formats::syntax(format, "the file is not valid UTF-8"),
    })
}

/// Parses a plaintext file into documents (what `encrypt` reads).
pub fn load_plain(
    origin: &Origin,
    bytes: &[u8],
    format: Format,
) -> Result<Vec<Branch>, DecodeError> {
    let e = fmt_err(origin);
    match format {
        Format::Yaml => formats::yaml::load(utf8(origin, bytes, format)?).map_err(e),
        Format::Json => formats::json::load(bytes).map_err(e),
        Format::Dotenv => formats::dotenv::load(bytes).map_err(e),
        Format::Ini => formats::ini::load(bytes).map_err(e),
        Format::Binary => Ok(formats::binary::load_plain(bytes)),
    }
}

/// Parses an encrypted file and separates its metadata.
pub fn load_encrypted(
    origin: &Origin,
    bytes: &[u8],
    format: Format,
) -> Result<Loaded, DecodeError> {
    let e = fmt_err(origin);
    let not_sops = || DecodeError::NotSops {
        origin: origin.clone(),
    };
    let unflatten = |pairs: &[(String, String)]| {
        metadata::unflatten(pairs).map_err(|source| DecodeError::Metadata {
            origin: origin.clone(),
            source,
        })
    };
    let (mut branches, md_node) = match format {
        Format::Yaml | Format::Json | Format::Binary => {
            let mut branches = match format {
                Format::Yaml => formats::yaml::load(utf8(origin, bytes, format)?).map_err(e)?,
                _ => formats::json::load(bytes).map_err(e)?,
            };
            let md = branches
                .first()
                .and_then(|b| b.iter().find(|i| i.key.as_deref() == Some("sops")))
                .map(|i| i.value.clone())
                .ok_or_else(not_sops)?;
            for b in branches.iter_mut() {
                b.retain(|i| i.key.as_deref() != Some("sops"));
            }
            (branches, md)
        }
        Format::Dotenv => {
            let mut branches = formats::dotenv::load(bytes).map_err(e)?;
            let mut pairs = Vec::new();
            if let Some(b) = branches.first_mut() {
                b.retain(|i| match (&i.key, &i.value) {
                    (Some(k), Node::Str(v)) if k.starts_with("sops_") => {
                        pairs.push((k[5..].to_string(), String::from_utf8_lossy(v).into_owned()));
                        false
                    }
                    _ => true,
                });
            }
            if pairs.is_empty() {
                return Err(not_sops());
            }
            (branches, unflatten(&pairs)?)
        }
        Format::Ini => {
            let mut branches = formats::ini::load(bytes).map_err(e)?;
            let mut pairs = Vec::new();
            let mut found = false;
            if let Some(b) = branches.first_mut() {
                b.retain(|i| {
                    if i.key.as_deref() != Some("sops") || found {
                        return true;
                    }
                    found = true;
                    if let Node::Map(items) = &i.value {
                        for it in items {
                            if let (Some(k), Node::Str(v)) = (&it.key, &it.value) {
                                let v = String::from_utf8_lossy(v).replace("\\n", "\n");
                                pairs.push((k.clone(), v));
                            }
                        }
                    }
                    false
                });
            }
            if !found {
                return Err(not_sops());
            }
            (branches, unflatten(&pairs)?)
        }
    };
    let metadata = Metadata::parse(&md_node).map_err(|source| DecodeError::Metadata {
        origin: origin.clone(),
        source,
    })?;
    if format == Format::Binary {
        // The binary store keeps only `data`.
        for b in branches.iter_mut() {
            b.retain(|i| i.key.is_some());
        }
    }
    Ok(Loaded { branches, metadata })
}

/// Recovers the 32-byte data key.
pub fn data_key(
    origin: &Origin,
    md: &Metadata,
    ids: &Identities,
) -> Result<Zeroizing<[u8; 32]>, DecodeError> {
    let mut parts: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut notes = Vec::new();
    for (gi, g) in md.groups.iter().enumerate() {
        let mut got = None;
        for k in &g.age {
            match agefile::open(ids, k.enc.as_bytes()) {
                Ok(p) => {
                    got = Some(p);
                    break;
                }
                Err(AgeError::NoMatch) => {}
                Err(e) => notes.push(format!("age key {}: {e}", k.recipient)),
            }
        }
        if !g.others.is_empty() && got.is_none() {
            notes.push(format!(
                "key group {gi} also has {} master key(s) ({}), which tskeyctl cannot use",
                g.others.len(),
                crate::log::bounded::list(
                    &g.others
                        .iter()
                        .map(|o| o.split(' ').next().unwrap_or_default())
                        .collect::<Vec<_>>(),
                    ", "
                )
            ));
        }
        if let Some(p) = got {
            parts.push(p);
        }
    }
    let groups = md.groups.len();
    let key_bytes: Zeroizing<Vec<u8>> = if groups <= 1 {
        match parts.pop() {
            Some(p) => p,
            None => {
                return Err(DecodeError::NoIdentity {
                    origin: origin.clone(),
                    file_recipients: md.recipients(),
                    tried: ids.tried(),
                    notes,
                });
            }
        }
    } else {
        let need = if md.shamir_threshold == 0 {
            groups
        } else {
            md.shamir_threshold
        };
        if parts.len() < need || parts.is_empty() {
            if parts.is_empty() {
                return Err(DecodeError::NoIdentity {
                    origin: origin.clone(),
                    file_recipients: md.recipients(),
                    tried: ids.tried(),
                    notes,
                });
            }
            return Err(DecodeError::Threshold {
                origin: origin.clone(),
                need,
                got: parts.len(),
                file_recipients: md.recipients(),
                tried: ids.tried(),
            });
        }
        let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
        shamir::combine(&refs).map_err(|source| DecodeError::Shamir {
            origin: origin.clone(),
            source,
        })?
    };
    let arr: [u8; 32] = key_bytes
        .as_slice()
        .try_into()
        .map_err(|_| DecodeError::DataKey {
            origin: origin.clone(),
            len: key_bytes.len(),
        })?;
    Ok(Zeroizing::new(arr))
}
