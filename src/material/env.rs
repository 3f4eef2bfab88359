//! Env files as credentials (`KEY=VALUE` lines, as systemd `EnvironmentFile=` and
//! tailscale-manager write them), read strictly.
//!
//! Blank lines and `#` comments are skipped, an `export ` prefix is allowed, and a value may be
//! wrapped in one pair of single or double quotes. Everything a shell or systemd would read
//! differently from us is refused rather than guessed: a variable given twice (which one would
//! win?), an unbalanced quote, text after the closing quote (`TS_AUTHKEY="…"extra`), escape
//! sequences, and control characters. Errors cite the line and the variable name, never a value.

use zeroize::Zeroizing;

use super::MaterialError;

/// Parses env-file text into `(name, value)` pairs in file order.
pub fn parse_env(
    origin: &str,
    text: &[u8],
) -> Result<Vec<(String, Zeroizing<String>)>, MaterialError> {
    let text = std::str::from_utf8(text).map_err(|_| MaterialError::NotText {
        origin: origin.into(),
    })?;
    let mut out: Vec<(String, Zeroizing<String>)> = Vec::new();
    let mut lines: Vec<usize> = Vec::new();
    for (n, raw) in text.split('\n').enumerate() {
        let line_no = n + 1;
        let bad = |problem: String| MaterialError::EnvLine {
            origin: origin.into(),
            line: line_no,
            problem,
        };
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = raw.trim_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(i) = line.find(|c: char| c.is_control() && c != '\t') {
            let what = match line[i..].chars().next() {
                Some('\0') => "a NUL byte",
                Some('\x1b') => "an escape sequence",
                Some('\r') => "a carriage return",
                _ => "a control character",
            };
            return Err(bad(format!("contains {what}")));
        }
        let line = line
            .strip_prefix("export ")
            .map(|l| l.trim_start_matches([' ', '\t']))
            .unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            return Err(MaterialError::BadEnvLine {
                origin: origin.into(),
                line: line_no,
            });
        };
        let k = k.trim_end_matches([' ', '\t']);
        if !is_var_name(k) {
            return Err(MaterialError::BadEnvLine {
                origin: origin.into(),
                line: line_no,
            });
        }
        let value =
            unquote(v.trim_start_matches([' ', '\t'])).map_err(|p| bad(format!("{k}: {p}")))?;
        if let Some(i) = out.iter().position(|(o, _)| o.eq_ignore_ascii_case(k)) {
            return Err(bad(format!(
                "{k} is set again (first on line {}); a variable may be given once",
                lines[i]
            )));
        }
        out.push((k.to_owned(), Zeroizing::new(value.to_owned())));
        lines.push(line_no);
    }
    Ok(out)
}

/// The value of `KEY=value`, `KEY="value"` or `KEY='value'`.
fn unquote(v: &str) -> Result<&str, &'static str> {
    let Some(q @ ('"' | '\'')) = v.chars().next() else {
        if v.contains(['"', '\'']) {
            return Err("a quote inside an unquoted value (unbalanced quotes)");
        }
        if v.contains('\\') {
            return Err("a backslash escape (escape sequences are not supported)");
        }
        return Ok(v);
    };
    let inner = &v[1..];
    let Some(end) = inner.find(q) else {
        return Err("unbalanced quotes: no closing quote");
    };
    if !inner[end + 1..].trim_matches([' ', '\t']).is_empty() {
        return Err("text after the closing quote");
    }
    let value = &inner[..end];
    if q == '"' && value.contains(['\\', '$', '`']) {
        return Err(
            "a backslash, $ or ` inside double quotes (escapes and expansions are not supported)",
        );
    }
    Ok(value)
}

/// A shell variable name: ASCII letters, digits and `_`, not starting with a digit (the names an
/// env file may hold and `--env-name` may give).
pub fn is_var_name(k: &str) -> bool {
    k.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse_env("c.env", text.as_bytes())
            .map(|_| ())
            .expect_err(text)
            .to_string()
    }

    #[test]
    fn accepts_the_usual_forms() {
        let text = "# tailscale-manager\r\n\r\nexport A=1\nB = \"x y\"\nC='q\"r'\nD=\n";
        let e = parse_env("c.env", text.as_bytes()).expect("parse");
        let got: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("A", "1"), ("B", "x y"), ("C", "q\"r"), ("D", "")]);
    }

    #[test]
    fn refuses_what_a_shell_would_read_differently() {
        let cases = [
            ("A=1\na=2\n", "c.env:2: a is set again (first on line 1)"),
            ("A=\"x\n", "c.env:1: A: unbalanced quotes: no closing quote"),
            ("A='x\n", "c.env:1: A: unbalanced quotes: no closing quote"),
            ("A=x\"\n", "c.env:1: A: a quote inside an unquoted value"),
            ("A=\"x\"extra\n", "c.env:1: A: text after the closing quote"),
            ("A=\"x\\ny\"\n", "c.env:1: A: a backslash, $ or `"),
            ("A=x\\n\n", "c.env:1: A: a backslash escape"),
            ("A=x\0y\n", "c.env:1: contains a NUL byte"),
            ("A=x\x1b[2Jy\n", "c.env:1: contains an escape sequence"),
            ("A=x\ry\n", "c.env:1: contains a carriage return"),
            ("1A=x\n", "c.env:1: not a KEY=VALUE line"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }
}
