//! One encrypted value: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` (sops `aes/cipher.go`).
//!
//! AES-256-GCM with sops's non-standard 32-byte IV (GCM derives J0 through GHASH for IVs that
//! are not 96 bits), a 16-byte tag, AAD = the key path (`a:b:`). The plaintext is the Go text
//! form of the typed value; the `type:` field says how to read it back. Empty values are never
//! encrypted: `""` stays `""`.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use zeroize::Zeroizing;

use super::gofmt;
use super::tree::Node;

type Gcm = AesGcm<Aes256, U32>;

/// Go's `base64.StdEncoding`: padded, non-strict about trailing bits.
pub const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// The four fields of `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, split exactly like sops's
/// regex `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]` (greedy groups, `.` not
/// matching a newline, not anchored at the end) but without a regex engine: values are parsed
/// by the thousand and a backtracking capture per value dominated decryption time.
fn split_enc(s: &str) -> Option<[&str; 4]> {
    let line = s.split('\n').next().unwrap_or_default();
    let rest = line.strip_prefix("ENC[AES256_GCM,data:")?;
    // Greedy: each group ends at the rightmost separator that still lets the rest match.
    for (iv_at, _) in rest.rmatch_indices(",iv:").filter(|(i, _)| *i > 0) {
        let after_iv = &rest[iv_at + 4..];
        for (tag_at, _) in after_iv.rmatch_indices(",tag:").filter(|(i, _)| *i > 0) {
            let after_tag = &after_iv[tag_at + 5..];
            for (type_at, _) in after_tag.rmatch_indices(",type:").filter(|(i, _)| *i > 0) {
                let after_type = &after_tag[type_at + 6..];
                if let Some(end) = after_type.rfind(']').filter(|e| *e > 0) {
                    return Some([
                        &rest[..iv_at],
                        &after_iv[..tag_at],
                        &after_tag[..type_at],
                        &after_type[..end],
                    ]);
                }
            }
        }
    }
    None
}

/// Why a value could not be decrypted. Never carries plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    /// Not of the `ENC[AES256_GCM,…]` form.
    #[error("value does not match sops' data format ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]")]
    Format,
    /// A field is not valid base64.
    #[error("the {0} field is not valid base64")]
    Base64(&'static str),
    /// The tag is not 16 bytes or the IV is empty.
    #[error("bad {0} length")]
    Length(&'static str),
    /// GCM authentication failed: wrong key, tampered ciphertext, or the value was moved.
    #[error(
        "authentication failed (the ciphertext was changed, or the value was moved to another key)"
    )]
    Auth,
    /// An unknown `type:`.
    #[error("unknown datatype {0:?}")]
    UnknownType(String),
    /// The plaintext does not parse as its declared type.
    #[error("decrypted value is not a valid {0}")]
    BadTyped(&'static str),
}

/// True when `s` looks like an encrypted value (the sops regex matches).
pub fn is_encrypted(s: &str) -> bool {
    split_enc(s).is_some()
}

fn b64(field: &'static str, s: &str) -> Result<Vec<u8>, ValueError> {
    // Go's decoder skips \r and \n.
    let clean: String = s.chars().filter(|c| *c != '\r' && *c != '\n').collect();
    B64.decode(clean).map_err(|_| ValueError::Base64(field))
}

/// Decrypts `s` (an `ENC[…]` string; `""` gives `""`) into its typed node.
pub fn decrypt(key: &[u8; 32], s: &str, aad: &str) -> Result<Node, ValueError> {
    if s.is_empty() {
        return Ok(Node::Str(Vec::new()));
    }
    let [data_s, iv_s, tag_s, typ] = split_enc(s).ok_or(ValueError::Format)?;
    let mut data = b64("data", data_s)?;
    let iv = b64("iv", iv_s)?;
    let tag = b64("tag", tag_s)?;
    if iv.is_empty() {
        return Err(ValueError::Length("iv"));
    }
    data.extend_from_slice(&tag);
    let plain = Zeroizing::new(gcm_open(key, &iv, &data, aad.as_bytes())?);
    typed(&plain, typ)
}

fn gcm_open(key: &[u8; 32], iv: &[u8], ct: &[u8], aad: &[u8]) -> Result<Vec<u8>, ValueError> {
    if ct.len() < 16 {
        return Err(ValueError::Length("tag"));
    }
    let payload = Payload { msg: ct, aad };
    if iv.len() == 32 {
        let c = Gcm::new(key.into());
        c.decrypt(Nonce::<U32>::from_slice(iv), payload)
            .map_err(|_| ValueError::Auth)
    } else if iv.len() == 12 {
        let c = aes_gcm::Aes256Gcm::new(key.into());
        c.decrypt(aes_gcm::Nonce::from_slice(iv), payload)
            .map_err(|_| ValueError::Auth)
    } else {
        // sops writes 32-byte IVs only; other sizes need GHASH-derived counters we do not build.
        Err(ValueError::Length("iv"))
    }
}

fn utf8(p: &[u8], what: &'static str) -> Result<String, ValueError> {
    String::from_utf8(p.to_vec()).map_err(|_| ValueError::BadTyped(what))
}

fn typed(p: &[u8], typ: &str) -> Result<Node, ValueError> {
    Ok(match typ {
        "str" | "bytes" => Node::Str(p.to_vec()),
        "int" => {
            let s = utf8(p, "int")?;
            let digits = s.strip_prefix(['+', '-']).unwrap_or(&s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ValueError::BadTyped("int"));
            }
            Node::Int(s.parse().map_err(|_| ValueError::BadTyped("int"))?)
        }
        "float" => {
            let s = utf8(p, "float")?;
            Node::Float(gofmt::parse_float(&s).ok_or(ValueError::BadTyped("float"))?)
        }
        "bool" => {
            let s = utf8(p, "bool")?;
            Node::Bool(gofmt::parse_bool(&s).ok_or(ValueError::BadTyped("bool"))?)
        }
        "time" => {
            let s = utf8(p, "time")?;
            let t = gofmt::parse_time(&s, true).ok_or(ValueError::BadTyped("time"))?;
            Node::Time(t.rfc3339_nano())
        }
        "comment" => Node::Comment(utf8(p, "comment")?),
        other => return Err(ValueError::UnknownType(other.chars().take(32).collect())),
    })
}

/// The bytes sops hashes into the MAC and encrypts for a leaf (`sops.go: ToBytes`), and its
/// `type:` name. `None` for maps, sequences and nulls.
pub fn to_bytes(n: &Node) -> Option<(Zeroizing<Vec<u8>>, &'static str)> {
    Some(match n {
        Node::Str(b) => (Zeroizing::new(b.clone()), "str"),
        Node::Int(i) => (Zeroizing::new(i.to_string().into_bytes()), "int"),
        Node::Float(f) => (Zeroizing::new(gofmt::format_f(*f).into_bytes()), "float"),
        Node::Bool(b) => (
            Zeroizing::new(if *b {
                b"True".to_vec()
            } else {
                b"False".to_vec()
            }),
            "bool",
        ),
        Node::Time(t) => (Zeroizing::new(t.clone().into_bytes()), "time"),
        Node::Comment(c) => (Zeroizing::new(c.clone().into_bytes()), "comment"),
        Node::Map(_) | Node::Seq(_) | Node::Null => return None,
    })
}

/// Fills `buf` with random bytes from the OS.
pub fn random(buf: &mut [u8]) -> Result<(), ValueError> {
    getrandom::getrandom(buf).map_err(|_| ValueError::Length("random source"))
}

/// Encrypts a leaf into its `ENC[…]` string (`""` for an empty string or comment).
pub fn encrypt(key: &[u8; 32], leaf: &Node, aad: &str) -> Result<String, ValueError> {
    let Some((plain, typ)) = to_bytes(leaf) else {
        return Err(ValueError::Format);
    };
    if plain.is_empty() && matches!(leaf, Node::Str(_) | Node::Comment(_)) {
        return Ok(String::new());
    }
    let mut iv = [0u8; 32];
    random(&mut iv)?;
    Ok(seal(key, &iv, &plain, typ, aad))
}

/// Encrypts `plain` with a given IV (the MAC and tests use this directly).
pub fn seal(key: &[u8; 32], iv: &[u8; 32], plain: &[u8], typ: &str, aad: &str) -> String {
    let c = Gcm::new(key.into());
    let ct = c
        .encrypt(
            Nonce::<U32>::from_slice(iv),
            Payload {
                msg: plain,
                aad: aad.as_bytes(),
            },
        )
        .unwrap_or_default();
    let (data, tag) = ct.split_at(ct.len().saturating_sub(16));
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{typ}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_like_the_sops_regex() {
        let re = regex::Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
            .unwrap_or_else(|_| unreachable!());
        for s in [
            "ENC[AES256_GCM,data:YQ==,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:a,iv:b,iv:c,tag:d,type:e]]x",
            "ENC[AES256_GCM,data:a,iv:b,tag:c,type:d]\nmore]",
            "ENC[AES256_GCM,data:,iv:b,tag:c,type:d]",
            "ENC[AES256_GCM,data:a,iv:b,tag:c,type:]",
            "ENC[AES256_GCM,data:a,type:x,iv:b,tag:c,type:d],tag:e,type:f]",
            "xENC[AES256_GCM,data:a,iv:b,tag:c,type:d]",
        ] {
            let want = re
                .captures(s)
                .map(|c| [1, 2, 3, 4].map(|i| c.get(i).map(|m| m.as_str()).unwrap_or_default()));
            assert_eq!(split_enc(s), want, "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn split_agrees_with_the_regex(tail in "(,iv:|,tag:|,type:|\\]|[ab\n]){0,12}") {
            let re = regex::Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
                .unwrap_or_else(|_| unreachable!());
            let s = format!("ENC[AES256_GCM,data:{tail}");
            let want = re.captures(&s).map(|c| {
                [1, 2, 3, 4].map(|i| c.get(i).map(|m| m.as_str()).unwrap_or_default())
            });
            proptest::prop_assert_eq!(split_enc(&s), want);
        }
    }

    #[test]
    fn round_trip_and_aad() {
        let key = [7u8; 32];
        let iv = [1u8; 32];
        let s = seal(&key, &iv, b"hello", "str", "a:b:");
        assert_eq!(decrypt(&key, &s, "a:b:"), Ok(Node::str("hello")));
        assert_eq!(decrypt(&key, &s, "a:c:"), Err(ValueError::Auth));
        let f = seal(&key, &iv, b"1234568000", "float", "n:");
        assert_eq!(decrypt(&key, &f, "n:"), Ok(Node::Float(1234568000.0)));
        let u = seal(&key, &iv, b"x", "weird", "n:");
        assert_eq!(
            decrypt(&key, &u, "n:"),
            Err(ValueError::UnknownType("weird".into()))
        );
        assert_eq!(
            decrypt(
                &key,
                "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
                ""
            ),
            Err(ValueError::Base64("data"))
        );
    }
}
