//! The sops MAC: SHA-512 over the plaintext of every non-comment leaf in walk order, stored as
//! 128 uppercase hex characters encrypted with AAD = `lastmodified` (RFC3339).

use sha2::{Digest, Sha512};

/// `sha256("sops")`, written first when `mac_only_encrypted` is set.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// A running MAC computation.
pub struct Mac(Sha512);

impl Mac {
    /// Starts a MAC; `mac_only_encrypted` seeds it like sops does.
    pub fn new(mac_only_encrypted: bool) -> Self {
        let mut h = Sha512::new();
        if mac_only_encrypted {
            h.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        Mac(h)
    }

    /// Adds one leaf's bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    /// The uppercase hex digest.
    pub fn hex(self) -> String {
        self.0
            .finalize()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }
}

/// Constant-time-ish comparison of two MAC strings.
pub fn equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
