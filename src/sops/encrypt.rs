//! Encrypting like sops 3.11 (`sops encrypt`, `sops updatekeys`): a fresh data key, wrapped
//! for every age recipient (Shamir-split across key groups), every selected value encrypted,
//! the MAC computed, and the file written in sops 3.11's layout (metadata in its struct order,
//! `version: 3.11.0`). Only age recipients (`age1…`, `ssh-ed25519 …`) are supported.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::agefile;
use super::config::ConfigError;
pub use super::config::Spec;
use super::crypt as engine;
use super::formats::{self, Format, FormatError};
use super::identities::{Identities, PluginUi};
use super::metadata::{self, AgeKey, KeyGroup, LAYOUT_VERSION, Metadata};
use super::tree::{Branch, Item, Node};
use super::{DecodeError, store};
use super::{shamir, value};
use crate::source::Origin;

/// Why encryption failed.
#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    /// A bad `.sops.yaml`.
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    /// No recipients configured.
    #[error(
        "no recipients: pass --age RECIPIENT[,…] or add a .sops.yaml creation rule with age keys"
    )]
    NoRecipients,
    /// A recipient that is not `age1…` or `ssh-ed25519 …` (already quoted, or described when
    /// it looks like secret material).
    #[error("invalid age recipient {0} (expected age1… or ssh-ed25519 AAAA…)")]
    Recipient(String),
    /// Bad options.
    #[error("{0}")]
    Options(String),
    /// The input is already encrypted.
    #[error(
        "{origin}: the file is already encrypted (it has a sops metadata entry); use updatekeys or decrypt it first"
    )]
    AlreadyEncrypted { origin: Origin },
    /// Parsing the input, or reading an encrypted file (updatekeys).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Emitting.
    #[error("{origin}: {source}")]
    Format { origin: Origin, source: FormatError },
    /// Encrypting a value or a key.
    #[error("{origin}: {reason}")]
    Crypto { origin: Origin, reason: String },
}

impl From<ConfigError> for EncryptError {
    fn from(e: ConfigError) -> Self {
        EncryptError::Config {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// Parses one recipient.
pub fn parse_recipient(r: &str) -> Result<Box<dyn age::Recipient + Send>, EncryptError> {
    let r = r.trim();
    // sops's rule: an `age1…` recipient with a second `1` is a plugin's (`age1<name>1…`; the
    // bech32 data of an X25519 recipient has no `1`).
    if r.starts_with("age1") && r.matches('1').count() > 1 {
        let rec: age::plugin::Recipient = r
            .parse()
            .map_err(|_| EncryptError::Recipient(format!("{r:?}")))?;
        age::plugin::RecipientPluginV1::new(rec.plugin(), std::slice::from_ref(&rec), &[], PluginUi)
            .map(|p| Box::new(p) as Box<dyn age::Recipient + Send>)
            .map_err(|_| {
                EncryptError::Recipient(format!(
                    "{r:?} (age-plugin-{} not found on PATH)",
                    rec.plugin()
                ))
            })
    } else if r.starts_with("age1") {
        r.parse::<age::x25519::Recipient>()
            .map(|x| Box::new(x) as Box<dyn age::Recipient + Send>)
            .map_err(|_| EncryptError::Recipient(format!("{r:?}")))
    } else if r.starts_with("ssh-ed25519 ") {
        r.parse::<age::ssh::Recipient>()
            .map(|x| Box::new(x) as Box<dyn age::Recipient + Send>)
            .map_err(|_| EncryptError::Recipient(format!("{r:?}")))
    } else {
        Err(EncryptError::Recipient(describe_non_recipient(r)))
    }
}

/// Quotes a string given as a recipient, unless it looks like a private key (an age identity
/// pasted where its recipient belongs): that is named, never echoed.
fn describe_non_recipient(r: &str) -> String {
    let upper = r.to_ascii_uppercase();
    // The one rule for "this looks like a secret" (tskey-…, AGE-SECRET-KEY-…, PEM, JWT), plus
    // anything naming itself a private key or secret.
    if crate::source::looks_like_secret(std::ffi::OsStr::new(r))
        || upper.starts_with("AGE-")
        || upper.contains("PRIVATE KEY")
        || upper.contains("SECRET")
    {
        "(a private key, not shown: give its public recipient, from `age-keygen -y` or \
`tskeyctl recipient`)"
            .into()
    } else {
        let shown: String = r.chars().take(80).collect();
        format!("{shown:?}")
    }
}

/// RFC3339 UTC "now" (seconds precision), like sops's `lastmodified`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

fn crypto(origin: &Origin, reason: impl std::fmt::Display) -> EncryptError {
    EncryptError::Crypto {
        origin: origin.clone(),
        reason: reason.to_string(),
    }
}

/// Wraps `data_key` for the spec's groups (splitting it when there are several).
fn wrap_keys(
    origin: &Origin,
    spec: &Spec,
    data_key: &[u8; 32],
) -> Result<Vec<KeyGroup>, EncryptError> {
    let groups: Vec<&Vec<String>> = spec.groups.iter().filter(|g| !g.is_empty()).collect();
    if groups.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let shares: Vec<Zeroizing<Vec<u8>>> = if groups.len() == 1 {
        vec![Zeroizing::new(data_key.to_vec())]
    } else {
        let t = if spec.shamir_threshold == 0 {
            groups.len()
        } else {
            spec.shamir_threshold
        };
        if t > groups.len() {
            return Err(EncryptError::Options(format!(
                "shamir_threshold {t} is larger than the number of key groups ({})",
                groups.len()
            )));
        }
        shamir::split(data_key, groups.len(), t).map_err(|e| crypto(origin, e))?
    };
    let mut out = Vec::new();
    for (g, share) in groups.iter().zip(&shares) {
        let mut kg = KeyGroup::default();
        for r in g.iter() {
            let rec = parse_recipient(r)?;
            let enc = agefile::seal_armored(&[rec], share).map_err(|e| crypto(origin, e))?;
            kg.age.push(AgeKey {
                recipient: r.trim().to_string(),
                enc,
            });
        }
        out.push(kg);
    }
    Ok(out)
}

fn threshold_for(spec: &Spec) -> usize {
    let n = spec.groups.iter().filter(|g| !g.is_empty()).count();
    if n > 1 {
        if spec.shamir_threshold == 0 {
            n
        } else {
            spec.shamir_threshold
        }
    } else {
        0
    }
}

/// Encrypts a plaintext file.
pub fn encrypt(
    origin: &Origin,
    plain: &[u8],
    in_format: Format,
    out_format: Format,
    spec: &Spec,
) -> Result<Vec<u8>, EncryptError> {
    let mut branches = store::load_plain(origin, plain, in_format)?;
    if in_format == Format::Yaml && branches.is_empty() {
        return Err(EncryptError::Options(format!(
            "{origin}: file cannot be completely empty, it must contain at least one document"
        )));
    }
    let has_sops = |b: &Branch| match in_format {
        Format::Dotenv => b
            .iter()
            .any(|i| i.key.as_deref().is_some_and(|k| k.starts_with("sops_"))),
        Format::Binary => false,
        _ => b.iter().any(|i| i.key.as_deref() == Some("sops")),
    };
    if branches.iter().any(has_sops) {
        return Err(EncryptError::AlreadyEncrypted {
            origin: origin.clone(),
        });
    }
    // sops's binary store ignores the crypt rule and mac_only_encrypted.
    let binary = in_format == Format::Binary && out_format == Format::Binary;
    let rule_fields = if binary {
        Vec::new()
    } else if spec.rule_fields.is_empty() {
        vec![("unencrypted_suffix", "_unencrypted".to_string())]
    } else {
        spec.rule_fields.clone()
    };
    if spec.rule_fields.len() > 1 {
        return Err(EncryptError::Options(
            "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex".into(),
        ));
    }
    let rules =
        metadata::rules_from(&rule_fields).map_err(|e| EncryptError::Options(e.to_string()))?;
    let mut data_key = Zeroizing::new([0u8; 32]);
    value::random(&mut *data_key).map_err(|e| crypto(origin, e))?;
    let groups = wrap_keys(origin, spec, &data_key)?;
    let mut md = Metadata {
        shamir_threshold: threshold_for(spec),
        groups,
        lastmodified: now_rfc3339(),
        mac: String::new(),
        rules: if binary {
            metadata::rules_from(&[]).map_err(|e| EncryptError::Options(e.to_string()))?
        } else {
            rules
        },
        rule_fields,
        mac_only_encrypted: spec.mac_only_encrypted && !binary,
        version: LAYOUT_VERSION.to_string(),
    };
    let mac = engine::encrypt_tree(&mut branches, &md, &data_key).map_err(|e| crypto(origin, e))?;
    let mut iv = [0u8; 32];
    value::random(&mut iv).map_err(|e| crypto(origin, e))?;
    md.mac = value::seal(&data_key, &iv, mac.as_bytes(), "str", &md.lastmodified);
    emit_encrypted(origin, branches, &md, out_format)
}

/// Re-wraps the data key of an encrypted file for `spec`'s recipients and key groups, keeping
/// every value, the MAC and `lastmodified` (sops `updatekeys`).
pub fn updatekeys(
    origin: &Origin,
    encrypted: &[u8],
    format: Format,
    ids: &Identities,
    spec: &Spec,
) -> Result<Vec<u8>, EncryptError> {
    let loaded = store::load_encrypted(origin, encrypted, format)?;
    let data_key = store::data_key(origin, &loaded.metadata, ids)?;
    let mut md = loaded.metadata;
    md.groups = wrap_keys(origin, spec, &data_key)?;
    md.shamir_threshold = threshold_for(spec);
    emit_encrypted(origin, loaded.branches, &md, format)
}

/// Writes an encrypted tree with its metadata in `format`'s sops layout.
pub fn emit_encrypted(
    origin: &Origin,
    mut branches: Vec<Branch>,
    md: &Metadata,
    format: Format,
) -> Result<Vec<u8>, EncryptError> {
    let ferr = |source| EncryptError::Format {
        origin: origin.clone(),
        source,
    };
    if branches.is_empty() {
        branches.push(Vec::new());
    }
    match format {
        Format::Yaml => {
            for b in branches.iter_mut() {
                b.push(Item::pair("sops", md.to_node(false)));
            }
            Ok(formats::yaml::emit(&branches))
        }
        Format::Json | Format::Binary => {
            branches.truncate(1);
            branches[0].push(Item::pair("sops", md.to_node(true)));
            formats::json::emit(&branches).map_err(ferr)
        }
        Format::Dotenv => {
            branches.truncate(1);
            for (k, v) in md.flatten() {
                branches[0].push(Item::pair(format!("sops_{k}"), Node::str(v)));
            }
            formats::dotenv::emit(&branches).map_err(ferr)
        }
        Format::Ini => {
            branches.truncate(1);
            let items = md
                .flatten()
                .into_iter()
                .map(|(k, v)| Item::pair(k, Node::str(v.replace('\n', "\\n"))))
                .collect();
            branches[0].push(Item::pair("sops", Node::Map(items)));
            formats::ini::emit(&branches).map_err(ferr)
        }
    }
}

/// The creation rule for `file` from the nearest `.sops.yaml` (from the working directory up),
/// or from `config` when given.
pub fn spec_for(
    config: Option<&std::path::Path>,
    file: &std::path::Path,
) -> Result<Spec, EncryptError> {
    let cfg = match config {
        Some(c) => c.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| EncryptError::Options(e.to_string()))?;
            super::config::find(&cwd).ok_or(EncryptError::NoRecipients)?
        }
    };
    let abs = if file.is_absolute() {
        file.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(file))
            .unwrap_or_else(|_| file.to_path_buf())
    };
    Ok(super::config::rule_for(&cfg, &abs)?)
}
