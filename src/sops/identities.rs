//! The identities `decrypt` tries, in the contract's order: `-i FILE`s, `SOPS_AGE_KEY`,
//! `SOPS_AGE_KEY_FILE`, `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, then the host key.
//!
//! An OpenSSH ed25519 key yields two identities: its ssh-to-age conversion (X25519, what
//! sops-nix encrypts to) and age's native `ssh-ed25519` identity (what sops ≥ 3.10 and agenix
//! encrypt to), so a host opens its files whichever way they were made. A source that fails to
//! load is a warning, never an error: the next source may still open the file.
//!
//! The caller fills [`Sources`] (the CLI reads the environment variables); this module reads
//! only the files named there.

use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::hostkey::HostKey;
use crate::source::{self, Origin};

/// Largest identity file read.
const IDENTITY_LIMIT: u64 = 1 << 20;

/// One identity and what it answers to.
pub struct Entry {
    /// The age identity.
    pub identity: Box<dyn age::Identity + Send + Sync>,
    /// Its recipient (`age1…` or `ssh-ed25519 AAAA…`), for messages.
    pub recipient: String,
    /// Where it came from (a path or variable name), for messages.
    pub source: String,
}

/// Every identity loaded.
#[derive(Default)]
pub struct Identities {
    entries: Vec<Entry>,
}

/// Where identities come from, beyond explicit `-i` files. `Debug` omits the key material and
/// the passphrase.
#[derive(Clone, Default)]
pub struct Sources {
    /// `-i/--identity FILE`s, in order.
    pub explicit: Vec<PathBuf>,
    /// `SOPS_AGE_KEY` (key material).
    pub sops_age_key: Option<String>,
    /// `SOPS_AGE_KEY_FILE`.
    pub sops_age_key_file: Option<PathBuf>,
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`.
    pub ssh_key_file: Option<PathBuf>,
    /// The host key to try last (`None` to skip it).
    pub host_key: Option<PathBuf>,
    /// Passphrase for passphrase-protected ssh keys and age-encrypted identity files
    /// (`SSH_TO_AGE_PASSPHRASE`, `TSKEYCTL_IDENTITY_PASSPHRASE`).
    pub passphrase: Option<String>,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Sources")
            .field("explicit", &self.explicit)
            .field("sops_age_key", &redacted(&self.sops_age_key))
            .field("sops_age_key_file", &self.sops_age_key_file)
            .field("ssh_key_file", &self.ssh_key_file)
            .field("host_key", &self.host_key)
            .field("passphrase", &redacted(&self.passphrase))
            .finish()
    }
}

impl Identities {
    /// Loads from explicit sources.
    pub fn load_from(src: &Sources) -> (Identities, Vec<String>) {
        let mut ids = Identities::default();
        let mut warnings = Vec::new();
        let pass = src.passphrase.as_deref();
        for p in &src.explicit {
            if let Err(w) = ids.add_file(p, pass) {
                warnings.push(w);
            }
        }
        if let Some(k) = &src.sops_age_key {
            if let Err(w) = ids.add_age_text(k, "SOPS_AGE_KEY") {
                warnings.push(w);
            }
        }
        if let Some(p) = &src.sops_age_key_file {
            if let Err(w) = ids.add_file(p, pass) {
                warnings.push(format!("SOPS_AGE_KEY_FILE: {w}"));
            }
        }
        if let Some(p) = &src.ssh_key_file {
            if let Err(w) = ids.add_file(p, pass) {
                warnings.push(format!("SOPS_AGE_SSH_PRIVATE_KEY_FILE: {w}"));
            }
        }
        if let Some(p) = &src.host_key {
            if !src.explicit.contains(p) {
                match ids.add_file(p, pass) {
                    Err(w) if p.exists() => warnings.push(w),
                    _ => {}
                }
            }
        }
        (ids, warnings)
    }

    /// True when nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The loaded entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The recipients the loaded identities answer to.
    pub fn recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if !out.contains(&e.recipient) {
                out.push(e.recipient.clone());
            }
        }
        out
    }

    /// Adds an ssh host key: its converted X25519 identity and its native ssh identity.
    pub fn add_host_key(&mut self, key: &HostKey, source: &str) {
        if let (Some(id), Some(r)) = (key.x25519_identity(), key.public().age_recipient()) {
            self.entries.push(Entry {
                identity: Box::new(id),
                recipient: r,
                source: source.into(),
            });
        }
        if let Some(id) = key.ssh_identity() {
            self.entries.push(Entry {
                identity: Box::new(id),
                recipient: key.public().ssh_line(),
                source: source.into(),
            });
        }
    }

    /// Adds `AGE-SECRET-KEY-1…` identities from text (keys.txt lines; `#` comments).
    pub fn add_age_text(&mut self, text: &str, source: &str) -> Result<(), String> {
        let mut found = 0;
        let mut skipped = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            for word in line.split_whitespace() {
                if word.starts_with("AGE-SECRET-KEY-1") {
                    let id: age::x25519::Identity = word.parse().map_err(|_| {
                        format!("{source}: line {}: malformed age secret key", n + 1)
                    })?;
                    self.entries.push(Entry {
                        recipient: id.to_public().to_string(),
                        identity: Box::new(id),
                        source: source.into(),
                    });
                    found += 1;
                } else if word.starts_with("AGE-") {
                    skipped.push(format!(
                        "line {}: {} identities are not supported",
                        n + 1,
                        word.split('1').next().unwrap_or("AGE-")
                    ));
                } else {
                    return Err(format!(
                        "{source}: line {}: not an age identity (expected AGE-SECRET-KEY-1…)",
                        n + 1
                    ));
                }
            }
        }
        if found == 0 {
            let note = if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", skipped.join("; "))
            };
            return Err(format!("{source}: no usable age identity{note}"));
        }
        Ok(())
    }

    /// Adds the identities of a file: an OpenSSH private key, an age identity file, or an
    /// age-encrypted (passphrase) identity file.
    pub fn add_file(&mut self, path: &Path, passphrase: Option<&str>) -> Result<(), String> {
        let origin = Origin::File(path.to_path_buf());
        let data = source::read_limited(&origin, IDENTITY_LIMIT, "an identity file")
            .map_err(|e| e.to_string())?;
        self.add_bytes(&origin, &data, passphrase)
    }

    /// Adds identities from the bytes of an identity file.
    pub fn add_bytes(
        &mut self,
        origin: &Origin,
        data: &[u8],
        passphrase: Option<&str>,
    ) -> Result<(), String> {
        let name = origin.to_string();
        let text = std::str::from_utf8(data);
        if let Ok(t) = text {
            if t.contains("-----BEGIN OPENSSH PRIVATE KEY-----") {
                let key = HostKey::from_openssh(origin, data, passphrase.map(str::as_bytes))
                    .map_err(|e| e.to_string())?;
                self.add_host_key(&key, &name);
                return Ok(());
            }
        }
        let trimmed = trim_ascii_start(data);
        if trimmed.starts_with(b"age-encryption.org/")
            || trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        {
            // Decrypt now so the recipients are known and the passphrase is checked once.
            let mut plain = Zeroizing::new(Vec::new());
            let dec = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(trimmed))
                .map_err(|e| format!("{name}: {e}"))?;
            let Some(p) = passphrase else {
                return Err(format!(
                    "{name}: passphrase-protected identity file; set TSKEYCTL_IDENTITY_PASSPHRASE"
                ));
            };
            let mut scrypt = age::scrypt::Identity::new(SecretString::from(p.to_string()));
            // sops's own test identity uses logN 18; allow up to 2^20 like age's CLI does.
            scrypt.set_max_work_factor(20);
            let mut r = dec
                .decrypt(std::iter::once(&scrypt as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::ExcessiveWork { required, .. } => {
                        format!("{name}: identity file needs scrypt work factor 2^{required}, more than 2^20")
                    }
                    _ => format!("{name}: wrong passphrase for the identity file"),
                })?;
            r.read_to_end(&mut plain)
                .map_err(|e| format!("{name}: {e}"))?;
            // Borrowed, not copied: `plain` is zeroized on drop whatever the outcome.
            let inner = std::str::from_utf8(&plain)
                .map_err(|_| format!("{name}: decrypted identity file is not text"))?;
            return self.add_age_text(inner, &name);
        }
        match text {
            Ok(t) => self.add_age_text(t, &name),
            Err(_) => Err(format!("{name}: not an identity file (binary data)")),
        }
    }
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_debug_hides_key_and_passphrase() {
        let s = Sources {
            sops_age_key: Some("AGE-SECRET-KEY-1SECRETSECRET".into()),
            passphrase: Some("hunter2-passphrase".into()),
            ..Sources::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("SECRETSECRET") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("[REDACTED]"), "{d}");
    }
}
