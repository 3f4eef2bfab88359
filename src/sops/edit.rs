//! Changing an encrypted file in place, like `sops edit`, `sops set` and `sops unset`: the file
//! is opened with its own data key, the plaintext tree is replaced or changed, and every value is
//! encrypted again with that same data key (fresh IVs, as sops does), the MAC recomputed over the
//! new plaintext and `lastmodified` set to now. The key groups and the crypt rule stay as they
//! were; only `updatekeys` changes recipients.

use zeroize::Zeroizing;

use super::document::{PathPart, render_branches};
use super::encrypt::{EncryptError, emit_encrypted, now_rfc3339};
use super::formats::{self, Format};
use super::identities::Identities;
use super::metadata::{LAYOUT_VERSION, Metadata};
use super::tree::{Branch, Item, Node, wipe_branch};
use super::{DecodeError, crypt, store, value};
use crate::source::Origin;

/// An open, decrypted sops file that can be changed and sealed again.
pub struct Editable {
    origin: Origin,
    format: Format,
    metadata: Metadata,
    key: Zeroizing<[u8; 32]>,
    branches: Vec<Branch>,
}

impl Drop for Editable {
    fn drop(&mut self) {
        for b in &mut self.branches {
            wipe_branch(b);
        }
    }
}

/// Why a `set` / `unset` index or value cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The value is not JSON (never echoed: it may be a secret).
    #[error("the value is not valid JSON (a string needs its quotes: '\"text\"')")]
    NotJson,
    /// `unset` of an index that is not there.
    #[error("{origin}: {index} not found")]
    NotFound { origin: Origin, index: String },
    /// An index that walks through a value that is neither a map nor a list.
    #[error("{origin}: {index} goes through a {kind}, not a map or a list")]
    NotContainer {
        origin: Origin,
        index: String,
        kind: &'static str,
    },
    /// The edited plaintext no longer parses (or holds sops metadata).
    #[error("{origin}: the edited file is not valid {format}: {reason}")]
    Unparsable {
        origin: Origin,
        format: Format,
        reason: String,
    },
}

fn shown(path: &[PathPart]) -> String {
    path.iter()
        .map(|p| match p {
            PathPart::Key(k) => format!("[{k:?}]"),
            PathPart::Index(i) => format!("[{i}]"),
        })
        .collect()
}

/// True when `version` is older than the layout tskeyctl writes (sops raises it on edit).
fn older_than_layout(version: &str) -> bool {
    let nums = |v: &str| -> Vec<u64> {
        v.split(['-', '+'])
            .next()
            .unwrap_or_default()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    nums(version) < nums(LAYOUT_VERSION)
}

impl Editable {
    /// Opens `bytes` (a sops file in `format`) with `ids`, verifying the MAC unless `ignore_mac`.
    pub fn open(
        origin: &Origin,
        bytes: &[u8],
        format: Format,
        ids: &Identities,
        ignore_mac: bool,
    ) -> Result<Editable, DecodeError> {
        let mut loaded = store::load_encrypted(origin, bytes, format)?;
        let key = store::data_key(origin, &loaded.metadata, ids)?;
        let tree_err = |source| DecodeError::Tree {
            origin: origin.clone(),
            source,
        };
        let computed =
            crypt::decrypt_tree(&mut loaded.branches, &loaded.metadata, &key).map_err(tree_err)?;
        if !ignore_mac {
            crypt::verify_mac(&loaded.metadata, &key, &computed).map_err(tree_err)?;
        }
        Ok(Editable {
            origin: origin.clone(),
            format,
            branches: std::mem::take(&mut loaded.branches),
            metadata: loaded.metadata,
            key,
        })
    }

    /// The plaintext as `sops edit` shows it to the editor.
    pub fn plain(&self) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
        render_branches(&self.branches, self.format)
            .map(Zeroizing::new)
            .map_err(|source| DecodeError::Format {
                origin: self.origin.clone(),
                source,
            })
    }

    /// Replaces the whole tree with an edited plaintext. An edit that does not parse, or that
    /// adds a top-level `sops` entry, is refused and the tree stays as it was.
    pub fn replace(&mut self, plain: &[u8]) -> Result<(), ChangeError> {
        let bad = |reason: String| ChangeError::Unparsable {
            origin: self.origin.clone(),
            format: self.format,
            reason,
        };
        let mut branches = match store::load_plain(&self.origin, plain, self.format) {
            Ok(b) => b,
            Err(DecodeError::Format { source, .. }) => return Err(bad(source.to_string())),
            Err(e) => return Err(bad(e.to_string())),
        };
        if let Some(reason) = validate(&branches, self.format) {
            for b in &mut branches {
                wipe_branch(b);
            }
            return Err(bad(reason.into()));
        }
        for b in &mut self.branches {
            wipe_branch(b);
        }
        self.branches = branches;
        if older_than_layout(&self.metadata.version) {
            self.metadata.version = LAYOUT_VERSION.to_string();
        }
        Ok(())
    }

    /// `sops set`: puts `value` at `path` in the first document, creating missing keys (and
    /// appending past the end of a list). Returns whether anything changed.
    pub fn set(&mut self, path: &[PathPart], value: Node) -> Result<bool, ChangeError> {
        if self.branches.is_empty() {
            self.branches.push(Vec::new());
        }
        let origin = self.origin.clone();
        set_in_items(&mut self.branches[0], path, value, &origin, path)
    }

    /// `sops unset`: removes the entry at `path` from the first document.
    pub fn unset(&mut self, path: &[PathPart]) -> Result<(), ChangeError> {
        let origin = self.origin.clone();
        let Some(root) = self.branches.first_mut() else {
            return Err(ChangeError::NotFound {
                origin,
                index: shown(path),
            });
        };
        unset_in_items(root, path, &origin, path)
    }

    /// Encrypts the tree again with the file's own data key, recomputes the MAC, sets
    /// `lastmodified` to now, and emits the file in its format.
    pub fn seal(mut self) -> Result<Vec<u8>, EncryptError> {
        let crypto = |e: &dyn std::fmt::Display| EncryptError::Crypto {
            origin: self.origin.clone(),
            reason: e.to_string(),
        };
        let mut branches = std::mem::take(&mut self.branches);
        let mac = crypt::encrypt_tree(&mut branches, &self.metadata, &self.key)
            .map_err(|e| crypto(&e))?;
        self.metadata.lastmodified = now_rfc3339();
        let mut iv = [0u8; 32];
        value::random(&mut iv).map_err(|e| crypto(&e))?;
        self.metadata.mac = value::seal(
            &self.key,
            &iv,
            mac.as_bytes(),
            "str",
            &self.metadata.lastmodified,
        );
        emit_encrypted(&self.origin, branches, &self.metadata, self.format)
    }
}

/// What sops's `validateFileForEncryption` refuses: a top-level `sops` key.
fn validate(branches: &[Branch], format: Format) -> Option<&'static str> {
    let has = |b: &Branch| match format {
        Format::Dotenv => b
            .iter()
            .any(|i| i.key.as_deref().is_some_and(|k| k.starts_with("sops_"))),
        Format::Binary => false,
        _ => b.iter().any(|i| i.key.as_deref() == Some("sops")),
    };
    if branches.iter().any(has) {
        return Some("it has a top-level sops entry, which is reserved for the metadata");
    }
    if format == Format::Yaml && branches.is_empty() {
        return Some("the file is empty; it must contain at least one document");
    }
    None
}

/// A JSON value as sops's `set` inserts it: scalars as Go decodes them (every number a
/// float64), objects and arrays through the JSON store.
pub fn json_value(text: &[u8]) -> Result<Node, ChangeError> {
    let trimmed = text.trim_ascii();
    match trimmed.first() {
        Some(b'{') => {
            let mut docs = formats::json::load(trimmed).map_err(|_| ChangeError::NotJson)?;
            Ok(Node::Map(docs.pop().unwrap_or_default()))
        }
        Some(b'[') => {
            // The JSON store loads objects only: wrap the list to reuse it.
            let mut wrapped = Zeroizing::new(b"{\"v\":".to_vec());
            wrapped.extend_from_slice(trimmed);
            wrapped.push(b'}');
            let mut docs = formats::json::load(&wrapped).map_err(|_| ChangeError::NotJson)?;
            let mut items = docs.pop().unwrap_or_default();
            match items.pop() {
                Some(Item { value, .. }) => Ok(value),
                None => Err(ChangeError::NotJson),
            }
        }
        _ => {
            let v: serde_json::Value =
                serde_json::from_slice(trimmed).map_err(|_| ChangeError::NotJson)?;
            Ok(match v {
                serde_json::Value::Null => Node::Null,
                serde_json::Value::Bool(b) => Node::Bool(b),
                serde_json::Value::Number(n) => Node::Float(n.as_f64().unwrap_or(0.0)),
                serde_json::Value::String(s) => Node::Str(s.into_bytes()),
                _ => return Err(ChangeError::NotJson),
            })
        }
    }
}

/// The value a missing path creates: nested maps (and lists for indexes) around the leaf.
fn from_path(path: &[PathPart], leaf: Node) -> Node {
    match path.split_first() {
        None => leaf,
        Some((PathPart::Key(k), rest)) => {
            Node::Map(vec![Item::pair(k.clone(), from_path(rest, leaf))])
        }
        Some((PathPart::Index(_), rest)) => Node::Seq(vec![from_path(rest, leaf)]),
    }
}

fn set_in_items(
    items: &mut Vec<Item>,
    path: &[PathPart],
    value: Node,
    origin: &Origin,
    full: &[PathPart],
) -> Result<bool, ChangeError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(false);
    };
    let PathPart::Key(k) = first else {
        return Err(ChangeError::NotContainer {
            origin: origin.clone(),
            index: shown(full),
            kind: "map",
        });
    };
    if let Some(item) = items.iter_mut().find(|i| i.key.as_deref() == Some(k)) {
        return set_in_node(&mut item.value, rest, value, origin, full);
    }
    items.push(Item::pair(k.clone(), from_path(rest, value)));
    Ok(true)
}

fn set_in_node(
    node: &mut Node,
    path: &[PathPart],
    value: Node,
    origin: &Origin,
    full: &[PathPart],
) -> Result<bool, ChangeError> {
    if path.is_empty() {
        let changed = *node != value;
        node.wipe();
        *node = value;
        return Ok(changed);
    }
    match (node, &path[0]) {
        (Node::Map(items), PathPart::Key(_)) => set_in_items(items, path, value, origin, full),
        (Node::Seq(v), PathPart::Index(i)) => {
            if *i >= v.len() {
                v.push(from_path(&path[1..], value));
                Ok(true)
            } else {
                set_in_node(&mut v[*i], &path[1..], value, origin, full)
            }
        }
        (n, _) => {
            // sops replaces a value of another kind with the path's structure.
            let new = from_path(path, value);
            let changed = *n != new;
            n.wipe();
            *n = new;
            Ok(changed)
        }
    }
}

fn unset_in_items(
    items: &mut Vec<Item>,
    path: &[PathPart],
    origin: &Origin,
    full: &[PathPart],
) -> Result<(), ChangeError> {
    let not_found = || ChangeError::NotFound {
        origin: origin.clone(),
        index: shown(full),
    };
    let Some((PathPart::Key(k), rest)) = path.split_first() else {
        return Err(ChangeError::NotContainer {
            origin: origin.clone(),
            index: shown(full),
            kind: "map",
        });
    };
    let pos = items
        .iter()
        .position(|i| i.key.as_deref() == Some(k))
        .ok_or_else(not_found)?;
    if rest.is_empty() {
        let mut gone = items.remove(pos);
        gone.value.wipe();
        return Ok(());
    }
    unset_in_node(&mut items[pos].value, rest, origin, full)
}

fn unset_in_node(
    node: &mut Node,
    path: &[PathPart],
    origin: &Origin,
    full: &[PathPart],
) -> Result<(), ChangeError> {
    match (node, &path[0]) {
        (Node::Map(items), PathPart::Key(_)) => unset_in_items(items, path, origin, full),
        (Node::Seq(v), PathPart::Index(i)) => {
            if *i >= v.len() {
                return Err(ChangeError::NotFound {
                    origin: origin.clone(),
                    index: shown(full),
                });
            }
            if path.len() == 1 {
                let mut gone = v.remove(*i);
                gone.wipe();
                Ok(())
            } else {
                unset_in_node(&mut v[*i], &path[1..], origin, full)
            }
        }
        (n, _) => Err(ChangeError::NotContainer {
            origin: origin.clone(),
            index: shown(full),
            kind: n.type_name(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_older_than_the_layout_are_raised() {
        assert!(older_than_layout("3.7.3"));
        assert!(older_than_layout("3.10.2"));
        assert!(!older_than_layout("3.11.0"));
        assert!(!older_than_layout("3.12.1"));
    }

    #[test]
    fn json_values_decode_like_go() {
        assert_eq!(json_value(b"5").unwrap(), Node::Float(5.0));
        assert_eq!(json_value(b"\"x\"").unwrap(), Node::str("x"));
        assert_eq!(json_value(b"true").unwrap(), Node::Bool(true));
        assert_eq!(json_value(b"null").unwrap(), Node::Null);
        assert!(matches!(json_value(b"x"), Err(ChangeError::NotJson)));
        assert_eq!(
            json_value(b"{\"a\":\"b\"}").unwrap(),
            Node::Map(vec![Item::pair("a", Node::str("b"))])
        );
    }
}
