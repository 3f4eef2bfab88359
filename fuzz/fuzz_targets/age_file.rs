//! The age-file path on untrusted bytes: binary and armored age files opened with X25519 and
//! ssh-ed25519 identities (the host key both ways), and identity-file parsing.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use tskeyctl::sops::{self, Identities};
use tskeyctl::source::Origin;

fuzz_target!(|data: &[u8]| {
    let origin = Origin::File(PathBuf::from("fuzz.age"));
    let _ = tskeyctl::decode::detect(&origin, data);
    // The fixed identities (fuzz/keys): a plain X25519 key, and an ssh ed25519 key as its
    // ssh-to-age X25519 identity and as age's native ssh-ed25519 identity.
    let _ = sops::decrypt_age(&origin, data, tskeyctl_fuzz::identities());
    // The same bytes as an identity file (age keys, OpenSSH key, encrypted identity file's
    // header). No passphrase: an scrypt identity file may deliberately cost up to 2^20 work
    // (1 GiB, seconds) like age's CLI allows, which would only measure scrypt.
    let mut other = Identities::default();
    let _ = other.add_bytes(&origin, data, None);
});
