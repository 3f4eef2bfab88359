//! The `sops` metadata section: reading it in any order and version, writing it in sops 3.11's
//! layout (`stores/stores.go: Metadata` struct order), flat or nested.
//!
//! Reading follows `stores.Metadata.ToInternal`: names match case-insensitively, strings are
//! accepted for numbers and booleans (INI/dotenv), `lastmodified` must be RFC3339, `version`
//! must be present and semver-like, at most one crypt rule, and the default
//! `unencrypted_suffix: _unencrypted` when none is set. Only age master keys can be opened;
//! other kinds (pgp, kms, …) are kept by name for error messages.

use regex::Regex;

use super::gofmt;
use super::rules::CryptRules;
use super::tree::{Item, Node};

/// The version whose layout `encrypt` follows.
pub const LAYOUT_VERSION: &str = "3.11.0";

/// One age master key.
#[derive(Clone, Debug, PartialEq)]
pub struct AgeKey {
    /// `age1…` or `ssh-ed25519 AAAA…` as written.
    pub recipient: String,
    /// The armored age file holding the data key (or a Shamir share).
    pub enc: String,
}

/// One key group: age keys we can try, and the other master keys by description.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyGroup {
    /// age keys.
    pub age: Vec<AgeKey>,
    /// Other master keys (`pgp 7FB8…`, `kms arn:…`), which tskeyctl cannot open.
    pub others: Vec<String>,
}

/// Parsed metadata.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// `shamir_threshold` (0 when absent).
    pub shamir_threshold: usize,
    /// Key groups (one for the flat layout).
    pub groups: Vec<KeyGroup>,
    /// `lastmodified` as written.
    pub lastmodified: String,
    /// `mac` (an `ENC[…]` string, or empty).
    pub mac: String,
    /// The crypt rule (with the default applied).
    pub rules: CryptRules,
    /// The rule as written (for re-emitting), as (name, value) pairs.
    pub rule_fields: Vec<(&'static str, String)>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
    /// `version`.
    pub version: String,
}

/// Why metadata is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// The `sops` entry is not a mapping.
    #[error("the sops metadata entry is not a mapping")]
    NotMapping,
    /// A field has the wrong type.
    #[error("sops metadata field {0:?} has the wrong type")]
    FieldType(String),
    /// `version` is missing.
    #[error("sops metadata has no version")]
    NoVersion,
    /// `version` is not semver.
    #[error("sops metadata version {0:?} is not a valid version")]
    BadVersion(String),
    /// `lastmodified` is missing or not RFC3339.
    #[error("sops metadata lastmodified {0:?} is not an RFC3339 time")]
    BadLastModified(String),
    /// More than one crypt rule.
    #[error(
        "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file"
    )]
    TooManyRules,
    /// A regex that does not compile.
    #[error("sops metadata {field} is not a valid regular expression")]
    BadRegex { field: &'static str },
    /// No master keys at all.
    #[error("no keys found in the sops metadata")]
    NoKeys,
    /// A bad `shamir_threshold`.
    #[error("sops metadata shamir_threshold is invalid")]
    BadThreshold,
    /// Flattened (dotenv / INI) metadata nesting or expanding past the limits.
    #[error(
        "sops metadata keys nest deeper than {} levels or expand to more than {} entries (sops writes 5 levels and a few hundred entries: is the file damaged?)",
        FLAT_MAX_DEPTH,
        FLAT_MAX_NODES
    )]
    FlatTooLarge,
}

fn field<'a>(items: &'a [Item], name: &str) -> Option<&'a Node> {
    items
        .iter()
        .find(|i| {
            i.key
                .as_deref()
                .is_some_and(|k| k.eq_ignore_ascii_case(name))
        })
        .map(|i| &i.value)
}

fn string(items: &[Item], name: &str) -> Result<Option<String>, MetadataError> {
    match field(items, name) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Str(b)) => String::from_utf8(b.clone())
            .map(Some)
            .map_err(|_| MetadataError::FieldType(name.into())),
        Some(Node::Int(i)) => Ok(Some(i.to_string())),
        Some(Node::Float(f)) => Ok(Some(gofmt::format_f(*f))),
        Some(Node::Bool(b)) => Ok(Some(b.to_string())),
        Some(Node::Time(t)) => Ok(Some(t.clone())),
        Some(_) => Err(MetadataError::FieldType(name.into())),
    }
}

fn list<'a>(items: &'a [Item], name: &str) -> Result<Vec<&'a [Item]>, MetadataError> {
    match field(items, name) {
        None | Some(Node::Null) => Ok(Vec::new()),
        Some(Node::Seq(v)) => v
            .iter()
            .filter(|n| !matches!(n, Node::Comment(_)))
            .map(|n| match n {
                Node::Map(m) => Ok(m.as_slice()),
                _ => Err(MetadataError::FieldType(name.into())),
            })
            .collect(),
        Some(_) => Err(MetadataError::FieldType(name.into())),
    }
}

/// Other master key kinds and the field naming each.
const OTHER_KINDS: &[(&str, &str)] = &[
    ("kms", "arn"),
    ("gcp_kms", "resource_id"),
    ("hckms", "key_id"),
    ("azure_kv", "vault_url"),
    ("hc_vault", "vault_address"),
    ("pgp", "fp"),
];

fn group(items: &[Item]) -> Result<KeyGroup, MetadataError> {
    let mut g = KeyGroup::default();
    for (kind, id) in OTHER_KINDS {
        for k in list(items, kind)? {
            let name = string(k, id)?.unwrap_or_default();
            g.others.push(format!("{kind} {name}"));
        }
    }
    for k in list(items, "age")? {
        g.age.push(AgeKey {
            recipient: string(k, "recipient")?
                .unwrap_or_default()
                .trim()
                .to_string(),
            enc: string(k, "enc")?.unwrap_or_default(),
        });
    }
    Ok(g)
}

/// `version` must be semver (or start with `1.`, the python era).
pub fn valid_version(v: &str) -> bool {
    if v.starts_with("1.") {
        return true;
    }
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

const RULE_NAMES: [&str; 6] = [
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
];

/// Builds [`CryptRules`] from (name, value) pairs; errors on a bad regex or more than one rule.
pub fn rules_from(fields: &[(&'static str, String)]) -> Result<CryptRules, MetadataError> {
    let mut r = CryptRules::default();
    let re =
        |field: &'static str, v: &str| Regex::new(v).map_err(|_| MetadataError::BadRegex { field });
    for (name, v) in fields {
        match *name {
            "unencrypted_suffix" => r.unencrypted_suffix = Some(v.clone()),
            "encrypted_suffix" => r.encrypted_suffix = Some(v.clone()),
            "unencrypted_regex" => r.unencrypted_regex = Some(re(name, v)?),
            "encrypted_regex" => r.encrypted_regex = Some(re(name, v)?),
            "unencrypted_comment_regex" => r.unencrypted_comment_regex = Some(re(name, v)?),
            "encrypted_comment_regex" => r.encrypted_comment_regex = Some(re(name, v)?),
            _ => {}
        }
    }
    if r.count() > 1 {
        return Err(MetadataError::TooManyRules);
    }
    Ok(r)
}

impl Metadata {
    /// Reads the `sops` node.
    pub fn parse(node: &Node) -> Result<Metadata, MetadataError> {
        let Node::Map(items) = node else {
            return Err(MetadataError::NotMapping);
        };
        let version = string(items, "version")?.ok_or(MetadataError::NoVersion)?;
        if !valid_version(&version) {
            return Err(MetadataError::BadVersion(
                version.chars().take(40).collect(),
            ));
        }
        let lastmodified = string(items, "lastmodified")?.unwrap_or_default();
        if gofmt::parse_time(&lastmodified, true).is_none() {
            return Err(MetadataError::BadLastModified(
                lastmodified.chars().take(40).collect(),
            ));
        }
        let mut rule_fields = Vec::new();
        for name in RULE_NAMES {
            if let Some(v) = string(items, name)?.filter(|v| !v.is_empty()) {
                rule_fields.push((name, v));
            }
        }
        let rules = rules_from(&rule_fields)?.with_default();
        let mac_only_encrypted = match string(items, "mac_only_encrypted")? {
            None => false,
            Some(s) => gofmt::parse_bool(&s)
                .ok_or(MetadataError::FieldType("mac_only_encrypted".into()))?,
        };
        let shamir_threshold = match string(items, "shamir_threshold")? {
            None => 0,
            Some(s) => s.parse().map_err(|_| MetadataError::BadThreshold)?,
        };
        let mut groups = Vec::new();
        let kg = list(items, "key_groups")?;
        if kg.is_empty() {
            groups.push(group(items)?);
        } else {
            for g in kg {
                groups.push(group(g)?);
            }
        }
        if groups
            .iter()
            .all(|g| g.age.is_empty() && g.others.is_empty())
        {
            return Err(MetadataError::NoKeys);
        }
        Ok(Metadata {
            shamir_threshold,
            groups,
            lastmodified,
            mac: string(items, "mac")?.unwrap_or_default(),
            rules,
            rule_fields,
            mac_only_encrypted,
            version,
        })
    }

    /// The MAC's AAD: `lastmodified` re-formatted as RFC3339 (fractional seconds dropped).
    pub fn mac_aad(&self) -> String {
        gofmt::parse_time(&self.lastmodified, true)
            .map(|t| t.rfc3339())
            .unwrap_or_else(|| self.lastmodified.clone())
    }

    /// Every recipient in the file, for "nothing opened it" messages.
    pub fn recipients(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(|g| {
                g.age
                    .iter()
                    .map(|a| a.recipient.clone())
                    .chain(g.others.iter().cloned())
            })
            .collect()
    }

    /// The metadata as a tree node in sops 3.11's struct order (YAML/JSON layout). `json`:
    /// an empty `hc_vault` of a key group is `null` in JSON and `[]` in YAML.
    pub fn to_node(&self, json: bool) -> Node {
        let mut m = Vec::new();
        let age_list = |keys: &[AgeKey]| {
            Node::Seq(
                keys.iter()
                    .map(|k| {
                        Node::Map(vec![
                            Item::pair("recipient", Node::str(k.recipient.clone())),
                            Item::pair("enc", Node::str(k.enc.clone())),
                        ])
                    })
                    .collect(),
            )
        };
        if self.shamir_threshold > 0 {
            m.push(Item::pair(
                "shamir_threshold",
                Node::Int(self.shamir_threshold as i64),
            ));
        }
        if self.groups.len() > 1 {
            let gs = self
                .groups
                .iter()
                .map(|g| {
                    Node::Map(vec![
                        Item::pair(
                            "hc_vault",
                            if json {
                                Node::Null
                            } else {
                                Node::Seq(Vec::new())
                            },
                        ),
                        Item::pair("age", age_list(&g.age)),
                    ])
                })
                .collect();
            m.push(Item::pair("key_groups", Node::Seq(gs)));
        } else if let Some(g) = self.groups.first().filter(|g| !g.age.is_empty()) {
            m.push(Item::pair("age", age_list(&g.age)));
        }
        m.push(Item::pair(
            "lastmodified",
            Node::str(self.lastmodified.clone()),
        ));
        m.push(Item::pair("mac", Node::str(self.mac.clone())));
        for (name, v) in &self.rule_fields {
            m.push(Item::pair(*name, Node::str(v.clone())));
        }
        if self.mac_only_encrypted {
            m.push(Item::pair("mac_only_encrypted", Node::Bool(true)));
        }
        m.push(Item::pair("version", Node::str(self.version.clone())));
        Node::Map(m)
    }

    /// The metadata flattened like sops's dotenv/INI stores (`age__list_0__map_enc`, …),
    /// sorted by key, empty lists omitted. Values are strings.
    pub fn flatten(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten_into(&mut out, "", &self.to_node(true));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

fn flatten_into(out: &mut Vec<(String, String)>, prefix: &str, n: &Node) {
    match n {
        Node::Map(items) => {
            for it in items {
                if let Some(k) = &it.key {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}__map_{k}")
                    };
                    flatten_into(out, &p, &it.value);
                }
            }
        }
        Node::Seq(v) => {
            for (i, e) in v.iter().enumerate() {
                flatten_into(out, &format!("{prefix}__list_{i}"), e);
            }
        }
        Node::Str(b) => out.push((prefix.into(), String::from_utf8_lossy(b).into_owned())),
        Node::Int(i) => out.push((prefix.into(), i.to_string())),
        Node::Bool(b) => out.push((prefix.into(), b.to_string())),
        _ => {}
    }
}

/// Deepest flattened metadata key accepted (sops writes at most 5 levels:
/// `key_groups__list_0__age__list_0__enc`).
const FLAT_MAX_DEPTH: usize = 16;
/// Most keys plus nodes (entries and list padding) flattened metadata may expand to. Real
/// metadata has a few hundred; the bound also keeps the linear key lookups at most quadratic
/// in it (10⁸ short comparisons) however many `sops_…` lines a file repeats.
const FLAT_MAX_NODES: usize = 10_000;

/// Rebuilds the nested metadata node from flattened pairs (dotenv `sops_…` keys without the
/// prefix, INI `[sops]` keys). Depth, key count and expansion are bounded (a key like
/// `a__list_9999__list_9999…` would otherwise allocate ~10⁴ nodes per 11 input bytes, and a
/// deep `__map_` chain would recurse without limit).
pub fn unflatten(pairs: &[(String, String)]) -> Result<Node, MetadataError> {
    let mut root = Node::Map(Vec::new());
    let mut budget = FLAT_MAX_NODES;
    for (k, v) in pairs {
        let mut segs: Vec<Seg> = Vec::new();
        let mut rest = k.as_str();
        let first_end = next_sep(rest).unwrap_or(rest.len());
        segs.push(Seg::Key(rest[..first_end].to_string()));
        rest = &rest[first_end..];
        while !rest.is_empty() {
            let (seg, tail) = if let Some(t) = rest.strip_prefix("__map_") {
                let end = next_sep(t).unwrap_or(t.len());
                (Seg::Key(t[..end].to_string()), &t[end..])
            } else if let Some(t) = rest.strip_prefix("__list_") {
                let end = next_sep(t).unwrap_or(t.len());
                (
                    Seg::Index(t[..end].parse().unwrap_or(usize::MAX)),
                    &t[end..],
                )
            } else {
                break;
            };
            segs.push(seg);
            if segs.len() > FLAT_MAX_DEPTH {
                return Err(MetadataError::FlatTooLarge);
            }
            rest = tail;
        }
        charge(&mut budget, 1)?;
        insert(&mut root, &segs, Node::str(v.clone()), &mut budget)?;
    }
    Ok(root)
}

enum Seg {
    Key(String),
    Index(usize),
}

/// Where the next `__map_` / `__list_` separator starts. One forward scan that stops at the
/// first match, so splitting a whole key is linear (searching the rest of the key for each
/// separator kind was quadratic).
fn next_sep(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len()).find(|&i| b[i..].starts_with(b"__map_") || b[i..].starts_with(b"__list_"))
}

fn charge(budget: &mut usize, n: usize) -> Result<(), MetadataError> {
    *budget = budget.checked_sub(n).ok_or(MetadataError::FlatTooLarge)?;
    Ok(())
}

fn insert(
    node: &mut Node,
    segs: &[Seg],
    value: Node,
    budget: &mut usize,
) -> Result<(), MetadataError> {
    let Some((first, rest)) = segs.split_first() else {
        *node = value;
        return Ok(());
    };
    match first {
        Seg::Key(k) => {
            if !matches!(node, Node::Map(_)) {
                *node = Node::Map(Vec::new());
            }
            if let Node::Map(items) = node {
                let pos = match items.iter().position(|i| i.key.as_deref() == Some(k)) {
                    Some(p) => p,
                    None => {
                        charge(budget, 1)?;
                        items.push(Item::pair(k.clone(), Node::Null));
                        items.len() - 1
                    }
                };
                insert(&mut items[pos].value, rest, value, budget)?;
            }
        }
        Seg::Index(i) => {
            if *i > 10_000 {
                return Ok(());
            }
            if !matches!(node, Node::Seq(_)) {
                *node = Node::Seq(Vec::new());
            }
            if let Node::Seq(v) = node {
                if v.len() <= *i {
                    charge(budget, *i + 1 - v.len())?;
                }
                while v.len() <= *i {
                    v.push(Node::Null);
                }
                insert(&mut v[*i], rest, value, budget)?;
            }
        }
    }
    Ok(())
}
