//! Which leaves are encrypted: the `*_suffix` / `*_regex` / `*_comment_regex` rule of a file
//! (`sops.go: Tree.shouldBeEncrypted`). At most one rule is set; with none, sops applies
//! `unencrypted_suffix: _unencrypted`.

use regex::Regex;

/// The crypt rule of one file.
#[derive(Clone, Debug, Default)]
pub struct CryptRules {
    /// `unencrypted_suffix`.
    pub unencrypted_suffix: Option<String>,
    /// `encrypted_suffix`.
    pub encrypted_suffix: Option<String>,
    /// `unencrypted_regex`.
    pub unencrypted_regex: Option<Regex>,
    /// `encrypted_regex`.
    pub encrypted_regex: Option<Regex>,
    /// `unencrypted_comment_regex`.
    pub unencrypted_comment_regex: Option<Regex>,
    /// `encrypted_comment_regex`.
    pub encrypted_comment_regex: Option<Regex>,
}

impl CryptRules {
    /// How many rules are set (sops allows at most one).
    pub fn count(&self) -> usize {
        [
            self.unencrypted_suffix.is_some(),
            self.encrypted_suffix.is_some(),
            self.unencrypted_regex.is_some(),
            self.encrypted_regex.is_some(),
            self.unencrypted_comment_regex.is_some(),
            self.encrypted_comment_regex.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }

    /// Applies the sops default when no rule is set.
    pub fn with_default(mut self) -> Self {
        if self.count() == 0 {
            self.unencrypted_suffix = Some("_unencrypted".into());
        }
        self
    }

    /// `shouldBeEncrypted(path, commentsStack, isComment)`.
    pub fn should_encrypt(&self, path: &[String], stack: &[Vec<String>], is_comment: bool) -> bool {
        let mut enc = true;
        if let Some(s) = self.unencrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
            if path.iter().any(|p| p.ends_with(s)) {
                enc = false;
            }
        }
        if let Some(s) = self.encrypted_suffix.as_deref().filter(|s| !s.is_empty()) {
            enc = path.iter().any(|p| p.ends_with(s));
        }
        if let Some(r) = &self.unencrypted_regex {
            if path.iter().any(|p| r.is_match(p)) {
                enc = false;
            }
        }
        if let Some(r) = &self.encrypted_regex {
            enc = path.iter().any(|p| r.is_match(p));
        }
        if let Some(r) = &self.unencrypted_comment_regex {
            if stack.iter().flatten().any(|c| r.is_match(c)) {
                enc = false;
            }
        }
        if let Some(r) = &self.encrypted_comment_regex {
            enc = false;
            let last = stack.len().saturating_sub(1);
            let last_len = stack.last().map(Vec::len).unwrap_or(0);
            'outer: for (i, cs) in stack.iter().enumerate() {
                for (j, c) in cs.iter().enumerate() {
                    if is_comment && i == last && j + 1 == last_len {
                        continue;
                    }
                    if r.is_match(c) {
                        enc = true;
                        break 'outer;
                    }
                }
            }
        }
        enc
    }
}
