//! Go's text forms of scalars, which sops writes into MACs, ciphertexts and output.
//!
//! sops hashes and encrypts `strconv.FormatFloat(f,'f',-1,64)`, go-yaml prints floats with
//! `'g'`, encoding/json with `'f'` or `'e'` by magnitude, and timestamps are RFC3339Nano. Byte
//! equality with the real sops needs these exact forms; they are built here from Rust's shortest
//! round-trip digits (the same digits Go's shortest formatting picks).

/// Shortest round-trip decimal digits and decimal point position: `f = 0.d1d2… × 10^dp`.
fn digits(f: f64) -> (String, i32) {
    // `{:e}` gives the shortest round-trip digits: "1.234568e9", "5e-7".
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let d: String = mant.chars().filter(|c| *c != '.').collect();
    let d = d.trim_end_matches('0').to_string();
    if d.is_empty() {
        return ("0".into(), 1);
    }
    (d, exp + 1)
}

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

fn sign(f: f64) -> &'static str {
    if f.is_sign_negative() { "-" } else { "" }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`.
pub fn format_f(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.into();
    }
    let (d, dp) = digits(f);
    let mut out = String::from(sign(f));
    if f == 0.0 {
        out.push('0');
        return out;
    }
    if dp <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-dp) as usize));
        out.push_str(&d);
    } else if dp as usize >= d.len() {
        out.push_str(&d);
        out.extend(std::iter::repeat_n('0', dp as usize - d.len()));
    } else {
        out.push_str(&d[..dp as usize]);
        out.push('.');
        out.push_str(&d[dp as usize..]);
    }
    out
}

/// `%e` with shortest digits: `1.234568e+09`.
fn format_e(f: f64) -> String {
    let (d, dp) = digits(f);
    let mut out = String::from(sign(f));
    out.push_str(&d[..1]);
    if d.len() > 1 {
        out.push('.');
        out.push_str(&d[1..]);
    }
    let exp = if f == 0.0 { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`.
pub fn format_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.into();
    }
    if f == 0.0 {
        return format!("{}0", sign(f));
    }
    // Shortest 'g': %e when the exponent is < -4 or >= 6 (Go sets eprec = 6 when shortest).
    let (_, dp) = digits(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        return format_e(f);
    }
    format_f(f)
}

/// go-yaml's float text: `'g'` with `.inf`, `-.inf`, `.nan`.
pub fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f == f64::INFINITY {
        ".inf".into()
    } else if f == f64::NEG_INFINITY {
        "-.inf".into()
    } else {
        format_g(f)
    }
}

/// encoding/json's float text (`None` for NaN/Inf, which json.Marshal refuses).
pub fn json_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_e(f);
        // Go cleans e-09 to e-9 (only for negative exponents with a leading zero).
        if let Some(pos) = s.find("e-0") {
            let mut t = s[..pos + 2].to_string();
            t.push_str(&s[pos + 3..]);
            return Some(t);
        }
        return Some(s);
    }
    Some(format_f(f))
}

/// `strconv.ParseBool`.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `strconv.ParseFloat(s, 64)` for the forms that appear in sops files.
pub fn parse_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let neg = s.starts_with('-');
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" && s.len() == 3 {
        return Some(f64::NAN);
    }
    if s.contains('_')
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// A calendar time as Go's `time.Time` would print it.
#[derive(Clone, Debug, PartialEq)]
pub struct GoTime {
    y: i64,
    mo: u32,
    d: u32,
    h: u32,
    mi: u32,
    s: u32,
    nanos: u32,
    /// Offset east of UTC in seconds.
    offset: i32,
}

impl GoTime {
    /// RFC3339Nano text.
    pub fn rfc3339_nano(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.y, self.mo, self.d, self.h, self.mi, self.s
        );
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(frac.trim_end_matches('0'));
        }
        self.push_zone(&mut out);
        out
    }

    /// RFC3339 text (seconds precision), the MAC's AAD form.
    pub fn rfc3339(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.y, self.mo, self.d, self.h, self.mi, self.s
        );
        self.push_zone(&mut out);
        out
    }

    fn push_zone(&self, out: &mut String) {
        if self.offset == 0 {
            out.push('Z');
        } else {
            let a = self.offset.unsigned_abs();
            out.push(if self.offset < 0 { '-' } else { '+' });
            out.push_str(&format!("{:02}:{:02}", a / 3600, (a / 60) % 60));
        }
    }
}

fn days_in(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    /// 1..=max digits (Go's non-padded layout fields accept 1 or 2 digits).
    fn num(&mut self, min: usize, max: usize) -> Option<u32> {
        let start = self.i;
        while self.i < self.b.len() && self.i - start < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - start < min {
            return None;
        }
        std::str::from_utf8(&self.b[start..self.i])
            .ok()?
            .parse()
            .ok()
    }
    fn lit(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

/// Parses the timestamp forms go-yaml v3 resolves for unquoted scalars
/// (`2006-1-2T15:4:5.999999999Z07:00`, lowercase `t`, `2006-1-2 15:4:5.999999999`, `2006-1-2`)
/// and the RFC3339 form sops decrypts (`strict` = two-digit fields, `T` and a zone required).
pub fn parse_time(s: &str, strict: bool) -> Option<GoTime> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let w = if strict { 2 } else { 1 };
    let mut c = Cursor { b, i: 0 };
    let y = c.num(4, 4)? as i64;
    c.lit(b'-')?;
    let mo = c.num(w, 2)?;
    c.lit(b'-')?;
    let d = c.num(w, 2)?;
    let mut t = GoTime {
        y,
        mo,
        d,
        h: 0,
        mi: 0,
        s: 0,
        nanos: 0,
        offset: 0,
    };
    if !(1..=12).contains(&mo) || d < 1 || d > days_in(y, mo) {
        return None;
    }
    if c.done() {
        return (!strict).then_some(t);
    }
    let sep = *b.get(c.i)?;
    let zoned = match sep {
        b'T' => true,
        b't' if !strict => true,
        b' ' if !strict => false,
        _ => return None,
    };
    c.i += 1;
    t.h = c.num(w, 2)?;
    c.lit(b':')?;
    t.mi = c.num(w, 2)?;
    c.lit(b':')?;
    t.s = c.num(w, 2)?;
    if t.h > 23 || t.mi > 59 || t.s > 59 {
        return None;
    }
    if c.lit(b'.').is_some() {
        let start = c.i;
        while c.i < b.len() && b[c.i].is_ascii_digit() {
            c.i += 1;
        }
        let frac = &s[start..c.i];
        if frac.is_empty() {
            return None;
        }
        let mut n = String::from(&frac[..frac.len().min(9)]);
        while n.len() < 9 {
            n.push('0');
        }
        t.nanos = n.parse().ok()?;
    }
    if !zoned {
        return c.done().then_some(t);
    }
    match b.get(c.i) {
        Some(b'Z') => {
            c.i += 1;
        }
        Some(&sg @ (b'+' | b'-')) => {
            c.i += 1;
            let hh = c.num(2, 2)?;
            c.lit(b':')?;
            let mm = c.num(2, 2)?;
            if hh > 23 || mm > 59 {
                return None;
            }
            let off = (hh * 3600 + mm * 60) as i32;
            t.offset = if sg == b'-' { -off } else { off };
        }
        _ => return None,
    }
    c.done().then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_f(1234568000.0), "1234568000");
        assert_eq!(format_f(1.0), "1");
        assert_eq!(format_f(0.000001), "0.000001");
        assert_eq!(format_f(1e21), "1000000000000000000000");
        assert_eq!(format_f(-2.5), "-2.5");
        assert_eq!(format_f(f64::INFINITY), "+Inf");
        assert_eq!(format_g(1234568000.0), "1.234568e+09");
        assert_eq!(format_g(1e6), "1e+06");
        assert_eq!(format_g(123456.0), "123456");
        assert_eq!(format_g(2.5), "2.5");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(0.00001), "1e-05");
        assert_eq!(format_g(0.0), "0");
        assert_eq!(json_float(1e21).as_deref(), Some("1e+21"));
        assert_eq!(json_float(1e-7).as_deref(), Some("1e-7"));
        assert_eq!(json_float(5.0).as_deref(), Some("5"));
        assert_eq!(json_float(123456789.0).as_deref(), Some("123456789"));
    }

    #[test]
    fn times_like_go() {
        let t = parse_time("2024-01-01", false).map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2024-01-01T00:00:00Z"));
        let t = parse_time("2001-12-14t21:59:43.10-05:00", false).map(|t| t.rfc3339_nano());
        assert_eq!(t.as_deref(), Some("2001-12-14T21:59:43.1-05:00"));
        assert!(parse_time("2024-02-30", false).is_none());
        assert!(parse_time("2024-1-1", true).is_none());
    }
}
