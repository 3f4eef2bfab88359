//! The format-neutral core of the sops engine: decrypting and encrypting a loaded tree, and its MAC.
//!
//! `decrypt_tree` and `encrypt_tree` are `sops.go: Tree.Decrypt / Tree.Encrypt`: one walk in
//! document order that decides per leaf (by the file's crypt rule) whether it is encrypted,
//! converts it, and feeds the MAC. The MAC itself is stored encrypted with AAD `lastmodified`.

use super::mac;
use super::metadata::Metadata;
use super::tree::{self, Branch, LeafCtx, Node};
use super::value::{self, ValueError};

/// A value that failed, with its key path (never its content).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError {
    /// An encrypted value did not decrypt.
    #[error("cannot decrypt the value at {path}: {source}")]
    Value { path: String, source: ValueError },
    /// A leaf that the rules say is encrypted is not a string.
    #[error("the value at {path} should be encrypted but is a {kind}")]
    NotString { path: String, kind: &'static str },
    /// The stored MAC did not decrypt.
    #[error("cannot decrypt the MAC: {0} (the file was changed, or lastmodified was edited)")]
    MacUndecryptable(ValueError),
    /// The stored MAC differs from the computed one.
    #[error(
        "MAC mismatch: the file's content was changed after it was encrypted (values reordered, added or removed); use --ignore-mac to read it anyway"
    )]
    MacMismatch,
    /// The file has no MAC.
    #[error("the file has no MAC; use --ignore-mac to read it anyway")]
    NoMac,
    /// A non-string key or an unsupported value while encrypting.
    #[error("cannot encrypt the value at {path}: {reason}")]
    Encrypt { path: String, reason: String },
}

fn display_path(ctx: &LeafCtx<'_>) -> String {
    if ctx.path.is_empty() {
        "the top level".into()
    } else {
        format!("'{}'", ctx.path.join("/"))
    }
}

/// Decrypts every leaf in place and returns the computed MAC (hex).
pub fn decrypt_tree(
    branches: &mut [Branch],
    md: &Metadata,
    key: &[u8; 32],
) -> Result<String, TreeError> {
    let mut mac = mac::Mac::new(md.mac_only_encrypted);
    tree::walk(branches, &mut |leaf: &mut Node, ctx: &LeafCtx<'_>| {
        let is_comment = matches!(leaf, Node::Comment(_));
        let encrypted = md.rules.should_encrypt(ctx.path, ctx.comments, is_comment);
        if encrypted {
            match leaf {
                Node::Comment(c) => {
                    // sops assumes a comment that does not decrypt was never encrypted.
                    if let Ok(v) = value::decrypt(key, c, &ctx.aad()) {
                        *leaf = match v {
                            Node::Str(b) => Node::Comment(String::from_utf8_lossy(&b).into_owned()),
                            other => other,
                        };
                    }
                }
                Node::Str(b) => {
                    let s = std::str::from_utf8(b).map_err(|_| TreeError::Value {
                        path: display_path(ctx),
                        source: ValueError::Format,
                    })?;
                    *leaf =
                        value::decrypt(key, s, &ctx.aad()).map_err(|source| TreeError::Value {
                            path: display_path(ctx),
                            source,
                        })?;
                }
                other => {
                    return Err(TreeError::NotString {
                        path: display_path(ctx),
                        kind: other.type_name(),
                    });
                }
            }
        }
        if (!md.mac_only_encrypted || encrypted) && !matches!(leaf, Node::Comment(_)) {
            if let Some((b, _)) = value::to_bytes(leaf) {
                mac.update(&b);
            }
        }
        Ok(())
    })?;
    Ok(mac.hex())
}

/// Checks the stored MAC against `computed`.
pub fn verify_mac(md: &Metadata, key: &[u8; 32], computed: &str) -> Result<(), TreeError> {
    if md.mac.is_empty() {
        return Err(TreeError::NoMac);
    }
    let stored =
        value::decrypt(key, &md.mac, &md.mac_aad()).map_err(TreeError::MacUndecryptable)?;
    match stored {
        Node::Str(b) if mac::equal(&String::from_utf8_lossy(&b), computed) => Ok(()),
        _ => Err(TreeError::MacMismatch),
    }
}

/// Encrypts every leaf the rules select, in place, and returns the MAC (hex) of the plaintext.
pub fn encrypt_tree(
    branches: &mut [Branch],
    md: &Metadata,
    key: &[u8; 32],
) -> Result<String, TreeError> {
    let mut mac = mac::Mac::new(md.mac_only_encrypted);
    tree::walk(branches, &mut |leaf: &mut Node, ctx: &LeafCtx<'_>| {
        let is_comment = matches!(leaf, Node::Comment(_));
        let encrypted = md.rules.should_encrypt(ctx.path, ctx.comments, is_comment);
        if (!md.mac_only_encrypted || encrypted) && !is_comment {
            if let Some((b, _)) = value::to_bytes(leaf) {
                mac.update(&b);
            }
        }
        if encrypted {
            let enc = value::encrypt(key, leaf, &ctx.aad()).map_err(|e| TreeError::Encrypt {
                path: display_path(ctx),
                reason: e.to_string(),
            })?;
            *leaf = if is_comment && !ctx.in_seq {
                Node::Comment(enc)
            } else {
                Node::Str(enc.into_bytes())
            };
        }
        Ok(())
    })?;
    Ok(mac.hex())
}
