//! dotenv as sops reads and writes it: `KEY=value` lines split on the first `=` (nothing
//! trimmed, no quotes), `#` comment lines, `\n` escapes for newlines, metadata as flattened
//! `sops_…` keys.

use super::{Format, FormatError, emit_err, syntax};
use crate::sops::gofmt;
use crate::sops::tree::{Branch, Item, Node};

/// Loads dotenv text into one branch (metadata keys included; the caller separates them).
pub fn load(bytes: &[u8]) -> Result<Vec<Branch>, FormatError> {
    let mut items = Vec::new();
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if line[0] == b'#' {
            let c = String::from_utf8(line[1..].to_vec())
                .map_err(|_| syntax(Format::Dotenv, format!("line {}: not UTF-8", n + 1)))?;
            items.push(Item::comment(c));
            continue;
        }
        let Some(eq) = line.iter().position(|b| *b == b'=') else {
            return Err(syntax(
                Format::Dotenv,
                format!("line {}: invalid dotenv input line (no '=')", n + 1),
            ));
        };
        let key = String::from_utf8(line[..eq].to_vec())
            .map_err(|_| syntax(Format::Dotenv, format!("line {}: key is not UTF-8", n + 1)))?;
        let mut value = Vec::with_capacity(line.len() - eq);
        let raw = &line[eq + 1..];
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' && raw.get(i + 1) == Some(&b'n') {
                value.push(b'\n');
                i += 2;
            } else {
                value.push(raw[i]);
                i += 1;
            }
        }
        items.push(Item::pair(key, Node::Str(value)));
    }
    Ok(vec![items])
}

/// `stores.ValToString`.
pub fn val_to_string(n: &Node) -> Option<Vec<u8>> {
    Some(match n {
        Node::Str(b) => b.clone(),
        Node::Int(i) => i.to_string().into_bytes(),
        Node::Float(f) => {
            // Go: 'G' shortest, with ".0" forced when the text looks integral.
            let mut s = gofmt::format_g(*f).to_uppercase();
            if !s.contains(['.', 'E', 'N', 'I']) {
                s.push_str(".0");
            }
            s.into_bytes()
        }
        Node::Bool(b) => b.to_string().into_bytes(),
        Node::Time(t) => t.clone().into_bytes(),
        Node::Null => b"<nil>".to_vec(),
        _ => return None,
    })
}

/// Emits the first branch.
pub fn emit(branches: &[Branch]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let Some(b) = branches.first() else {
        return Ok(out);
    };
    for it in b {
        match (&it.key, &it.value) {
            (None, Node::Comment(c)) => {
                out.push(b'#');
                out.extend_from_slice(c.as_bytes());
                out.push(b'\n');
            }
            (None, _) => {}
            (Some(k), v) => {
                let val = val_to_string(v).ok_or_else(|| {
                    emit_err(
                        Format::Dotenv,
                        format!("cannot use complex value in dotenv file; offending key {k}"),
                    )
                })?;
                out.extend_from_slice(k.as_bytes());
                out.push(b'=');
                for &c in &val {
                    if c == b'\n' {
                        out.extend_from_slice(b"\\n");
                    } else {
                        out.push(c);
                    }
                }
                out.push(b'\n');
            }
        }
    }
    Ok(out)
}
