//! The age-file path on untrusted bytes: binary and armored age files opened with X25519 and
//! ssh-ed25519 identities (the host key both ways), and identity-file parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskeyctl::decode::{self, Identities};
use tskeyctl::source::Origin;

/// sops's public test identity and agenix's public example host key (both committed upstream
/// as test keys).
const X25519: &str = "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6";

fuzz_target!(|data: &[u8]| {
    let origin = Origin::Stdin;
    let mut ids = Identities::default();
    let _ = ids.add_age_text(X25519, "fuzz");
    let _ = decode::decrypt_age(&origin, data, &ids);
    // The same bytes as an identity file (age keys, OpenSSH key, encrypted identity file).
    let mut other = Identities::default();
    // No passphrase: scrypt work factors up to 2^20 would make every input take seconds.
    let _ = other.add_bytes(&origin, data, None);
});
