//! go-yaml v3's typing of plain scalars (`null`, booleans, ints in every base, floats, times),
//! shared by the loader (what a scalar is) and the emitter (whether a string must be quoted).

use crate::sops::gofmt;
use crate::sops::tree::Node;

/// go-yaml v3 resolution of an untagged plain scalar.
pub fn resolve_plain(s: &str) -> Node {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Node::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Node::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Node::Float(f64::NEG_INFINITY),
        _ => {}
    }
    let first = s.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = gofmt::parse_float(s) {
            return Node::Float(f);
        }
        return Node::str(s);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Node::str(s);
    }
    if let Some(t) = gofmt::parse_time(s, false) {
        return Node::Time(t.rfc3339_nano());
    }
    let plain = s.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Node::Int(i);
    }
    if yaml_style_float(&plain) {
        if let Some(f) = gofmt::parse_float(&plain) {
            return Node::Float(f);
        }
    }
    Node::str(s)
}

/// `strconv.ParseInt(s, 0, 64)`, plus go-yaml's `0b`/`0o` handling (after `_` removal).
pub(super) fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(r) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, r)
    } else if let Some(r) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, r)
    } else if let Some(r) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, r)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some((mag as i64).wrapping_neg())
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
pub(super) fn yaml_style_float(s: &str) -> bool {
    let b = s.trim_start_matches(['+', '-']);
    if b.len() + 1 < s.len() {
        return false;
    }
    let (mant, exp) = match b.find(['e', 'E']) {
        Some(i) => (&b[..i], Some(&b[i + 1..])),
        None => (b, None),
    };
    let mant_ok = match mant.split_once('.') {
        Some(("", f)) => !f.is_empty() && f.bytes().all(|c| c.is_ascii_digit()),
        Some((i, f)) => {
            !i.is_empty()
                && i.bytes().all(|c| c.is_ascii_digit())
                && f.bytes().all(|c| c.is_ascii_digit())
        }
        None => !mant.is_empty() && mant.bytes().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit())
    });
    mant_ok && exp_ok
}
