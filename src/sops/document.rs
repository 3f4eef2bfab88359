//! A decrypted document: the tree plus the ways callers read it — one leaf by sops-nix key path
//! (`a/b`), an `--extract` selection, the whole file rendered in any format, or the top-level
//! pairs (for material detection). Every buffer is wiped when the document is dropped.

use zeroize::Zeroizing;

use super::DecodeError;
use super::formats::{self, Format};
use super::tree::{Branch, Item, Node, wipe_branch};
use crate::source::Origin;

/// One `--extract` component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathPart {
    /// `["key"]`
    Key(String),
    /// `[0]`
    Index(usize),
}

/// Parses sops's `--extract` syntax: `["a"]["b"][0]`.
pub fn parse_extract(s: &str) -> Result<Vec<PathPart>, DecodeError> {
    let mut out = Vec::new();
    let mut parts = s.split('[');
    if parts.next().is_some_and(|p| !p.is_empty()) {
        return Err(DecodeError::ExtractSyntax(
            "the path must start with '['".into(),
        ));
    }
    for p in parts {
        let Some(inner) = p.strip_suffix(']') else {
            return Err(DecodeError::ExtractSyntax(format!(
                "component [{p} does not end with ]"
            )));
        };
        if inner.starts_with('"') || inner.starts_with('\'') {
            if inner.len() < 2 {
                return Err(DecodeError::ExtractSyntax("unterminated key".into()));
            }
            // Drop the opening quote and the last character (by char: the key may be UTF-8).
            let mut key = inner[1..].chars();
            key.next_back();
            out.push(PathPart::Key(key.as_str().to_string()));
        } else {
            let i = inner.parse().map_err(|_| {
                DecodeError::ExtractSyntax(format!(
                    "[{inner}] is neither a quoted key nor an index"
                ))
            })?;
            out.push(PathPart::Index(i));
        }
    }
    Ok(out)
}

/// A decrypted sops document.
pub struct Document {
    origin: Origin,
    branches: Vec<Branch>,
    format: Format,
}

impl Drop for Document {
    fn drop(&mut self) {
        for b in &mut self.branches {
            wipe_branch(b);
        }
    }
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Document({}, {})", self.origin, self.format)
    }
}

pub(super) fn render_branches(
    branches: &[Branch],
    out: Format,
) -> Result<Vec<u8>, formats::FormatError> {
    match out {
        Format::Yaml => Ok(formats::yaml::emit(branches)),
        Format::Json => formats::json::emit(branches),
        Format::Dotenv => formats::dotenv::emit(branches),
        Format::Ini => formats::ini::emit(branches),
        Format::Binary => formats::binary::emit(branches),
    }
}

impl Document {
    pub(crate) fn new(origin: Origin, branches: Vec<Branch>, format: Format) -> Self {
        Document {
            origin,
            branches,
            format,
        }
    }

    /// The format the file was read as.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The decrypted documents (read-only).
    pub fn branches(&self) -> &[Branch] {
        &self.branches
    }

    fn extract_err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::Extract {
            origin: self.origin.clone(),
            reason: reason.into(),
        }
    }

    /// The whole file in `out` format, byte-identical to `sops decrypt --output-type out`.
    pub fn render(&self, out: Format) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
        render_branches(&self.branches, out)
            .map(Zeroizing::new)
            .map_err(|source| DecodeError::Format {
                origin: self.origin.clone(),
                source,
            })
    }

    fn walk<'a>(&'a self, path: &[PathPart]) -> Result<&'a Node, DecodeError> {
        let root: &[Item] = self.branches.first().map(Vec::as_slice).unwrap_or(&[]);
        let mut cur: Option<&Node> = None;
        let mut items: &[Item] = root;
        for (depth, p) in path.iter().enumerate() {
            let next = match (p, cur) {
                (PathPart::Key(k), None) => items
                    .iter()
                    .find(|i| i.key.as_deref() == Some(k))
                    .map(|i| &i.value),
                (PathPart::Key(k), Some(Node::Map(m))) => m
                    .iter()
                    .find(|i| i.key.as_deref() == Some(k))
                    .map(|i| &i.value),
                (PathPart::Index(i), Some(Node::Seq(v))) => {
                    // sops indexes the raw list, comments included.
                    Some(v.get(*i).ok_or_else(|| {
                        self.extract_err(format!("component [{i}] is out of bounds"))
                    })?)
                }
                (PathPart::Index(i), _) => {
                    return Err(self.extract_err(format!(
                        "component [{i}] is integer, but tree part is not a slice"
                    )));
                }
                (PathPart::Key(k), Some(_)) => {
                    return Err(self.extract_err(format!("component ['{k}'] is not in a map")));
                }
            };
            let Some(n) = next else {
                let shown: Vec<String> = path[..=depth]
                    .iter()
                    .map(|p| match p {
                        PathPart::Key(k) => format!("['{k}']"),
                        PathPart::Index(i) => format!("[{i}]"),
                    })
                    .collect();
                return Err(self.extract_err(format!("component {} not found", shown.join(""))));
            };
            if let Node::Map(m) = n {
                items = m;
            }
            cur = Some(n);
        }
        cur.ok_or_else(|| self.extract_err("empty path"))
    }

    /// `sops decrypt --extract`: a string prints raw, a map as a document, other values as
    /// the output format's value encoding.
    pub fn extract(
        &self,
        path: &[PathPart],
        out: Format,
    ) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
        let n = self.walk(path)?;
        match n {
            Node::Str(b) => Ok(Zeroizing::new(b.clone())),
            Node::Map(items) => {
                let mut branches = self.branches.clone();
                branches[0] = items.clone();
                let r = render_branches(&branches, out)
                    .map(Zeroizing::new)
                    .map_err(|source| DecodeError::Format {
                        origin: self.origin.clone(),
                        source,
                    });
                for b in &mut branches {
                    wipe_branch(b);
                }
                r
            }
            other => self.value_bytes(other, out),
        }
    }

    fn value_bytes(&self, n: &Node, out: Format) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
        // sops marshals a selected comment as its Go struct `Comment{Value}`.
        let wrapped;
        let n = match (n, out) {
            (Node::Comment(c), Format::Yaml) => {
                wrapped = Node::Map(vec![Item::pair("value", Node::str(c.clone()))]);
                &wrapped
            }
            (Node::Comment(c), _) => {
                wrapped = Node::Map(vec![Item::pair("Value", Node::str(c.clone()))]);
                &wrapped
            }
            _ => n,
        };
        let mut buf = Zeroizing::new(Vec::new());
        match out {
            Format::Yaml => buf.extend_from_slice(&formats::yaml::emit_value(n)),
            Format::Json | Format::Ini => {
                formats::json::value(&mut buf, n, 0).map_err(|source| DecodeError::Format {
                    origin: self.origin.clone(),
                    source,
                })?;
                if out == Format::Ini {
                    buf.retain(|c| *c != b'\n' && *c != b'\t');
                }
            }
            Format::Dotenv | Format::Binary => {
                return Err(
                    self.extract_err(format!("cannot print a {} value as {out}", n.type_name()))
                );
            }
        }
        Ok(buf)
    }

    /// One leaf by sops-nix key path (`a/b`; the whole key when it has no `/`). Strings come
    /// back raw; numbers and booleans as their YAML text; maps and lists are refused.
    pub fn get(&self, key_path: &str) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
        let path: Vec<PathPart> = key_path
            .split('/')
            .map(|k| PathPart::Key(k.to_string()))
            .collect();
        let n = self.walk(&path)?;
        match n {
            Node::Str(b) => Ok(Zeroizing::new(b.clone())),
            Node::Map(_) | Node::Seq(_) => Err(self.extract_err(format!(
                "the value of key '{key_path}' is a {}, not a string",
                n.type_name()
            ))),
            Node::Null => Err(self.extract_err(format!("the value of key '{key_path}' is null"))),
            other => Ok(Zeroizing::new(
                formats::yaml::scalar_text(other).into_bytes(),
            )),
        }
    }

    /// Scalar key/value pairs at the top level of the first document (for INI, of every
    /// section), in order: what material detection looks at.
    pub fn top_level(&self) -> Vec<(String, Zeroizing<Vec<u8>>)> {
        let mut out = Vec::new();
        let Some(b) = self.branches.first() else {
            return out;
        };
        let push = |out: &mut Vec<(String, Zeroizing<Vec<u8>>)>, items: &[Item]| {
            for it in items {
                if let Some(k) = &it.key {
                    match &it.value {
                        Node::Str(v) => out.push((k.clone(), Zeroizing::new(v.clone()))),
                        Node::Int(_) | Node::Float(_) | Node::Bool(_) | Node::Time(_) => {
                            out.push((
                                k.clone(),
                                Zeroizing::new(formats::yaml::scalar_text(&it.value).into_bytes()),
                            ))
                        }
                        _ => {}
                    }
                }
            }
        };
        if self.format == Format::Ini {
            for it in b {
                if let Node::Map(m) = &it.value {
                    push(&mut out, m);
                }
            }
        } else {
            push(&mut out, b);
        }
        out
    }
}
