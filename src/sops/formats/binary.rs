//! The binary store: a whole file as the single string `data` (encrypted as a JSON document).

use super::{Format, FormatError, emit_err};
use crate::sops::tree::{Branch, Item, Node};

/// The plaintext of a binary file as a tree.
pub fn load_plain(bytes: &[u8]) -> Vec<Branch> {
    vec![vec![Item::pair("data", Node::Str(bytes.to_vec()))]]
}

/// The raw bytes of `data`.
pub fn emit(branches: &[Branch]) -> Result<Vec<u8>, FormatError> {
    let data = branches
        .first()
        .and_then(|b| b.iter().find(|i| i.key.as_deref() == Some("data")));
    match data.map(|i| &i.value) {
        Some(Node::Str(b)) => Ok(b.clone()),
        Some(_) => Err(emit_err(
            Format::Binary,
            "the 'data' key is not a string; use --output-type to choose another format",
        )),
        None => Err(emit_err(
            Format::Binary,
            "no 'data' key (not a binary-store document); use --output-type to choose another format",
        )),
    }
}
