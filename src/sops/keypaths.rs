//! The key paths of a decrypted document, for `provision`'s messages and its search for
//! material: every string leaf as a sops-nix path (`a/b`, names only, never values), and the
//! scalar pairs of a nested mapping, so OAuth material one level down (`tailscale:
//! {client_secret: …}`) is found without `--key` when it is the only candidate.

use zeroize::Zeroizing;

use super::document::Document;
use super::formats;
use super::tree::{Item, Node};

/// The scalar `(key, value)` pairs of one mapping.
pub type Pairs = Vec<(String, Zeroizing<Vec<u8>>)>;

/// How deep the search goes: a sops file for one service is rarely nested more.
const MAX_DEPTH: usize = 8;

/// The scalar `(key, value)` pairs of one mapping, in order (maps and lists skipped).
fn scalars(items: &[Item]) -> Pairs {
    let mut out = Vec::new();
    for it in items {
        let Some(k) = &it.key else { continue };
        match &it.value {
            Node::Str(v) => out.push((k.clone(), Zeroizing::new(v.clone()))),
            v @ (Node::Int(_) | Node::Float(_) | Node::Bool(_) | Node::Time(_)) => out.push((
                k.clone(),
                Zeroizing::new(formats::yaml::scalar_text(v).into_bytes()),
            )),
            _ => {}
        }
    }
    out
}

fn walk(items: &[Item], prefix: &str, depth: usize, visit: &mut dyn FnMut(&str, &Item)) {
    for it in items {
        let Some(k) = &it.key else { continue };
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}/{k}")
        };
        visit(&path, it);
        if let (Node::Map(m), true) = (&it.value, depth < MAX_DEPTH) {
            walk(m, &path, depth + 1, visit);
        }
    }
}

impl Document {
    fn root(&self) -> &[Item] {
        self.branches().first().map(Vec::as_slice).unwrap_or(&[])
    }

    /// The sops-nix paths of every scalar leaf (`a/b`), in file order.
    pub fn leaf_paths(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.root(), "", 0, &mut |path, it| {
            if !matches!(it.value, Node::Map(_) | Node::Seq(_) | Node::Comment(_)) {
                out.push(path.to_string());
            }
        });
        out
    }

    /// Every mapping below the top level, as its path and its scalar pairs (for INI, the
    /// sections are the top level's own pairs and are not listed here).
    pub fn nested_maps(&self) -> Vec<(String, Pairs)> {
        let mut out = Vec::new();
        if self.format() == formats::Format::Ini {
            return out;
        }
        walk(self.root(), "", 0, &mut |path, it| {
            if let Node::Map(m) = &it.value {
                out.push((path.to_string(), scalars(m)));
            }
        });
        out
    }

    /// The scalar pairs of the mapping at `key_path` (`a/b`), if a mapping is there.
    pub fn map_at(&self, key_path: &str) -> Option<Pairs> {
        let mut items = self.root();
        let mut node = None;
        for k in key_path.split('/') {
            let it = items.iter().find(|i| i.key.as_deref() == Some(k))?;
            match &it.value {
                Node::Map(m) => items = m,
                _ => items = &[],
            }
            node = Some(&it.value);
        }
        match node {
            Some(Node::Map(m)) => Some(scalars(m)),
            _ => None,
        }
    }
}
