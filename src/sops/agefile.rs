//! The age layer: opening an age file (binary or armored) with every loaded identity. Used for
//! plain `.age` files and for each sops master key's `enc` (an armored age file holding the
//! data key or a Shamir share).

use std::io::Read;

use zeroize::Zeroizing;

use super::identities::Identities;

/// Why an age file did not open.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    /// Not an age file, or a damaged one.
    #[error("not a valid age file: {0}")]
    Malformed(String),
    /// No identity matched a stanza.
    #[error("no identity matched any of the file's recipients")]
    NoMatch,
    /// The payload failed authentication.
    #[error("the age payload is damaged: {0}")]
    Payload(String),
}

/// Decrypts an age file with all identities.
pub fn open(ids: &Identities, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, AgeError> {
    let reader = age::armor::ArmoredReader::new(bytes);
    let dec = age::Decryptor::new_buffered(reader).map_err(|e| match e {
        age::DecryptError::Io(e) => AgeError::Malformed(e.to_string()),
        other => AgeError::Malformed(other.to_string()),
    })?;
    if dec.is_scrypt() {
        return Err(AgeError::Malformed(
            "a passphrase-encrypted age file; tskeyctl opens files encrypted to keys".into(),
        ));
    }
    let ids_iter = ids
        .entries()
        .iter()
        .map(|e| e.identity.as_ref() as &dyn age::Identity);
    let mut r = dec.decrypt(ids_iter).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => AgeError::NoMatch,
        other => AgeError::Malformed(other.to_string()),
    })?;
    let mut out = Zeroizing::new(Vec::new());
    r.read_to_end(&mut out)
        .map_err(|e| AgeError::Payload(e.to_string()))?;
    Ok(out)
}

/// The stanza types and arguments of an age header (for "which recipients" messages).
pub fn stanza_summary(bytes: &[u8]) -> Vec<String> {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\n---")
        .unwrap_or(bytes.len());
    let text = String::from_utf8_lossy(&bytes[..end]);
    text.lines()
        .take_while(|l| !l.starts_with("---"))
        .filter_map(|l| l.strip_prefix("-> "))
        .map(|l| {
            let mut p = l.split(' ');
            let kind = p.next().unwrap_or_default();
            match kind {
                "ssh-ed25519" => format!("ssh-ed25519 (key tag {})", p.next().unwrap_or("?")),
                "X25519" => "X25519 (age1… recipient)".to_string(),
                other => other.to_string(),
            }
        })
        .collect()
}

/// Encrypts `plain` to `recipients` as an armored age file (sops's `enc` layout).
pub fn seal_armored(
    recipients: &[Box<dyn age::Recipient + Send>],
    plain: &[u8],
) -> Result<String, AgeError> {
    use std::io::Write;
    let enc = age::Encryptor::with_recipients(
        recipients.iter().map(|r| r.as_ref() as &dyn age::Recipient),
    )
    .map_err(|e| AgeError::Malformed(e.to_string()))?;
    let mut buf = Vec::new();
    let aw = age::armor::ArmoredWriter::wrap_output(&mut buf, age::armor::Format::AsciiArmor)
        .map_err(|e| AgeError::Malformed(e.to_string()))?;
    let mut w = enc
        .wrap_output(aw)
        .map_err(|e| AgeError::Malformed(e.to_string()))?;
    w.write_all(plain)
        .map_err(|e| AgeError::Malformed(e.to_string()))?;
    w.finish()
        .and_then(|aw| aw.finish())
        .map_err(|e| AgeError::Malformed(e.to_string()))?;
    let mut s = String::from_utf8(buf).map_err(|e| AgeError::Malformed(e.to_string()))?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}
