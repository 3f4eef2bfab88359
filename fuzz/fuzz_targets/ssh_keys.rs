//! The ssh key parsers: public-key scanning (authorized_keys, known_hosts, keyscan output, the
//! public half of a private key) and OpenSSH private keys, with and without a passphrase, and
//! the identities derived from a parsed key.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use tskeyctl::hostkey::{self, HostKey};
use tskeyctl::source::Origin;

fuzz_target!(|data: &[u8]| {
    let origin = Origin::File(PathBuf::from("fuzz_key"));
    if let Ok(found) = hostkey::scan_public(&origin, data) {
        for f in found {
            if let hostkey::Found::Ed25519(k, _) = f {
                let _ = k.ssh_line();
                let _ = k.age_recipient();
            }
        }
    }
    for pass in [None, Some(&b"fuzz"[..])] {
        if let Ok(key) = HostKey::from_openssh(&origin, data, pass) {
            let _ = key.x25519_identity();
            let _ = key.ssh_identity();
        }
    }
});
