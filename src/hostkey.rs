//! The host's SSH ed25519 key as age keys: the one piece of key material a host already has.
//!
//! Two mappings exist and both are in use, so tskeyctl offers both (see ARCHITECTURE.md):
//! * **converted** (ssh-to-age, sops-nix): the X25519 secret is `SHA-512(seed)[..32]`, emitted
//!   *unclamped* (X25519 clamps at use), bech32 with HRP `AGE-SECRET-KEY-` and upper-cased; the
//!   recipient is the birational Edwards→Montgomery map `u = (1+y)/(1−y)` of the public key,
//!   bech32 with HRP `age`. Byte-identical to `ssh-to-age` (Mic92/ssh-to-age `convert.go`).
//! * **native** (age's `ssh-ed25519` stanza, sops ≥ 3.10, agenix): the key itself, via `age::ssh`.
//!
//! Public input is parsed line by line like ssh-to-age: OpenSSH `authorized_keys` lines and
//! `known_hosts` / `ssh-keyscan` lines; blank and `#` lines skipped; other key types skipped with a
//! warning. Private keys are OpenSSH `openssh-key-v1` files, optionally passphrase-protected with
//! any cipher OpenSSH writes (aes256-ctr, aes256-gcm@openssh.com, chacha20-poly1305@openssh.com).
//! No error message ever contains key material: lines are cited by number, never by content.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bech32::{Bech32, Hrp};
use zeroize::{Zeroize, Zeroizing};

use crate::source::Origin;

/// The default host key, the one every NixOS host with OpenSSH has: the identity tried last and
/// the key `recipient` / `identity` read when given none.
pub const DEFAULT_KEY: &str = "/etc/ssh/ssh_host_ed25519_key";
/// Its public half.
pub const DEFAULT_PUB: &str = "/etc/ssh/ssh_host_ed25519_key.pub";

const ED25519: &str = "ssh-ed25519";
const PRIVATE_PEM_BEGIN: &str = "-----BEGIN OPENSSH PRIVATE KEY-----";

/// Why a key could not be used. Messages cite file and line, never key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The input held no usable ed25519 key at all.
    #[error("{origin}: no ssh-ed25519 key found{}", skipped_note(.skipped))]
    NoEd25519 {
        origin: Origin,
        skipped: Vec<String>,
    },
    /// A private key of another type.
    #[error("{origin}: {kind} private key; only ssh-ed25519 keys can be converted to age keys")]
    NotEd25519 { origin: Origin, kind: String },
    /// A FIDO key: its secret lives in the token, nothing on disk can decrypt.
    #[error(
        "{origin}: {kind} is a FIDO security-key key; its secret never leaves the token, so it cannot decrypt age files — use the host's ssh-ed25519 key"
    )]
    SecurityKey { origin: Origin, kind: String },
    /// A line or file that is not a key in any format we read.
    #[error("{origin}{}: {reason}", line_note(*.line))]
    Malformed {
        origin: Origin,
        line: Option<usize>,
        reason: String,
    },
    /// An ed25519 public key that is not a point on the curve.
    #[error("{origin}{}: ssh-ed25519 public key is not a valid curve point", line_note(*.line))]
    InvalidPoint { origin: Origin, line: Option<usize> },
    /// The key is encrypted and no passphrase was given.
    #[error(
        "{origin}: private key is passphrase-protected; set SSH_TO_AGE_PASSPHRASE or pass --passphrase-file FILE"
    )]
    PassphraseRequired { origin: Origin },
    /// The passphrase did not decrypt the key.
    #[error("{origin}: wrong passphrase for the private key (cipher {cipher})")]
    WrongPassphrase { origin: Origin, cipher: String },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!(" (skipped: {})", crate::log::bounded::list(skipped, ", "))
    }
}

fn line_note(line: Option<usize>) -> String {
    line.map(|l| format!(":{l}")).unwrap_or_default()
}

/// An ed25519 public key as found in some input.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The 32-byte Edwards point.
    pub bytes: [u8; 32],
    /// The comment of an `authorized_keys` line, if any.
    pub comment: Option<String>,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.ssh_line())
    }
}

impl PublicKey {
    /// The SSH wire encoding: `string "ssh-ed25519" || string key`.
    pub fn wire(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(51);
        for part in [ED25519.as_bytes(), &self.bytes[..]] {
            w.extend_from_slice(&(part.len() as u32).to_be_bytes());
            w.extend_from_slice(part);
        }
        w
    }

    /// `ssh-ed25519 AAAA… [comment]`: the native age recipient.
    pub fn ssh_line(&self) -> String {
        let mut s = format!("{ED25519} {}", STANDARD.encode(self.wire()));
        if let Some(c) = self.comment.as_deref().filter(|c| !c.is_empty()) {
            s.push(' ');
            s.push_str(c);
        }
        s
    }

    /// The converted X25519 recipient `age1…` (ssh-to-age's output).
    pub fn age_recipient(&self) -> Option<String> {
        let point = ed25519_dalek::VerifyingKey::from_bytes(&self.bytes).ok()?;
        let u = point.to_montgomery().to_bytes();
        bech32::encode::<Bech32>(Hrp::parse_unchecked("age"), &u).ok()
    }
}

/// One result of scanning public-key input: a key, or a skipped key of another type.
#[derive(Debug)]
pub enum Found {
    /// An ed25519 key (with its 1-based line number).
    Ed25519(PublicKey, usize),
    /// A key of another type, skipped (line number, type name).
    Skipped(usize, String),
}

/// Scans public-key text (authorized_keys, known_hosts, ssh-keyscan output) or, if the text is an
/// OpenSSH private key, derives its public key (no passphrase needed: the public half is stored in
/// clear). Returns every key in input order; an empty result is left to the caller.
pub fn scan_public(origin: &Origin, data: &[u8]) -> Result<Vec<Found>, KeyError> {
    let text = std::str::from_utf8(data).map_err(|_| KeyError::Malformed {
        origin: origin.clone(),
        line: None,
        reason: "not text (invalid UTF-8): expected ssh public keys or an OpenSSH private key"
            .into(),
    })?;
    if text.contains(PRIVATE_PEM_BEGIN) {
        let key = parse_private_envelope(origin, text)?;
        return Ok(vec![public_of(origin, &key)?]);
    }
    if text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
        return Err(not_openssh_private(origin, text));
    }
    let mut found = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_end_matches('\r').trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        found.push(parse_public_line(origin, i + 1, line)?);
    }
    Ok(found)
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-") || t.starts_with("sk-")
}

fn parse_public_line(origin: &Origin, lineno: usize, line: &str) -> Result<Found, KeyError> {
    let malformed = |reason: &str| KeyError::Malformed {
        origin: origin.clone(),
        line: Some(lineno),
        reason: reason.into(),
    };
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next().unwrap_or_default();
    // known_hosts markers: "@cert-authority host key" / "@revoked host key".
    if first.starts_with('@') {
        first = fields.next().unwrap_or_default();
    }
    let (kind, blob, comment) = if is_key_type(first) {
        // authorized_keys line: TYPE BASE64 [COMMENT…]
        let blob = fields
            .next()
            .ok_or_else(|| malformed("key type without key data"))?;
        let rest: Vec<&str> = fields.collect();
        (first, blob, (!rest.is_empty()).then(|| rest.join(" ")))
    } else {
        // known_hosts / ssh-keyscan line: HOSTS TYPE BASE64 [COMMENT]
        let kind = fields
            .next()
            .ok_or_else(|| malformed("not an ssh public key or known_hosts line"))?;
        let blob = fields
            .next()
            .ok_or_else(|| malformed("known_hosts line without key data"))?;
        (kind, blob, None)
    };
    if kind != ED25519 {
        if !is_key_type(kind) {
            return Err(malformed("not an ssh public key or known_hosts line"));
        }
        return Ok(Found::Skipped(lineno, kind.to_string()));
    }
    let wire = STANDARD
        .decode(blob)
        .map_err(|_| malformed("ssh-ed25519 key data is not valid base64 (truncated?)"))?;
    let bytes = parse_ed25519_wire(&wire)
        .ok_or_else(|| malformed("ssh-ed25519 key data is truncated or malformed"))?;
    let key = PublicKey { bytes, comment };
    if key.age_recipient().is_none() {
        return Err(KeyError::InvalidPoint {
            origin: origin.clone(),
            line: Some(lineno),
        });
    }
    Ok(Found::Ed25519(key, lineno))
}

/// Parses `string "ssh-ed25519" || string key(32)` exactly, no trailing bytes.
fn parse_ed25519_wire(wire: &[u8]) -> Option<[u8; 32]> {
    let (kind, rest) = read_string(wire)?;
    if kind != ED25519.as_bytes() {
        return None;
    }
    let (key, rest) = read_string(rest)?;
    if !rest.is_empty() {
        return None;
    }
    key.try_into().ok()
}

fn read_string(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    let body = buf.get(4..4usize.checked_add(len)?)?;
    Some((body, &buf[4 + len..]))
}

/// A decrypted OpenSSH ed25519 private key.
pub struct HostKey {
    seed: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HostKey({:?})", self.public)
    }
}

impl HostKey {
    /// Parses an OpenSSH private key, decrypting it with `passphrase` when it is protected.
    pub fn from_openssh(
        origin: &Origin,
        data: &[u8],
        passphrase: Option<&[u8]>,
    ) -> Result<Self, KeyError> {
        let text = std::str::from_utf8(data).map_err(|_| KeyError::Malformed {
            origin: origin.clone(),
            line: None,
            reason: "not an OpenSSH private key (binary data)".into(),
        })?;
        if !text.contains(PRIVATE_PEM_BEGIN) {
            if text.contains("-----BEGIN ") && text.contains("PRIVATE KEY-----") {
                return Err(not_openssh_private(origin, text));
            }
            return Err(KeyError::Malformed {
                origin: origin.clone(),
                line: None,
                reason: "not an OpenSSH private key (expected the PEM file ssh-keygen writes)"
                    .into(),
            });
        }
        let mut key = parse_private_envelope(origin, text)?;
        let Found::Ed25519(public, _) = public_of(origin, &key)? else {
            return Err(KeyError::Malformed {
                origin: origin.clone(),
                line: None,
                reason: "not an ssh-ed25519 key".into(),
            });
        };
        if key.is_encrypted() {
            let cipher = key.cipher().as_str().to_string();
            let pass = passphrase.ok_or_else(|| KeyError::PassphraseRequired {
                origin: origin.clone(),
            })?;
            key = key.decrypt(pass).map_err(|_| KeyError::WrongPassphrase {
                origin: origin.clone(),
                cipher,
            })?;
        }
        let pair = key
            .key_data()
            .ed25519()
            .ok_or_else(|| KeyError::Malformed {
                origin: origin.clone(),
                line: None,
                reason: "ssh-ed25519 private key data missing".into(),
            })?;
        let seed = Zeroizing::new(pair.private.to_bytes());
        if pair.public.0 != public.bytes {
            return Err(KeyError::Malformed {
                origin: origin.clone(),
                line: None,
                reason: "private and public halves of the key do not match".into(),
            });
        }
        Ok(HostKey { seed, public })
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// `AGE-SECRET-KEY-1…`, the converted X25519 identity (ssh-to-age `-private-key`).
    pub fn age_identity_string(&self) -> Zeroizing<String> {
        let signing = ed25519_dalek::SigningKey::from_bytes(&self.seed);
        let scalar = Zeroizing::new(signing.to_scalar_bytes());
        let mut lower = bech32::encode::<Bech32>(Hrp::parse_unchecked("AGE-SECRET-KEY-"), &*scalar)
            .unwrap_or_default();
        let upper = Zeroizing::new(lower.to_uppercase());
        lower.zeroize();
        upper
    }

    /// The converted X25519 identity as an age identity.
    pub fn x25519_identity(&self) -> Option<age::x25519::Identity> {
        self.age_identity_string().parse().ok()
    }

    /// The native `ssh-ed25519` age identity (the same key, age's ssh stanza).
    pub fn ssh_identity(&self) -> Option<age::ssh::Identity> {
        let kp = ssh_key::private::Ed25519Keypair::from_seed(&self.seed);
        let key = ssh_key::PrivateKey::from(kp);
        let pem = key.to_openssh(ssh_key::LineEnding::LF).ok()?;
        age::ssh::Identity::from_buffer(pem.as_bytes(), None).ok()
    }
}

/// Parses the `openssh-key-v1` envelope (not yet decrypting it). CRLF files are normalized.
fn parse_private_envelope(origin: &Origin, text: &str) -> Result<ssh_key::PrivateKey, KeyError> {
    let normalized = Zeroizing::new(text.replace("\r\n", "\n"));
    let start = normalized.find(PRIVATE_PEM_BEGIN).unwrap_or(0);
    let pem = normalized[start..].trim_end();
    match ssh_key::PrivateKey::from_openssh(pem) {
        Ok(k) => Ok(k),
        Err(e) => {
            // The envelope may be fine but the key type unsupported by our build (rsa, ecdsa):
            // name the type from the clear-text public half if we can find it.
            if let Some(kind) = peek_private_key_type(pem) {
                if kind.starts_with("sk-") {
                    return Err(KeyError::SecurityKey {
                        origin: origin.clone(),
                        kind,
                    });
                }
                if kind != ED25519 {
                    return Err(KeyError::NotEd25519 {
                        origin: origin.clone(),
                        kind,
                    });
                }
            }
            Err(KeyError::Malformed {
                origin: origin.clone(),
                line: None,
                reason: format!(
                    "not a valid OpenSSH private key ({})",
                    describe_ssh_error(&e)
                ),
            })
        }
    }
}

fn describe_ssh_error(e: &ssh_key::Error) -> &'static str {
    match e {
        ssh_key::Error::Encoding(_) => "bad PEM or base64: truncated or corrupted",
        ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
            "unsupported key algorithm"
        }
        ssh_key::Error::Crypto => "invalid key data",
        _ => "malformed key structure",
    }
}

/// Reads the key type from the clear-text public key inside an `openssh-key-v1` blob.
fn peek_private_key_type(pem: &str) -> Option<String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let blob = Zeroizing::new(STANDARD.decode(body).ok()?);
    let rest = blob.strip_prefix(b"openssh-key-v1\0")?;
    let (_cipher, rest) = read_string(rest)?;
    let (_kdf, rest) = read_string(rest)?;
    let (_kdfopts, rest) = read_string(rest)?;
    let rest = rest.get(4..)?; // number of keys
    let (pubkey, _) = read_string(rest)?;
    let (kind, _) = read_string(pubkey)?;
    String::from_utf8(kind.to_vec()).ok()
}

fn public_of(origin: &Origin, key: &ssh_key::PrivateKey) -> Result<Found, KeyError> {
    let kind = key.algorithm().as_str().to_string();
    if kind.starts_with("sk-") {
        return Err(KeyError::SecurityKey {
            origin: origin.clone(),
            kind,
        });
    }
    let Some(public) = key.public_key().key_data().ed25519() else {
        return Err(KeyError::NotEd25519 {
            origin: origin.clone(),
            kind,
        });
    };
    let comment = key.comment();
    let public = PublicKey {
        bytes: public.0,
        comment: (!comment.is_empty()).then(|| comment.to_string()),
    };
    if public.age_recipient().is_none() {
        return Err(KeyError::InvalidPoint {
            origin: origin.clone(),
            line: None,
        });
    }
    Ok(Found::Ed25519(public, 1))
}

fn not_openssh_private(origin: &Origin, text: &str) -> KeyError {
    let kind = if text.contains("BEGIN RSA PRIVATE KEY") {
        "ssh-rsa (PEM)"
    } else if text.contains("BEGIN EC PRIVATE KEY") {
        "ecdsa (PEM)"
    } else if text.contains("BEGIN DSA PRIVATE KEY") {
        "ssh-dss (PEM)"
    } else {
        return KeyError::Malformed {
            origin: origin.clone(),
            line: None,
            reason: "PKCS#8/PEM private keys are not supported; use the OpenSSH format (ssh-keygen -p -f FILE converts it)".into(),
        };
    };
    KeyError::NotEd25519 {
        origin: origin.clone(),
        kind: kind.into(),
    }
}
