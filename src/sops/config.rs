//! `.sops.yaml` creation rules: the nearest config (from the working directory upward, like
//! sops), the first rule whose `path_regex` matches the file path relative to the config's
//! directory, and what it says: age recipients (flat or `key_groups`), `shamir_threshold`, the
//! crypt rule, `mac_only_encrypted`.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::formats::yaml;
use super::tree::{Item, Node};

/// What to encrypt to and how: from `--age` or a `.sops.yaml` creation rule.
#[derive(Clone, Debug, Default)]
pub struct Spec {
    /// Recipients per key group (one group: no Shamir).
    pub groups: Vec<Vec<String>>,
    /// `shamir_threshold` (0: all groups).
    pub shamir_threshold: usize,
    /// At most one crypt rule: (name, value).
    pub rule_fields: Vec<(&'static str, String)>,
    /// `mac_only_encrypted`.
    pub mac_only_encrypted: bool,
}

/// A `.sops.yaml` that cannot be used (bad YAML, no matching rule, a key type tskeyctl lacks).
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct ConfigError {
    /// The config file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// Finds `.sops.yaml` from `start` upward (at most 100 levels).
pub fn find(start: &Path) -> Option<PathBuf> {
    let mut dir = Some(start);
    for _ in 0..100 {
        let d = dir?;
        for name in [".sops.yaml", ".sops.yml"] {
            let p = d.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
        dir = d.parent();
    }
    None
}

fn cfg_err(path: &Path, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn get<'a>(items: &'a [Item], k: &str) -> Option<&'a Node> {
    items
        .iter()
        .find(|i| i.key.as_deref() == Some(k))
        .map(|i| &i.value)
}

fn text(n: &Node) -> Option<String> {
    match n {
        Node::Str(b) => String::from_utf8(b.clone()).ok(),
        Node::Int(i) => Some(i.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A key field: a comma-separated string or a list of strings.
fn recipients(path: &Path, n: Option<&Node>) -> Result<Vec<String>, ConfigError> {
    let mut out = Vec::new();
    match n {
        None | Some(Node::Null) => {}
        Some(Node::Seq(v)) => {
            for e in v {
                if let Node::Comment(_) = e {
                    continue;
                }
                let s = text(e).ok_or_else(|| cfg_err(path, "age entries must be strings"))?;
                out.extend(split(&s));
            }
        }
        Some(other) => {
            let s = text(other).ok_or_else(|| cfg_err(path, "age must be a string or a list"))?;
            out.extend(split(&s));
        }
    }
    Ok(out)
}

fn split(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

fn present(n: &Node) -> bool {
    match n {
        Node::Null => false,
        Node::Seq(v) => !v.is_empty(),
        Node::Str(b) => !b.is_empty(),
        _ => true,
    }
}

const UNSUPPORTED: &[&str] = &[
    "pgp",
    "kms",
    "gcp_kms",
    "azure_keyvault",
    "hc_vault_transit_uri",
    "hckms",
];

/// Loads the creation rule for `file` (an absolute path) from `config`.
pub fn rule_for(config: &Path, file: &Path) -> Result<Spec, ConfigError> {
    let bytes = std::fs::read(config).map_err(|e| cfg_err(config, e.to_string()))?;
    let text_s = std::str::from_utf8(&bytes).map_err(|_| cfg_err(config, "not UTF-8"))?;
    let docs = yaml::load(text_s).map_err(|e| cfg_err(config, e.to_string()))?;
    let root = docs.into_iter().next().unwrap_or_default();
    let Some(Node::Seq(rules)) = get(&root, "creation_rules") else {
        return Err(cfg_err(config, "no creation_rules"));
    };
    let dir = config
        .parent()
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()))
        .unwrap_or_default();
    let file_s = file.to_string_lossy();
    let prefix = format!("{}/", dir.to_string_lossy());
    let rel = file_s.strip_prefix(&prefix).unwrap_or(&file_s);
    for r in rules {
        let Node::Map(items) = r else { continue };
        if let Some(re) = get(items, "path_regex").and_then(text) {
            let re = Regex::new(&re)
                .map_err(|_| cfg_err(config, format!("path_regex {re:?} does not compile")))?;
            if !re.is_match(rel) {
                continue;
            }
        }
        return spec_from_rule(config, items);
    }
    Err(cfg_err(
        config,
        format!("no matching creation rules found for {rel}"),
    ))
}

fn spec_from_rule(config: &Path, items: &[Item]) -> Result<Spec, ConfigError> {
    for k in UNSUPPORTED {
        if get(items, k).is_some_and(present) {
            return Err(cfg_err(
                config,
                format!(
                    "the matching rule uses {k} keys; tskeyctl encrypts to age recipients only"
                ),
            ));
        }
    }
    let mut groups = Vec::new();
    match get(items, "key_groups") {
        Some(Node::Seq(gs)) if !gs.is_empty() => {
            for g in gs {
                let Node::Map(gi) = g else { continue };
                for k in UNSUPPORTED.iter().chain(&["vault"]) {
                    if get(gi, k).is_some_and(present) {
                        return Err(cfg_err(
                            config,
                            format!(
                                "a key group uses {k} keys; tskeyctl encrypts to age recipients only"
                            ),
                        ));
                    }
                }
                groups.push(recipients(config, get(gi, "age"))?);
            }
        }
        _ => groups.push(recipients(config, get(items, "age"))?),
    }
    let shamir_threshold = match get(items, "shamir_threshold") {
        None | Some(Node::Null) => 0,
        Some(Node::Int(i)) if *i >= 0 => *i as usize,
        Some(_) => return Err(cfg_err(config, "shamir_threshold must be a number")),
    };
    let mut rule_fields = Vec::new();
    for name in [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ] {
        if let Some(v) = get(items, name).and_then(text).filter(|v| !v.is_empty()) {
            rule_fields.push((name, v));
        }
    }
    let mac_only_encrypted = matches!(get(items, "mac_only_encrypted"), Some(Node::Bool(true)));
    Ok(Spec {
        groups,
        shamir_threshold,
        rule_fields,
        mac_only_encrypted,
    })
}
