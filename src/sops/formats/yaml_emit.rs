//! YAML output laid out like go-yaml v3's encoder as sops drives it (`SetIndent(4)`, unlimited
//! width, unicode): block mappings and sequences, sequences indented under keys, mappings in a
//! sequence item starting after `- `, scalars in the style go-yaml's `stringv` and emitter pick,
//! comments as head comments (before a key or item, at its indentation) or foot comments (after
//! the last one). An empty document is `{}`; documents are separated by `---`.

use base64::Engine as _;

use super::yaml_scalar::resolve_plain;
use crate::sops::gofmt;
use crate::sops::tree::{Branch, Item, Node};

/// The indentation sops uses.
pub const INDENT: usize = 4;

fn next_indent(i: usize) -> usize {
    INDENT * ((i + INDENT) / INDENT)
}

fn pad(out: &mut Vec<u8>, n: usize) {
    out.extend(std::iter::repeat_n(b' ', n));
}

fn comment(out: &mut Vec<u8>, col: usize, text: &str) {
    pad(out, col);
    out.push(b'#');
    out.extend_from_slice(text.as_bytes());
    out.push(b'\n');
}

/// Emits all documents.
pub fn emit(branches: &[Branch]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, b) in branches.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b"---\n");
        }
        if b.iter().all(|it| it.key.is_none()) {
            for it in b {
                if let Node::Comment(c) = &it.value {
                    comment(&mut out, 0, c);
                }
            }
            out.extend_from_slice(b"{}\n");
        } else {
            map(&mut out, b, 0, false);
        }
    }
    out
}

/// `yaml.Marshal` of one value (a scalar line, or a top-level sequence).
pub fn emit_value(n: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    match n {
        Node::Seq(items) if !is_empty_container(n) => seq(&mut out, items, 0, false),
        Node::Map(items) if !is_empty_container(n) => map(&mut out, items, 0, false),
        Node::Map(_) => out.extend_from_slice(b"{}\n"),
        Node::Seq(_) => out.extend_from_slice(b"[]\n"),
        Node::Str(b) => string(&mut out, b, INDENT),
        other => {
            out.extend_from_slice(scalar_text(other).as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// A block mapping at `col`. With `inline_first`, the first key continues the current line
/// (after `- `).
fn map(out: &mut Vec<u8>, items: &[Item], col: usize, mut inline_first: bool) {
    let mut pending: Vec<&str> = Vec::new();
    for it in items {
        let Some(k) = &it.key else {
            if let Node::Comment(c) = &it.value {
                pending.push(c);
            }
            continue;
        };
        if !pending.is_empty() && inline_first {
            // A head comment cannot share the `- ` line: go-yaml breaks the line first.
            out.push(b'\n');
            inline_first = false;
        }
        for c in pending.drain(..) {
            comment(out, col, c);
        }
        if !inline_first {
            pad(out, col);
        }
        inline_first = false;
        key(out, k);
        out.push(b':');
        value(out, &it.value, col, false);
    }
    for c in pending {
        comment(out, col, c);
    }
}

fn seq(out: &mut Vec<u8>, items: &[Node], col: usize, mut inline_first: bool) {
    let mut pending: Vec<&str> = Vec::new();
    for n in items {
        if let Node::Comment(c) = n {
            pending.push(c);
            continue;
        }
        // go-yaml writes the head comment of a mapping or sequence that is a list item before
        // the item's `- ` line.
        let lead = match n {
            Node::Map(items) if !is_empty_container(n) => {
                items.iter().take_while(|i| i.key.is_none()).count()
            }
            Node::Seq(v) if !is_empty_container(n) => v
                .iter()
                .take_while(|e| matches!(e, Node::Comment(_)))
                .count(),
            _ => 0,
        };
        let stripped;
        let n = if lead > 0 {
            match n {
                Node::Map(items) => {
                    pending.extend(items[..lead].iter().filter_map(|i| match &i.value {
                        Node::Comment(c) => Some(c.as_str()),
                        _ => None,
                    }));
                    stripped = Node::Map(items[lead..].to_vec());
                }
                Node::Seq(v) => {
                    pending.extend(v[..lead].iter().filter_map(|e| match e {
                        Node::Comment(c) => Some(c.as_str()),
                        _ => None,
                    }));
                    stripped = Node::Seq(v[lead..].to_vec());
                }
                _ => stripped = Node::Null,
            }
            &stripped
        } else {
            n
        };
        if !pending.is_empty() && inline_first {
            out.push(b'\n');
            inline_first = false;
        }
        for c in pending.drain(..) {
            comment(out, col, c);
        }
        if !inline_first {
            pad(out, col);
        }
        inline_first = false;
        out.push(b'-');
        value(out, n, col, true);
    }
    for c in pending {
        comment(out, col, c);
    }
}

fn is_empty_container(n: &Node) -> bool {
    match n {
        Node::Map(items) => items.iter().all(|i| i.key.is_none()),
        Node::Seq(v) => v.iter().all(|n| matches!(n, Node::Comment(_))),
        _ => false,
    }
}

/// Emits a value after `key:` (parent at `col`) or after `-` (dash at `col`, `in_seq`).
fn value(out: &mut Vec<u8>, n: &Node, col: usize, in_seq: bool) {
    let child = if in_seq { col + 2 } else { next_indent(col) };
    match n {
        Node::Map(items) if !is_empty_container(n) => {
            if in_seq {
                out.push(b' ');
                map(out, items, child, true);
            } else {
                out.push(b'\n');
                map(out, items, child, false);
            }
        }
        Node::Seq(items) if !is_empty_container(n) => {
            if in_seq {
                out.push(b' ');
                seq(out, items, child, true);
            } else {
                out.push(b'\n');
                seq(out, items, child, false);
            }
        }
        Node::Map(_) => out.extend_from_slice(b" {}\n"),
        Node::Seq(_) => out.extend_from_slice(b" []\n"),
        Node::Str(b) => {
            out.push(b' ');
            string(out, b, child);
        }
        other => {
            out.push(b' ');
            out.extend_from_slice(scalar_text(other).as_bytes());
            out.push(b'\n');
        }
    }
}

/// Plain text of a non-string scalar.
pub fn scalar_text(n: &Node) -> String {
    match n {
        Node::Int(i) => i.to_string(),
        Node::Float(f) => gofmt::yaml_float(*f),
        Node::Bool(b) => b.to_string(),
        Node::Time(t) => t.clone(),
        Node::Null => "null".into(),
        Node::Comment(c) => c.clone(),
        Node::Str(b) => String::from_utf8_lossy(b).into_owned(),
        Node::Map(_) | Node::Seq(_) => String::new(),
    }
}

fn key(out: &mut Vec<u8>, k: &str) {
    match choose_style(k, true) {
        Style::Plain => out.extend_from_slice(k.as_bytes()),
        Style::Single => single_quoted(out, k),
        _ => double_quoted(out, k),
    }
}

#[derive(PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "on"
            | "On"
            | "ON"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (main, frac) = match b.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (b, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|c| c.is_ascii_digit() || c == b'_')) {
        return false;
    }
    let mut parts = main.split(':');
    let first = parts.next().unwrap_or_default();
    if first.is_empty()
        || !first.as_bytes()[0].is_ascii_digit()
        || !first.bytes().all(|c| c.is_ascii_digit() || c == b'_')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| {
            let pb = p.as_bytes();
            match pb.len() {
                1 => pb[0].is_ascii_digit(),
                2 => (b'0'..=b'5').contains(&pb[0]) && pb[1].is_ascii_digit(),
                _ => false,
            }
        })
}

/// go-yaml's `is_printable`: BMP only (4-byte UTF-8 sequences count as non-printable and are
/// escaped), no NEL, no BOM.
fn printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

struct Analysis {
    block_plain: bool,
    single: bool,
    block: bool,
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    let (mut block_ind, mut leading_space, mut leading_break) = (false, false, false);
    let (mut trailing_space, mut trailing_break, mut break_space) = (false, false, false);
    let (mut space_break, mut special, mut line_breaks) = (false, false, false);
    if s.starts_with("---") || s.starts_with("...") {
        block_ind = true;
    }
    let (mut prev_space, mut prev_break, mut preceded_ws) = (false, false, true);
    let n = chars.len();
    for (i, &c) in chars.iter().enumerate() {
        let followed_ws =
            i + 1 >= n || chars[i + 1] == ' ' || chars[i + 1] == '\t' || is_break(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_ind = true,
                '?' | ':' | '-' if followed_ws => block_ind = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_ws => block_ind = true,
                '#' if preceded_ws => block_ind = true,
                _ => {}
            }
        }
        if !printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == n {
                trailing_space = true;
            }
            if prev_break {
                break_space = true;
            }
            prev_space = true;
            prev_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == n {
                trailing_break = true;
            }
            if prev_space {
                space_break = true;
            }
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = c == ' ' || c == '\t' || is_break(c);
    }
    let mut a = Analysis {
        block_plain: true,
        single: true,
        block: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain = false;
    }
    if trailing_space {
        a.block = false;
    }
    if break_space {
        a.block_plain = false;
        a.single = false;
    }
    if space_break || special {
        a.block_plain = false;
        a.single = false;
        a.block = false;
    }
    if line_breaks || block_ind {
        a.block_plain = false;
    }
    a
}

/// go-yaml's choice for a string (`stringv` + `select_scalar_style`).
fn choose_style(s: &str, is_key: bool) -> Style {
    let can_plain = matches!(resolve_plain(s), Node::Str(_))
        && !is_base60_float(s)
        && !is_old_bool(s)
        && s != "<<";
    let a = analyze(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_plain {
        Style::Plain
    } else {
        Style::Double
    };
    if style == Style::Plain && (!a.block_plain || (s.is_empty() && is_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block || is_key) {
        style = Style::Double;
    }
    style
}

fn string(out: &mut Vec<u8>, b: &[u8], child: usize) {
    let Ok(s) = std::str::from_utf8(b) else {
        out.extend_from_slice(b"!!binary ");
        out.extend_from_slice(
            base64::engine::general_purpose::STANDARD
                .encode(b)
                .as_bytes(),
        );
        out.push(b'\n');
        return;
    };
    match choose_style(s, false) {
        Style::Plain => out.extend_from_slice(s.as_bytes()),
        Style::Single => single_quoted(out, s),
        Style::Double => double_quoted(out, s),
        Style::Literal => {
            literal(out, s, child);
            return;
        }
    }
    out.push(b'\n');
}

fn single_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'\'');
    out.extend_from_slice(s.replace('\'', "''").as_bytes());
    out.push(b'\'');
}

fn double_quoted(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for c in s.chars() {
        let esc: Option<&str> = match c {
            '\0' => Some("\\0"),
            '\u{7}' => Some("\\a"),
            '\u{8}' => Some("\\b"),
            '\t' => Some("\\t"),
            '\n' => Some("\\n"),
            '\u{b}' => Some("\\v"),
            '\u{c}' => Some("\\f"),
            '\r' => Some("\\r"),
            '\u{1b}' => Some("\\e"),
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\u{85}' => Some("\\N"),
            '\u{a0}' => Some("\\_"),
            '\u{2028}' => Some("\\L"),
            '\u{2029}' => Some("\\P"),
            _ => None,
        };
        if let Some(e) = esc {
            out.extend_from_slice(e.as_bytes());
        } else if !printable(c) || c == '\u{feff}' {
            let v = c as u32;
            let e = if v <= 0xff {
                format!("\\x{v:02X}")
            } else if v <= 0xffff {
                format!("\\u{v:04X}")
            } else {
                format!("\\U{v:08X}")
            };
            out.extend_from_slice(e.as_bytes());
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    out.push(b'"');
}

fn literal(out: &mut Vec<u8>, s: &str, indent: usize) {
    out.push(b'|');
    if s.starts_with(' ') || s.starts_with('\n') {
        out.extend_from_slice(INDENT.to_string().as_bytes());
    }
    let trailing = s.len() - s.trim_end_matches('\n').len();
    if trailing == 0 {
        out.push(b'-');
    } else if trailing > 1 || s.len() == 1 {
        out.push(b'+');
    }
    out.push(b'\n');
    let body = if trailing > 0 { &s[..s.len() - 1] } else { s };
    for line in body.split('\n') {
        if !line.is_empty() {
            pad(out, indent);
            out.extend_from_slice(line.as_bytes());
        }
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(k: &str, v: Node) -> String {
        String::from_utf8(emit(&[vec![Item::pair(k, v)]])).unwrap_or_default()
    }

    #[test]
    fn scalar_styles() {
        assert_eq!(one("a", Node::str("x")), "a: x\n");
        assert_eq!(one("a", Node::str("010")), "a: \"010\"\n");
        assert_eq!(one("a", Node::str("yes")), "a: \"yes\"\n");
        assert_eq!(one("a", Node::str("a: b")), "a: 'a: b'\n");
        assert_eq!(one("a", Node::str("")), "a: \"\"\n");
        assert_eq!(one("y", Node::Int(1)), "\"y\": 1\n");
        assert_eq!(one("a", Node::str("l1\nl2\n")), "a: |\n    l1\n    l2\n");
        assert_eq!(one("a", Node::str("l1\nl2")), "a: |-\n    l1\n    l2\n");
        assert_eq!(one("a", Node::Float(1e6)), "a: 1e+06\n");
        assert_eq!(one("a", Node::str("2024-01-01")), "a: \"2024-01-01\"\n");
    }
}
