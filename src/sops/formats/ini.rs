//! INI as sops reads and writes it through go-ini v1.67: sections in order (a `DEFAULT`
//! section first), trimmed values with `"`/`'`/`` ` ``/`"""` quoting and `#`/`;` inline
//! comments, comment lines attached to the next key or section; output aligned `key = value`,
//! one blank line between sections.

use super::dotenv::val_to_string;
use super::{Format, FormatError, emit_err, syntax};
use crate::sops::tree::{Branch, Item, Node};

fn strip_comment_char(c: &str) -> String {
    if c.starts_with(';') {
        c.trim_start_matches([';', ' ']).to_string()
    } else if c.starts_with('#') {
        c.trim_start_matches(['#', ' ']).to_string()
    } else {
        c.to_string()
    }
}

struct Section {
    name: String,
    comment: String,
    keys: Vec<(String, String, String)>,
    index: std::collections::HashMap<String, usize>,
}

fn surrounded(s: &str, q: char) -> bool {
    s.len() >= 2 && s.starts_with(q) && s.ends_with(q)
}

/// Loads INI text into one branch of sections (the `sops` section included).
pub fn load(bytes: &[u8]) -> Result<Vec<Branch>, FormatError> {
    let text = std::str::from_utf8(bytes).map_err(|_| syntax(Format::Ini, "not UTF-8"))?;
    let mut sections = vec![Section {
        name: "DEFAULT".into(),
        comment: String::new(),
        keys: Vec::new(),
        index: Default::default(),
    }];
    let mut comment = String::new();
    let mut lines = text.split_inclusive('\n').enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() {
            continue;
        }
        let lineno = n + 1;
        if line.starts_with('#') || line.starts_with(';') {
            comment.push_str(line);
            continue;
        }
        if line.starts_with('[') {
            let close = line
                .rfind(']')
                .ok_or_else(|| syntax(Format::Ini, format!("line {lineno}: unclosed section")))?;
            let name = line[1..close].to_string();
            let after = line[close + 1..].trim();
            if after.starts_with('#') || after.starts_with(';') {
                comment.push_str(after);
            }
            sections.push(Section {
                name,
                comment: comment.trim().to_string(),
                keys: Vec::new(),
                index: Default::default(),
            });
            comment.clear();
            continue;
        }
        let (key, rest) = read_key(line).ok_or_else(|| {
            syntax(
                Format::Ini,
                format!("line {lineno}: key-value delimiter not found"),
            )
        })?;
        let value = read_value(rest, &mut comment, &mut lines, lineno)?;
        let c = comment.trim().to_string();
        comment.clear();
        let sec = sections
            .last_mut()
            .ok_or_else(|| syntax(Format::Ini, "no section"))?;
        match sec.index.get(&key) {
            Some(&i) => {
                sec.keys[i].1 = value;
                sec.keys[i].2 = c;
            }
            None => {
                sec.index.insert(key.clone(), sec.keys.len());
                sec.keys.push((key, value, c));
            }
        }
    }
    let mut branch = Vec::new();
    for s in sections {
        let mut items = Vec::new();
        if !s.comment.is_empty() {
            items.push(Item::comment(strip_comment_char(&s.comment)));
        }
        for (k, v, c) in s.keys {
            items.push(Item::pair(k, Node::Str(v.into_bytes())));
            if !c.is_empty() {
                items.push(Item::comment(strip_comment_char(&c)));
            }
        }
        branch.push(Item::pair(s.name, Node::Map(items)));
    }
    Ok(vec![branch])
}

fn read_key(line: &str) -> Option<(String, &str)> {
    for q in ["\"\"\"", "`", "\""] {
        if let Some(rest) = line.strip_prefix(q) {
            let end = rest.find(q)?;
            let after = rest[end + q.len()..].trim_start();
            let after = after.strip_prefix(['=', ':'])?;
            return Some((rest[..end].to_string(), after));
        }
    }
    let pos = line.find(['=', ':'])?;
    Some((line[..pos].trim().to_string(), &line[pos + 1..]))
}

fn read_value<'a>(
    input: &str,
    comment: &mut String,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    lineno: usize,
) -> Result<String, FormatError> {
    let line = input.trim_start();
    if line.is_empty() {
        return Ok(String::new());
    }
    let quote = if line.len() > 3 && line.starts_with("\"\"\"") {
        Some("\"\"\"")
    } else if line.starts_with('`') {
        Some("`")
    } else {
        None
    };
    if let Some(q) = quote {
        let body = &line[q.len()..];
        if let Some(pos) = body.rfind(q) {
            return Ok(body[..pos].to_string());
        }
        let mut val = body.to_string();
        for (_, next) in lines.by_ref() {
            if let Some(pos) = next.rfind(q) {
                val.push_str(&next[..pos]);
                return Ok(val);
            }
            val.push_str(next);
        }
        return Err(syntax(
            Format::Ini,
            format!("line {lineno}: missing closing {q} quote"),
        ));
    }
    let mut line = line.trim().to_string();
    if let Some(stripped) = line.strip_suffix('\\') {
        let mut val = stripped.to_string();
        for (_, next) in lines.by_ref() {
            let t = next.trim();
            if let Some(s) = t.strip_suffix('\\') {
                val.push_str(s);
            } else {
                val.push_str(t);
                break;
            }
        }
        line = val;
    }
    if let Some(i) = line.find(['#', ';']) {
        comment.push_str(&line[i..]);
        line = line[..i].trim().to_string();
    }
    if surrounded(&line, '\'') || surrounded(&line, '"') {
        line = line[1..line.len() - 1].to_string();
    }
    Ok(line)
}

fn comment_lines(out: &mut String, c: &str, trim_plain: bool) {
    for l in c.split('\n') {
        if l.is_empty() {
            continue;
        }
        if l.starts_with('#') || l.starts_with(';') {
            out.push_str(&l[..1]);
            out.push(' ');
            out.push_str(l[1..].trim());
        } else {
            out.push_str("; ");
            out.push_str(if trim_plain { l.trim() } else { l });
        }
        out.push('\n');
    }
}

/// Emits sections like go-ini `WriteTo` with `PrettyFormat` and `PrettySection`.
pub fn emit(branches: &[Branch]) -> Result<Vec<u8>, FormatError> {
    let mut out = String::new();
    let mut first = true;
    let mut index = 0usize;
    for b in branches {
        for it in b {
            let Some(name) = &it.key else { continue };
            let Node::Map(items) = &it.value else {
                return Err(emit_err(
                    Format::Ini,
                    "Section values should always be TreeBranches",
                ));
            };
            let mut section_comment = String::new();
            let mut start = 0;
            if let Some(Item {
                key: None,
                value: Node::Comment(c),
            }) = items.first()
            {
                section_comment = c.clone();
                start = 1;
            }
            let mut keys: Vec<(String, Vec<u8>, String)> = Vec::new();
            for kv in &items[start..] {
                match (&kv.key, &kv.value) {
                    (None, Node::Comment(c)) => {
                        if let Some(last) = keys.last_mut() {
                            last.2 = c.clone();
                        }
                    }
                    (None, _) => {}
                    (Some(k), v) => {
                        let val = val_to_string(v).ok_or_else(|| {
                            emit_err(Format::Ini, format!("key {k} has a complex value"))
                        })?;
                        keys.push((k.clone(), val, String::new()));
                    }
                }
            }
            let i = index;
            index += 1;
            let is_default_first = i == 0 && name.eq_ignore_ascii_case("DEFAULT");
            if is_default_first && keys.is_empty() {
                continue;
            }
            if !first {
                out.push('\n');
            }
            first = false;
            comment_lines(&mut out, &section_comment, false);
            if !is_default_first {
                out.push('[');
                out.push_str(name);
                out.push_str("]\n");
            }
            let quoted: Vec<String> = keys
                .iter()
                .map(|(k, _, _)| {
                    if k.contains('"') || k.contains(['=', ':']) {
                        format!("`{k}`")
                    } else if k.contains('`') {
                        format!("\"\"\"{k}\"\"\"")
                    } else {
                        k.clone()
                    }
                })
                .collect();
            let align = quoted.iter().map(String::len).max().unwrap_or(0);
            for ((_, v, c), k) in keys.iter().zip(&quoted) {
                comment_lines(&mut out, c, true);
                let v = String::from_utf8_lossy(v);
                let v = if v.contains(['\n', '`']) {
                    format!("\"\"\"{v}\"\"\"")
                } else if v.contains(['#', ';']) {
                    format!("`{v}`")
                } else if v.trim().len() != v.len() {
                    format!("\"{v}\"")
                } else {
                    v.into_owned()
                };
                out.push_str(k);
                out.extend(std::iter::repeat_n(' ', align - k.len()));
                out.push_str(" = ");
                out.push_str(&v);
                out.push('\n');
            }
        }
    }
    Ok(out.into_bytes())
}
