//! Shared pieces of the fuzz targets: the fixed identities every target decrypts with, and the
//! one sops harness all five per-format targets run (parse alone, detect, decrypt, render).
//!
//! The keys under `keys/` were generated once for fuzzing (`age-keygen`, `ssh-keygen -t
//! ed25519 -N ''`); they protect nothing and are public on purpose, so the seed corpus
//! (`seeds.sh`) can be encrypted to them and the fuzzer reaches the value/MAC code.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use tskeyctl::decode::Kind;
use tskeyctl::sops::{self, DecryptOptions, Format, Identities, PathPart};
use tskeyctl::source::Origin;

/// The fuzz-only age X25519 identity.
pub const AGE_KEY: &str = include_str!("../keys/age.txt");
/// The fuzz-only OpenSSH ed25519 key (both its ssh-to-age and native ssh-ed25519 identities).
pub const SSH_KEY: &str = include_str!("../keys/ssh_ed25519");

/// The identities, loaded once per process.
pub fn identities() -> &'static Identities {
    static IDS: OnceLock<Identities> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut ids = Identities::default();
        let ok = ids.add_age_text(AGE_KEY, "fuzz age key").is_ok()
            && ids
                .add_bytes(
                    &Origin::File(PathBuf::from("fuzz/keys/ssh_ed25519")),
                    SSH_KEY.as_bytes(),
                    None,
                )
                .is_ok();
        assert!(ok, "the fuzz keys must load");
        ids
    })
}

fn file_name(format: Format) -> &'static str {
    match format {
        Format::Yaml => "fuzz.yaml",
        Format::Json => "fuzz.json",
        Format::Dotenv => "fuzz.env",
        Format::Ini => "fuzz.ini",
        Format::Binary => "fuzz.bin",
    }
}

/// Every step `tskeyctl decrypt` takes on a sops file of `format`, plus the parse-only entries.
/// Errors are fine; panics, unbounded memory and hangs are the bugs.
pub fn sops(format: Format, data: &[u8]) {
    let origin = Origin::File(PathBuf::from(file_name(format)));
    // The parse step alone (what `decrypt` and `updatekeys` read, and what `encrypt` reads).
    let _ = sops::load_encrypted(&origin, data, format);
    let _ = sops::load_plain(&origin, data, format);
    // Detection from the name, and from content as for stdin.
    let _ = tskeyctl::decode::detect(&origin, data);
    if let Kind::Sops(f) = tskeyctl::decode::detect(&Origin::Stdin, data) {
        if f != format {
            let _ = sops::load_encrypted(&Origin::Stdin, data, f);
        }
    }
    // The whole decrypt: data key, values, MAC; then every rendering a user can ask for.
    let ids = identities();
    for ignore_mac in [false, true] {
        let Ok(doc) = sops::decrypt(&origin, data, format, ids, DecryptOptions { ignore_mac })
        else {
            continue;
        };
        for out in [
            Format::Yaml,
            Format::Json,
            Format::Dotenv,
            Format::Ini,
            Format::Binary,
        ] {
            let _ = doc.render(out);
        }
        let _ = doc.top_level();
        for (k, _) in doc.top_level() {
            let _ = doc.get(&k);
            let _ = doc.extract(&[PathPart::Key(k)], format);
        }
        let _ = doc.extract(&[PathPart::Index(0)], format);
        break;
    }
}
