//! JSON the way sops 3.11 reads and writes it: a top-level object, key order and duplicate keys
//! kept, every number a float64 (3.11 decodes numbers that way), output through a compact
//! encoder re-indented with tabs (`json.Indent`), Go's escaping, and a trailing newline.

use super::{Format, FormatError, emit_err, syntax, unsupported};
use crate::sops::gofmt;
use crate::sops::tree::{Branch, Item, Node};

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 1000;

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn err(&self, what: &str) -> FormatError {
        let line = 1 + self.b[..self.i.min(self.b.len())]
            .iter()
            .filter(|c| **c == b'\n')
            .count();
        syntax(Format::Json, format!("line {line}: {what}"))
    }
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Result<(), FormatError> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }
    fn lit(&mut self, word: &[u8], n: Node) -> Result<Node, FormatError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(n)
        } else {
            Err(self.err("invalid literal"))
        }
    }
    fn value(&mut self, depth: usize) -> Result<Node, FormatError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => self.object(depth).map(Node::Map),
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Node::Seq(v));
                }
                loop {
                    v.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::Seq(v));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => self.string().map(Node::Str),
            Some(b't') => self.lit(b"true", Node::Bool(true)),
            Some(b'f') => self.lit(b"false", Node::Bool(false)),
            Some(b'n') => self.lit(b"null", Node::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }
    fn number(&mut self) -> Result<Node, FormatError> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        let int_start = self.i;
        let n = digits(self);
        if n == 0 || (n > 1 && self.b[int_start] == b'0') {
            return Err(self.err("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("x");
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Node::Float(f)),
            _ => Err(self.err("number out of range")),
        }
    }
    fn hex4(&mut self) -> Result<u32, FormatError> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.err("invalid \\u escape"))?;
        self.i += 4;
        Ok(h)
    }
    fn string(&mut self) -> Result<Vec<u8>, FormatError> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or_else(|| self.err("bad escape"))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) && self.b[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    char::from_u32(0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00))
                                        .unwrap_or('\u{fffd}')
                                } else {
                                    self.i = save;
                                    '\u{fffd}'
                                }
                            } else {
                                char::from_u32(u).unwrap_or('\u{fffd}')
                            }
                        }
                        _ => return Err(self.err("bad escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => out.push(c),
            }
        }
        // Go replaces invalid UTF-8 with U+FFFD.
        Ok(match String::from_utf8(out) {
            Ok(s) => s.into_bytes(),
            Err(e) => String::from_utf8_lossy(e.as_bytes())
                .into_owned()
                .into_bytes(),
        })
    }
    fn object(&mut self, depth: usize) -> Result<Vec<Item>, FormatError> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(items);
        }
        loop {
            self.ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a string key"));
            }
            let k = String::from_utf8(self.string()?).map_err(|_| self.err("key not UTF-8"))?;
            self.expect(b':')?;
            let v = self.value(depth + 1)?;
            items.push(Item::pair(k, v));
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(items);
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }
}

/// Loads a JSON document.
pub fn load(bytes: &[u8]) -> Result<Vec<Branch>, FormatError> {
    let mut p = P { b: bytes, i: 0 };
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(unsupported(
            Format::Json,
            "sops only supports JSON files with a top-level object (starting with '{')",
        ));
    }
    let items = p.object(0)?;
    p.ws();
    if p.i != bytes.len() {
        return Err(p.err("data after the top-level object"));
    }
    Ok(vec![items])
}

/// Go `json.Marshal` of a string (HTML-safe escaping).
pub fn quote(out: &mut Vec<u8>, b: &[u8]) {
    let s = String::from_utf8_lossy(b);
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' | '\0'..='\u{1f}' => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            _ => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

fn indent(out: &mut Vec<u8>, depth: usize) {
    out.push(b'\n');
    out.extend(std::iter::repeat_n(b'\t', depth));
}

/// Emits one value, tab-indented at `depth`.
pub fn value(out: &mut Vec<u8>, n: &Node, depth: usize) -> Result<(), FormatError> {
    match n {
        Node::Map(items) => {
            let pairs: Vec<&Item> = items.iter().filter(|i| i.key.is_some()).collect();
            if pairs.is_empty() {
                out.extend_from_slice(b"{}");
                return Ok(());
            }
            out.push(b'{');
            for (i, it) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, depth + 1);
                quote(out, it.key.as_deref().unwrap_or_default().as_bytes());
                out.extend_from_slice(b": ");
                value(out, &it.value, depth + 1)?;
            }
            indent(out, depth);
            out.push(b'}');
        }
        Node::Seq(v) => {
            let elems: Vec<&Node> = v
                .iter()
                .filter(|n| !matches!(n, Node::Comment(_)))
                .collect();
            if elems.is_empty() {
                out.extend_from_slice(b"[]");
                return Ok(());
            }
            out.push(b'[');
            for (i, e) in elems.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, depth + 1);
                value(out, e, depth + 1)?;
            }
            indent(out, depth);
            out.push(b']');
        }
        Node::Str(b) => quote(out, b),
        Node::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Node::Float(f) => out.extend_from_slice(
            gofmt::json_float(*f)
                .ok_or_else(|| emit_err(Format::Json, "NaN or infinite number"))?
                .as_bytes(),
        ),
        Node::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Node::Time(t) => quote(out, t.as_bytes()),
        Node::Null => out.extend_from_slice(b"null"),
        Node::Comment(_) => {}
    }
    Ok(())
}

/// Emits the first branch as a document with a trailing newline.
pub fn emit(branches: &[Branch]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let b = branches.first().unwrap_or(&empty);
    value(&mut out, &Node::Map(b.clone()), 0)?;
    out.push(b'\n');
    Ok(out)
}
