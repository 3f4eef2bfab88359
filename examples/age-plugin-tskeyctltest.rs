//! `age-plugin-tskeyctltest`: a small age plugin for the tests, built on the `age-plugin` crate
//! so it speaks the real plugin protocol (age's `--age-plugin=recipient-v1` / `identity-v1`
//! state machines over stdin/stdout) to tskeyctl and to the real sops alike.
//!
//! It stands in for a hardware token: its identity and its recipient carry the same 32-byte
//! key (it is symmetric, so for tests only), and a file key is wrapped with AES-256-GCM under
//! it in a `tskeyctltest` stanza. `age-plugin-tskeyctltest --generate` prints a new identity
//! and recipient like every age plugin does.

use std::collections::{HashMap, HashSet};
use std::io;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use age_core::format::{FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use age_plugin::identity::{self, IdentityPluginV1};
use age_plugin::recipient::{self, RecipientPluginV1};
use age_plugin::{Callbacks, PluginHandler, print_new_identity, run_state_machine};

const NAME: &str = "tskeyctltest";

/// A 32-byte key from a recipient's or identity's data.
fn key_of(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        Ok(Wrapper(Vec::new()))
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper(Vec::new()))
    }
}

/// The keys of the recipients (and identities) to wrap to.
struct Wrapper(Vec<[u8; 32]>);

impl RecipientPluginV1 for Wrapper {
    fn add_recipient(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match key_of(bytes).filter(|_| plugin_name == NAME) {
            Some(k) => {
                self.0.push(k);
                Ok(())
            }
            None => Err(recipient::Error::Recipient {
                index,
                message: "not a tskeyctltest recipient".into(),
            }),
        }
    }

    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match key_of(bytes).filter(|_| plugin_name == NAME) {
            Some(k) => {
                self.0.push(k);
                Ok(())
            }
            None => Err(recipient::Error::Identity {
                index,
                message: "not a tskeyctltest identity".into(),
            }),
        }
    }

    fn labels(&mut self) -> HashSet<String> {
        HashSet::new()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _callbacks: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let mut out = Vec::new();
        for fk in file_keys {
            let mut stanzas = Vec::new();
            for k in &self.0 {
                let mut nonce = [0u8; 12];
                getrandom::getrandom(&mut nonce).map_err(io::Error::other)?;
                let body = Aes256Gcm::new(k.into())
                    .encrypt(Nonce::from_slice(&nonce), fk.expose_secret().as_slice())
                    .map_err(|_| io::Error::other("wrap failed"))?;
                stanzas.push(Stanza {
                    tag: NAME.into(),
                    args: vec![hex(&nonce)],
                    body,
                });
            }
            out.push(stanzas);
        }
        Ok(Ok(out))
    }
}

/// The identities' keys.
struct Unwrapper(Vec<[u8; 32]>);

impl IdentityPluginV1 for Unwrapper {
    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        match key_of(bytes).filter(|_| plugin_name == NAME) {
            Some(k) => {
                self.0.push(k);
                Ok(())
            }
            None => Err(identity::Error::Identity {
                index,
                message: "not a tskeyctltest identity".into(),
            }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        _callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut found = HashMap::new();
        for (i, stanzas) in files.iter().enumerate() {
            'stanzas: for s in stanzas.iter().filter(|s| s.tag == NAME) {
                let Some(nonce) = s.args.first().and_then(|a| unhex(a)) else {
                    continue;
                };
                if nonce.len() != 12 {
                    continue;
                }
                for k in &self.0 {
                    let Ok(plain) =
                        Aes256Gcm::new(k.into()).decrypt(Nonce::from_slice(&nonce), &s.body[..])
                    else {
                        continue;
                    };
                    if let Ok(fk) = FileKey::try_init_with_mut(|fk| {
                        if plain.len() == fk.len() {
                            fk.copy_from_slice(&plain);
                            Ok(())
                        } else {
                            Err(())
                        }
                    }) {
                        found.insert(i, Ok(fk));
                        break 'stanzas;
                    }
                }
            }
        }
        Ok(found)
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(a) if a.starts_with("--age-plugin=") => {
            run_state_machine(&a["--age-plugin=".len()..], Handler)
        }
        Some("--age-plugin") if args.len() > 1 => run_state_machine(&args[1], Handler),
        Some("--generate") => {
            let mut k = [0u8; 32];
            getrandom::getrandom(&mut k).map_err(io::Error::other)?;
            print_new_identity(NAME, &k, &k);
            Ok(())
        }
        _ => Err(io::Error::other(
            "usage: age-plugin-tskeyctltest --generate | --age-plugin=STATE_MACHINE",
        )),
    }
}
