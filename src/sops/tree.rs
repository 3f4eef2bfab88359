//! The sops data tree: ordered mappings, sequences, typed scalars and comments.
//!
//! sops works on a format-neutral tree (`sops.go: TreeBranch`): every format loads into it and
//! emits from it, and encryption, decryption and the MAC are walks over it in document order.
//! A mapping item whose key is `None` is a comment line (its value is a [`Node::Comment`]);
//! a sequence element can be a comment too. `Null` leaves are never visited by walks.

use zeroize::Zeroize;

/// One value in the tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// An ordered mapping.
    Map(Vec<Item>),
    /// A sequence.
    Seq(Vec<Node>),
    /// A string (raw bytes: the binary store may hold invalid UTF-8).
    Str(Vec<u8>),
    /// A Go `int` (int64).
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A timestamp, already normalised to Go's RFC3339Nano text.
    Time(String),
    /// YAML/JSON null.
    Null,
    /// A comment (text after the `#`).
    Comment(String),
}

/// One entry of a mapping: a key and its value, or (key `None`) a comment line.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    /// The key; `None` for a comment item.
    pub key: Option<String>,
    /// The value; a [`Node::Comment`] for a comment item.
    pub value: Node,
}

impl Item {
    /// A key/value pair.
    pub fn pair(key: impl Into<String>, value: Node) -> Self {
        Item {
            key: Some(key.into()),
            value,
        }
    }
    /// A comment line.
    pub fn comment(text: impl Into<String>) -> Self {
        Item {
            key: None,
            value: Node::Comment(text.into()),
        }
    }
}

/// One document.
pub type Branch = Vec<Item>;

impl Node {
    /// A string node from text.
    pub fn str(s: impl Into<String>) -> Self {
        Node::Str(s.into().into_bytes())
    }

    /// Overwrites every string buffer in place (decrypted values are secrets).
    pub fn wipe(&mut self) {
        match self {
            Node::Map(items) => wipe_branch(items),
            Node::Seq(v) => v.iter_mut().for_each(Node::wipe),
            Node::Str(b) => b.zeroize(),
            Node::Time(s) | Node::Comment(s) => s.zeroize(),
            Node::Int(i) => i.zeroize(),
            Node::Float(f) => *f = 0.0,
            Node::Bool(b) => *b = false,
            Node::Null => {}
        }
    }

    /// The Go type name sops would report, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Map(_) => "map",
            Node::Seq(_) => "list",
            Node::Str(_) => "string",
            Node::Int(_) => "int",
            Node::Float(_) => "float",
            Node::Bool(_) => "bool",
            Node::Time(_) => "time",
            Node::Null => "null",
            Node::Comment(_) => "comment",
        }
    }
}

/// Wipes every value and key of a branch.
pub fn wipe_branch(items: &mut [Item]) {
    for it in items {
        if let Some(k) = it.key.as_mut() {
            k.zeroize();
        }
        it.value.wipe();
    }
}

/// What a leaf visitor sees besides the leaf: its key path and the comment stack.
pub struct LeafCtx<'a> {
    /// Mapping keys from the document root (sequence indices are not part of it).
    pub path: &'a [String],
    /// Comments directly preceding the current item, one frame per enclosing level.
    pub comments: &'a [Vec<String>],
    /// The leaf is a sequence element (an encrypted comment there becomes a string element).
    pub in_seq: bool,
}

impl LeafCtx<'_> {
    /// The additional authenticated data of this leaf: `a:b:c:`.
    pub fn aad(&self) -> String {
        let mut s = self.path.join(":");
        s.push(':');
        s
    }
}

/// Walks every leaf (scalars and comments; not nulls) of every branch in document order, like
/// `sops.go: walkBranch/walkSlice/walkValue`, letting `f` replace it.
pub fn walk<E>(
    branches: &mut [Branch],
    f: &mut dyn FnMut(&mut Node, &LeafCtx<'_>) -> Result<(), E>,
) -> Result<(), E> {
    for b in branches {
        let mut path = Vec::new();
        let mut stack = Vec::new();
        walk_branch(b, &mut path, &mut stack, f)?;
    }
    Ok(())
}

type Visit<'f, E> = dyn FnMut(&mut Node, &LeafCtx<'_>) -> Result<(), E> + 'f;

fn walk_branch<E>(
    items: &mut [Item],
    path: &mut Vec<String>,
    stack: &mut Vec<Vec<String>>,
    f: &mut Visit<'_, E>,
) -> Result<(), E> {
    stack.push(Vec::new());
    for it in items.iter_mut() {
        match &it.key {
            None => {
                if let Node::Comment(c) = &it.value {
                    if let Some(top) = stack.last_mut() {
                        top.push(c.clone());
                    }
                }
                walk_value(&mut it.value, path, stack, false, f)?;
            }
            Some(k) => {
                path.push(k.clone());
                let r = walk_value(&mut it.value, path, stack, false, f);
                path.pop();
                r?;
                if let Some(top) = stack.last_mut() {
                    top.clear();
                }
            }
        }
    }
    stack.pop();
    Ok(())
}

fn walk_seq<E>(
    items: &mut [Node],
    path: &mut Vec<String>,
    stack: &mut Vec<Vec<String>>,
    f: &mut Visit<'_, E>,
) -> Result<(), E> {
    stack.push(Vec::new());
    for v in items.iter_mut() {
        let is_comment = if let Node::Comment(c) = v {
            if let Some(top) = stack.last_mut() {
                top.push(c.clone());
            }
            true
        } else {
            false
        };
        walk_value(v, path, stack, true, f)?;
        if !is_comment {
            if let Some(top) = stack.last_mut() {
                top.clear();
            }
        }
    }
    stack.pop();
    Ok(())
}

fn walk_value<E>(
    v: &mut Node,
    path: &mut Vec<String>,
    stack: &mut Vec<Vec<String>>,
    in_seq: bool,
    f: &mut Visit<'_, E>,
) -> Result<(), E> {
    match v {
        Node::Map(items) => walk_branch(items, path, stack, f),
        Node::Seq(items) => walk_seq(items, path, stack, f),
        Node::Null => Ok(()),
        _ => f(
            v,
            &LeafCtx {
                path,
                comments: stack,
                in_seq,
            },
        ),
    }
}
