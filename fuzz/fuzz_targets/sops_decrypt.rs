//! The sops parse + decrypt path on untrusted bytes: every format's loader, metadata parsing,
//! the age unwrap of each `enc`, value decryption, the MAC, and re-rendering in every format.
//! The first byte picks the format; the rest is the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tskeyctl::sops::{self, DecryptOptions, Format, Identities};
use tskeyctl::source::Origin;

const FORMATS: [Format; 5] = [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini, Format::Binary];
/// sops's public test identity (age1yt3tf…), so real age stanzas in the corpus can open.
const KEY: &str = "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let format = FORMATS[sel as usize % FORMATS.len()];
    let origin = Origin::Stdin;
    let mut ids = Identities::default();
    let _ = ids.add_age_text(KEY, "fuzz");
    let _ = tskeyctl::decode::detect(&origin, body);
    for ignore_mac in [false, true] {
        let opts = DecryptOptions { ignore_mac };
        if let Ok(doc) = sops::decrypt(&origin, body, format, &ids, opts) {
            for f in FORMATS {
                let _ = doc.render(f);
            }
            let _ = doc.top_level();
        }
        if let Ok(doc) = sops::decrypt_with_data_key(&origin, body, format, &[7u8; 32], opts) {
            let _ = doc.render(format);
        }
    }
    // The plaintext loaders (what encrypt reads) and the emitters.
    if let Ok(branches) = sops::load_plain(&origin, body, format) {
        let _ = sops::formats::yaml::emit(&branches);
        let _ = sops::formats::json::emit(&branches);
    }
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = sops::parse_extract(s);
    }
});
