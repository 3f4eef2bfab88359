//! The identities `decrypt` tries, all loaded and all tried, in the contract's order (sops
//! 3.11's: its ssh keys first, then its age key sources): `-i FILE`s,
//! `SOPS_AGE_SSH_PRIVATE_KEY_FILE`, `~/.ssh/id_ed25519`, `SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`,
//! `SOPS_AGE_KEY_CMD` (its standard output), the default `keys.txt`, then the host key. A source
//! that is named (a variable, `-i`) and cannot be used is reported; the default places
//! (`~/.ssh/id_ed25519`, `keys.txt`) are skipped silently when missing, as sops does.
//!
//! An OpenSSH ed25519 key yields two identities: its ssh-to-age conversion (X25519, what
//! sops-nix encrypts to) and age's native `ssh-ed25519` identity (what sops ≥ 3.10 and agenix
//! encrypt to), so a host opens its files whichever way they were made. An explicit `-i FILE`
//! that cannot be used is an error that says why (missing: 66; an RSA, ECDSA or PKCS#8 key, a
//! public key, an empty or garbled file: 65 naming the type found; a passphrase: 77); the other
//! sources are warnings, since the next source may still open the file.
//!
//! The caller fills [`Sources`] (the CLI reads the environment variables); this module reads
//! only the files named there.

use std::io::Read;
use std::path::{Path, PathBuf};

use age::secrecy::SecretString;
use zeroize::Zeroizing;

use crate::hostkey::{HostKey, KeyError};
use crate::source::{self, Origin, SourceError};

/// Why an identity file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Missing, unreadable or too large.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// An ssh key that is not a usable ed25519 private key (type named), or a damaged one.
    #[error(transparent)]
    Key(KeyError),
    /// A passphrase-protected key or identity file, and no passphrase.
    #[error("{origin}: {what} is passphrase-protected; {hint}")]
    Passphrase {
        origin: String,
        what: &'static str,
        hint: &'static str,
    },
    /// The passphrase did not open an age-encrypted identity file.
    #[error("{origin}: wrong passphrase for the identity file")]
    WrongPassphrase { origin: String },
    /// Not an identity: what was found instead.
    #[error("{origin}: {problem}")]
    NotIdentity { origin: String, problem: String },
    /// `SOPS_AGE_KEY_CMD` could not be run or failed (the command line is never printed: it
    /// may hold a secret; only its program name).
    #[error("SOPS_AGE_KEY_CMD: {problem}")]
    Command { problem: String },
}

impl IdentityError {
    /// True when a passphrase is missing or wrong (exit 77); everything else but a missing file
    /// is bad data (65).
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            IdentityError::Passphrase { .. }
                | IdentityError::WrongPassphrase { .. }
                | IdentityError::Key(KeyError::WrongPassphrase { .. })
        )
    }
}

/// Where the passphrase comes from, for commands that read identities from the environment.
const PASSPHRASE_ENV_HINT: &str = "set TSKEYCTL_IDENTITY_PASSPHRASE (or SSH_TO_AGE_PASSPHRASE)";
/// For callers with no passphrase source (install).
const NO_PASSPHRASE_HINT: &str = "this command cannot use passphrase-protected keys";

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
    /// What each source gave ("SOPS_AGE_KEY_CMD: 1 identity", "…/keys.txt: not found,
    /// skipped"): names and counts, never values, for `-v`.
    report: Vec<String>,
    /// Keys loaded so far (an ssh key counts once, though it gives two identities).
    keys: usize,
    /// Lines skipped in sources that still gave a key (an unusable plugin identity), for the
    /// warnings.
    notes: Vec<String>,
    /// Whether loaded from the CLI's sources (for "identities tried: (none: …)"); `None` when
    /// built by hand.
    cli: Option<bool>,
}

/// What gives `install` an identity.
const MANIFEST_NONE_HINT: &str =
    "no key from the manifest's sshKeyPaths / ageKeyFile could be loaded";

/// Where identities come from, beyond explicit `-i` files. `Debug` omits the key material and
/// the passphrase.
#[derive(Clone, Default)]
pub struct Sources {
    /// `-i/--identity FILE`s, in order.
    pub explicit: Vec<PathBuf>,
    /// `SOPS_AGE_KEY` (key material).
    pub sops_age_key: Option<Zeroizing<String>>,
    /// `SOPS_AGE_KEY_FILE`.
    pub sops_age_key_file: Option<PathBuf>,
    /// `SOPS_AGE_SSH_PRIVATE_KEY_FILE`.
    pub ssh_key_file: Option<PathBuf>,
    /// sops's ssh fallback, `~/.ssh/id_ed25519` (skipped silently when missing).
    pub ssh_default: Option<PathBuf>,
    /// `SOPS_AGE_KEY_CMD`: a command line (split into words like sops, run without a shell)
    /// whose standard output holds identities.
    pub key_cmd: Option<String>,
    /// The default identity file, `$XDG_CONFIG_HOME/sops/age/keys.txt` (skipped silently when
    /// missing).
    pub default_key_file: Option<PathBuf>,
    /// The host key to try last (`None` to skip it).
    pub host_key: Option<PathBuf>,
    /// Passphrase for passphrase-protected ssh keys and age-encrypted identity files
    /// (`SSH_TO_AGE_PASSPHRASE`, `TSKEYCTL_IDENTITY_PASSPHRASE`).
    pub passphrase: Option<String>,
    /// Whether these are the CLI's sources (`-i` and the environment), so messages may name
    /// `-i`, `SOPS_AGE_KEY_FILE` and the passphrase variables; otherwise (`install`) they name
    /// the manifest's `sshKeyPaths` / `ageKeyFile`.
    pub cli: bool,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |o: &Option<String>| o.as_ref().map(|_| "[REDACTED]");
        f.debug_struct("Sources")
            .field("explicit", &self.explicit)
            .field(
                "sops_age_key",
                &self.sops_age_key.as_ref().map(|_| "[REDACTED]"),
            )
            .field("sops_age_key_file", &self.sops_age_key_file)
            .field("ssh_key_file", &self.ssh_key_file)
            .field("ssh_default", &self.ssh_default)
            .field("key_cmd", &self.key_cmd.as_ref().map(|_| "[REDACTED]"))
            .field("default_key_file", &self.default_key_file)
            .field("host_key", &self.host_key)
            .field("passphrase", &redacted(&self.passphrase))
            .field("cli", &self.cli)
            .finish()
    }
}

/// What to say about the host key when no identity was loaded: "run as root" only when that is
/// the cause (the key is there, the caller is not root and may not read it).
fn host_key_hint(key: &Path) -> String {
    match std::fs::File::open(key) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            if nix::unistd::geteuid().is_root() {
                format!("; {} is not readable: {e}", key.display())
            } else {
                format!(", or run as root so {} is readable", key.display())
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("; this host has no {}", key.display())
        }
        Err(e) => format!("; {}: {e}", key.display()),
        Ok(_) => String::new(),
    }
}

impl Identities {
    /// Loads from explicit sources; every failure is a warning (sops-nix's lenient rule, for
    /// `install`).
    pub fn load_from(src: &Sources) -> (Identities, Vec<String>) {
        let mut ids = Identities::for_sources(src);
        let mut warnings = Vec::new();
        for p in &src.explicit {
            let before = ids.keys;
            match ids.add_file_from(p, src) {
                Ok(()) => ids.loaded(&p.display().to_string(), before),
                Err(w) => warnings.push(w.to_string()),
            }
        }
        ids.add_implicit(src, &mut warnings);
        warnings.append(&mut ids.notes);
        (ids, warnings)
    }

    /// Loads from explicit sources; an explicit file that cannot be used is an error.
    pub fn load_strict(src: &Sources) -> Result<(Identities, Vec<String>), IdentityError> {
        let mut ids = Identities::for_sources(src);
        let mut warnings = Vec::new();
        for p in &src.explicit {
            let before = ids.keys;
            ids.add_file_from(p, src)?;
            ids.loaded(&format!("-i {}", p.display()), before);
        }
        ids.add_implicit(src, &mut warnings);
        warnings.append(&mut ids.notes);
        Ok((ids, warnings))
    }

    fn for_sources(src: &Sources) -> Identities {
        Identities {
            entries: Vec::new(),
            report: Vec::new(),
            keys: 0,
            notes: Vec::new(),
            cli: Some(src.cli),
        }
    }

    /// The identities tried, for "no identity can decrypt" messages: the recipients, or when
    /// none was loaded, what would have provided one (naming only this command's sources).
    pub fn tried(&self) -> Vec<String> {
        let r = self.recipients();
        if !r.is_empty() {
            return r;
        }
        vec![match self.cli {
            Some(true) => format!(
                "(none: pass -i KEY or set SOPS_AGE_KEY_FILE{})",
                host_key_hint(Path::new(crate::hostkey::DEFAULT_KEY))
            ),
            Some(false) => format!("(none: {MANIFEST_NONE_HINT})"),
            None => "(none)".into(),
        }]
    }

    fn add_file_from(&mut self, p: &Path, src: &Sources) -> Result<(), IdentityError> {
        let hint = if src.cli {
            PASSPHRASE_ENV_HINT
        } else {
            NO_PASSPHRASE_HINT
        };
        self.add_file(p, src.passphrase.as_deref())
            .map_err(|e| match e {
                IdentityError::Key(KeyError::PassphraseRequired { origin }) => {
                    IdentityError::Passphrase {
                        origin: origin.to_string(),
                        what: "private key",
                        hint,
                    }
                }
                IdentityError::Passphrase { origin, what, .. } => {
                    IdentityError::Passphrase { origin, what, hint }
                }
                other => other,
            })
    }

    /// The environment's sources, the default places and the host key: warnings only (the
    /// next source may still open the file).
    fn add_implicit(&mut self, src: &Sources, warnings: &mut Vec<String>) {
        const SSH_FILE: &str = "SOPS_AGE_SSH_PRIVATE_KEY_FILE";
        if let Some(p) = &src.ssh_key_file {
            self.try_source(SSH_FILE, warnings, |ids| ids.add_file_from(p, src));
        }
        if let Some(p) = &src.ssh_default {
            self.add_default(p, src, warnings);
        }
        if let Some(k) = &src.sops_age_key {
            self.try_source("SOPS_AGE_KEY", warnings, |ids| {
                ids.add_age_text(k, "SOPS_AGE_KEY")
            });
        }
        if let Some(p) = &src.sops_age_key_file {
            self.try_source("SOPS_AGE_KEY_FILE", warnings, |ids| {
                ids.add_file_from(p, src)
            });
        }
        if let Some(c) = &src.key_cmd {
            self.try_source(KEY_CMD, warnings, |ids| {
                let out = run_key_cmd(c)?;
                let text = std::str::from_utf8(&out).map_err(|_| IdentityError::NotIdentity {
                    origin: KEY_CMD.into(),
                    problem: "its standard output is not text".into(),
                })?;
                ids.add_age_text(text, KEY_CMD)
            });
        }
        if let Some(p) = &src.default_key_file {
            self.add_default(p, src, warnings);
        }
        if let Some(p) = &src.host_key {
            if !src.explicit.contains(p) {
                self.add_default(p, src, warnings);
            }
        }
    }

    /// A default place: skipped silently when nothing is there, reported when something is
    /// there and cannot be used.
    fn add_default(&mut self, p: &Path, src: &Sources, warnings: &mut Vec<String>) {
        let name = p.display().to_string();
        if std::fs::symlink_metadata(p).is_err() {
            self.report.push(format!("{name}: not found, skipped"));
            return;
        }
        self.try_source(&name, warnings, |ids| ids.add_file_from(p, src));
    }

    /// Loads one source, records what it gave (for `-v`) and turns its failure into a warning.
    fn try_source(
        &mut self,
        name: &str,
        warnings: &mut Vec<String>,
        load: impl FnOnce(&mut Self) -> Result<(), IdentityError>,
    ) {
        let before = self.keys;
        match load(self) {
            Ok(()) => self.loaded(name, before),
            Err(e) => {
                self.report.push(format!("{name}: unusable"));
                let msg = e.to_string();
                warnings.push(if msg.starts_with(name) {
                    msg
                } else {
                    format!("{name}: {msg}")
                });
            }
        }
    }

    /// Records how many keys a source gave.
    fn loaded(&mut self, name: &str, before: usize) {
        let n = self.keys - before;
        self.report
            .push(format!("{name}: {n} key{}", if n == 1 { "" } else { "s" }));
    }

    /// What each source gave, in the order tried: names and counts, never values.
    pub fn report(&self) -> &[String] {
        &self.report
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
        self.keys += 1;
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
    pub fn add_age_text(&mut self, text: &str, source: &str) -> Result<(), IdentityError> {
        let not_identity = |problem: String| IdentityError::NotIdentity {
            origin: source.into(),
            problem,
        };
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
                        not_identity(format!("line {}: malformed age secret key", n + 1))
                    })?;
                    self.entries.push(Entry {
                        recipient: id.to_public().to_string(),
                        identity: Box::new(id),
                        source: source.into(),
                    });
                    found += 1;
                    self.keys += 1;
                } else if word.starts_with("AGE-PLUGIN-") {
                    // An unusable plugin identity (its plugin not installed here) does not stop
                    // the other keys of the file from loading; it is reported.
                    match self.add_plugin_identity(word, source) {
                        Ok(()) => {
                            found += 1;
                            self.keys += 1;
                        }
                        Err(e) => skipped.push(format!("line {}: {e}", n + 1)),
                    }
                } else if word.starts_with("AGE-") {
                    let kind: String = word
                        .split('1')
                        .next()
                        .unwrap_or("AGE-")
                        .chars()
                        .take(40)
                        .collect();
                    skipped.push(format!(
                        "line {}: {kind} identities are not supported",
                        n + 1
                    ));
                } else {
                    return Err(not_identity(format!(
                        "line {}: found {}, not an age identity (expected AGE-SECRET-KEY-1… or an \
OpenSSH ed25519 private key)",
                        n + 1,
                        describe_line(line)
                    )));
                }
            }
        }
        if found == 0 {
            let note = if skipped.is_empty() {
                String::new()
            } else {
                format!(" ({})", crate::log::bounded::list(&skipped, "; "))
            };
            return Err(not_identity(format!("no usable age identity{note}")));
        }
        if !skipped.is_empty() {
            self.notes.push(format!(
                "{source}: {}",
                crate::log::bounded::list(&skipped, "; ")
            ));
        }
        Ok(())
    }

    /// Adds an `AGE-PLUGIN-<NAME>-1…` identity: decrypting runs `age-plugin-<name>` from PATH
    /// (a YubiKey or TPM plugin, say) through age's plugin protocol.
    fn add_plugin_identity(&mut self, word: &str, source: &str) -> Result<(), String> {
        let id: age::plugin::Identity = word
            .parse()
            .map_err(|e| format!("malformed age plugin identity ({e})"))?;
        let binary = format!("age-plugin-{}", id.plugin());
        let plugin =
            age::plugin::IdentityPluginV1::new(id.plugin(), std::slice::from_ref(&id), PluginUi)
                .map_err(|_| format!("{binary} not found on PATH (needed for its identity)"))?;
        self.entries.push(Entry {
            identity: Box::new(plugin),
            recipient: format!("an {binary} identity"),
            source: source.into(),
        });
        Ok(())
    }

    /// Adds the identities of a file: an OpenSSH private key, an age identity file, or an
    /// age-encrypted (passphrase) identity file.
    pub fn add_file(&mut self, path: &Path, passphrase: Option<&str>) -> Result<(), IdentityError> {
        let origin = Origin::File(path.to_path_buf());
        let data = source::read_limited(&origin, IDENTITY_LIMIT, "an identity file")?;
        self.add_bytes(&origin, &data, passphrase)
    }

    /// Adds identities from the bytes of an identity file.
    pub fn add_bytes(
        &mut self,
        origin: &Origin,
        data: &[u8],
        passphrase: Option<&str>,
    ) -> Result<(), IdentityError> {
        let name = origin.to_string();
        let not_identity = |problem: String| IdentityError::NotIdentity {
            origin: name.clone(),
            problem,
        };
        let trimmed = trim_ascii_start(data);
        if trimmed.is_empty() {
            return Err(not_identity(
                "empty file, expected an OpenSSH ed25519 private key or age identity".into(),
            ));
        }
        let text = std::str::from_utf8(data);
        if let Ok(t) = text {
            // Any PEM private key goes to the ssh parser, which names RSA, ECDSA, DSA, PKCS#8
            // and FIDO keys for what they are.
            if t.contains("-----BEGIN ") && t.contains("PRIVATE KEY-----") {
                let key = HostKey::from_openssh(origin, data, passphrase.map(str::as_bytes))
                    .map_err(IdentityError::Key)?;
                self.add_host_key(&key, &name);
                return Ok(());
            }
        }
        if trimmed.starts_with(b"age-encryption.org/")
            || trimmed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----")
        {
            // Decrypt now so the recipients are known and the passphrase is checked once.
            let mut plain = Zeroizing::new(Vec::new());
            let dec = age::Decryptor::new_buffered(age::armor::ArmoredReader::new(trimmed))
                .map_err(|e| not_identity(format!("damaged age-encrypted identity file: {e}")))?;
            if !dec.is_scrypt() {
                return Err(not_identity(
                    "an age file encrypted to keys, not a passphrase-protected identity file"
                        .into(),
                ));
            }
            let Some(p) = passphrase else {
                return Err(IdentityError::Passphrase {
                    origin: name,
                    what: "identity file",
                    hint: PASSPHRASE_ENV_HINT,
                });
            };
            let mut scrypt = age::scrypt::Identity::new(SecretString::from(p.to_string()));
            // sops's own test identity uses logN 18; allow up to 2^20 like age's CLI does.
            scrypt.set_max_work_factor(20);
            let mut r = dec
                .decrypt(std::iter::once(&scrypt as &dyn age::Identity))
                .map_err(|e| match e {
                    age::DecryptError::ExcessiveWork { required, .. } => not_identity(format!(
                        "identity file needs scrypt work factor 2^{required}, more than 2^20"
                    )),
                    _ => IdentityError::WrongPassphrase {
                        origin: name.clone(),
                    },
                })?;
            r.read_to_end(&mut plain)
                .map_err(|e| not_identity(format!("damaged age-encrypted identity file: {e}")))?;
            // Borrowed, not copied: `plain` is zeroized on drop whatever the outcome.
            let inner = std::str::from_utf8(&plain)
                .map_err(|_| not_identity("decrypted identity file is not text".into()))?;
            return self.add_age_text(inner, &name);
        }
        match text {
            Ok(t) => self.add_age_text(t, &name),
            Err(_) => Err(not_identity(format!(
                "found {} bytes of binary data, not an identity file",
                data.len()
            ))),
        }
    }
}

/// What an age plugin may ask for while it runs: its messages ("touch your token") are shown
/// on stderr; questions get no answer (tskeyctl runs unattended, at boot), so a plugin that
/// needs a PIN fails with its own message rather than waiting.
#[derive(Clone, Copy, Debug)]
pub struct PluginUi;

impl age::Callbacks for PluginUi {
    fn display_message(&self, message: &str) {
        crate::log::warn(format!(
            "age plugin: {}",
            crate::log::bounded::clip(message, 200)
        ));
    }

    fn confirm(&self, _: &str, _: &str, _: Option<&str>) -> Option<bool> {
        None
    }

    fn request_public_string(&self, _: &str) -> Option<String> {
        None
    }

    fn request_passphrase(&self, _: &str) -> Option<SecretString> {
        None
    }
}

/// The variable naming the identity command.
const KEY_CMD: &str = "SOPS_AGE_KEY_CMD";

/// Runs `SOPS_AGE_KEY_CMD` as sops 3.11 does: split into words by shell rules, run without a
/// shell, standard input and error closed, its standard output read (at most
/// [`IDENTITY_LIMIT`] bytes, into a buffer that is zeroized and never reallocated).
fn run_key_cmd(line: &str) -> Result<Zeroizing<Vec<u8>>, IdentityError> {
    use std::process::{Command, Stdio};
    let fail = |problem: String| IdentityError::Command { problem };
    let words = shlex::split(line)
        .ok_or_else(|| fail("cannot be split into words (unbalanced quotes?)".into()))?;
    let Some((program, args)) = words.split_first() else {
        return Err(fail("is empty".into()));
    };
    let shown = crate::log::bounded::clip(program, 80);
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => fail(format!("program {shown} not found")),
            _ => fail(format!("cannot run {shown}: {e}")),
        })?;
    let mut out = Zeroizing::new(Vec::with_capacity(IDENTITY_LIMIT as usize + 1));
    let read = match child.stdout.take() {
        Some(o) => o.take(IDENTITY_LIMIT + 1).read_to_end(&mut out),
        None => Ok(0),
    };
    if out.len() as u64 > IDENTITY_LIMIT {
        // Best effort: it may have exited already.
        let _ = child.kill();
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for {shown}: {e}")))?;
    read.map_err(|e| fail(format!("reading the output of {shown}: {e}")))?;
    if out.len() as u64 > IDENTITY_LIMIT {
        return Err(fail(format!(
            "{shown} printed more than {IDENTITY_LIMIT} bytes"
        )));
    }
    if !status.success() {
        return Err(fail(match status.code() {
            Some(c) => format!("{shown} exited with status {c}"),
            None => format!("{shown} was killed by a signal"),
        }));
    }
    Ok(out)
}

/// What a line of a would-be identity file is, by shape only (never its content).
fn describe_line(line: &str) -> String {
    let first = line.split_whitespace().next().unwrap_or_default();
    match first {
        "ssh-ed25519" | "ssh-rsa" | "ssh-dss" => {
            format!("a {first} public key (give the private key)")
        }
        k if k.starts_with("ecdsa-sha2-") || k.starts_with("sk-") => {
            format!(
                "a {} public key (give the private key)",
                crate::log::bounded::clip(k, 40)
            )
        }
        k if k.starts_with("age1") => "an age recipient (a public key)".into(),
        k if k.starts_with("-----BEGIN") => "a PEM block that is not a private key".into(),
        _ => format!("a {}-byte line of text", line.len()),
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
            sops_age_key: Some(Zeroizing::new("AGE-SECRET-KEY-1SECRETSECRET".into())),
            passphrase: Some("hunter2-passphrase".into()),
            ..Sources::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("SECRETSECRET") && !d.contains("hunter2"), "{d}");
        assert!(d.contains("[REDACTED]"), "{d}");
    }
}
