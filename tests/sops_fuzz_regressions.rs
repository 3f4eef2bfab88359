//! Regression inputs for the fuzz targets (`fuzz/`), run as ordinary tests: every input must
//! give a result or an error, never a panic. Crashes found by `cargo fuzz` are added to
//! `CRASHES` (format selector byte + file bytes) once fixed.

mod sops_support;

use tskeyctl::sops::{self, DecryptOptions, Format, Identities};
use tskeyctl::source::Origin;

const FORMATS: [Format; 5] = [
    Format::Yaml,
    Format::Json,
    Format::Dotenv,
    Format::Ini,
    Format::Binary,
];
const KEY: &str = "AGE-SECRET-KEY-1NJT5YCS2LWU4V4QAJQ6R4JNU7LXPDX602DZ9NUFANVU5GDTGUWCQ5T59M6";

/// Inputs that crashed or hung a fuzz target before a fix (selector byte first).
const CRASHES: &[&[u8]] = &[
    // Shapes that stress the YAML loader's comment placement and alias handling.
    b"\x00a: &x [*x]\n",
    b"\x00- # c\n  a: 1\n",
    b"\x00a:\n# c\n  b: 1\n",
    b"\x00? [a]\n: b\n",
    b"\x00sops: [1]\n",
    b"\x00sops:\n  version: 3.11.0\n  lastmodified: 2020-01-01T00:00:00Z\n  key_groups: [{}, {}]\n  shamir_threshold: 99\n",
    b"\x01{\"sops\": {\"version\": \"3.11.0\", \"lastmodified\": \"2020-01-01T00:00:00Z\", \"age\": [{\"enc\": \"-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\"}]}}",
    b"\x02sops_age__list_99999999999999999999__map_enc=x\nsops_version=3.11.0\n",
    b"\x03[sops]\nage__list_0__map_recipient = \"\"\"\n",
    b"\x00a: ENC[AES256_GCM,data:,iv:,tag:,type:]\n",
    b"\x00a: !!binary \"@@@\"\n",
    b"\x00a: 2024-02-30T25:61:61Z\n",
];

fn exercise(data: &[u8], ids: &Identities) {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let format = FORMATS[sel as usize % FORMATS.len()];
    let origin = Origin::Stdin;
    let _ = tskeyctl::decode::detect(&origin, body);
    for ignore_mac in [false, true] {
        let opts = DecryptOptions { ignore_mac };
        if let Ok(doc) = sops::decrypt(&origin, body, format, ids, opts) {
            for f in FORMATS {
                let _ = doc.render(f);
            }
        }
        let _ = sops::decrypt_with_data_key(&origin, body, format, &[7u8; 32], opts);
    }
    if let Ok(b) = sops::load_plain(&origin, body, format) {
        let _ = sops::formats::yaml::emit(&b);
        let _ = sops::formats::json::emit(&b);
    }
    let _ = sops::decrypt_age(&origin, body, ids);
}

fn ids() -> Identities {
    let mut ids = Identities::default();
    ids.add_age_text(KEY, "test").expect("key");
    ids
}

#[test]
fn recorded_crash_inputs_do_not_panic() {
    let ids = ids();
    for c in CRASHES {
        exercise(c, &ids);
    }
}

#[test]
fn every_truncation_of_the_conformance_files_is_handled() {
    let Some(c) = sops_support::conformance() else {
        return;
    };
    let ids = ids();
    let dir = c.join("sops");
    for name in [
        "age_example.yaml",
        "age_example.json",
        "age_example.ini",
        "age_example.txt",
    ] {
        let data = std::fs::read(dir.join(name)).expect("read");
        let sel = match name.rsplit('.').next() {
            Some("yaml") => 0u8,
            Some("json") | Some("txt") => 1,
            _ => 3,
        };
        // Every 37th prefix keeps the test fast while still cutting inside every token kind.
        for cut in (0..data.len()).step_by(37) {
            let mut input = vec![sel];
            input.extend_from_slice(&data[..cut]);
            exercise(&input, &ids);
        }
        // The whole file opens (the key is sops's public test identity).
        let doc = sops::decrypt(
            &Origin::Stdin,
            &data,
            FORMATS[sel as usize],
            &ids,
            DecryptOptions::default(),
        );
        assert!(doc.is_ok(), "{name}: {:?}", doc.err());
    }
}
