//! Every file in `../shared/conformance/` decrypts to what its SOURCES.md / values.json /
//! EXPECTED.json / expected-decrypt says, with the MAC verified.

mod sops_support;

use std::path::Path;

use serde_json::Value;
use sops_support::*;
use tskeyctl::sops::tree::Node;
use tskeyctl::sops::{self, DecryptOptions, Format, Identities, Sources};
use tskeyctl::source::Origin;

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).expect("read json")).expect("parse json")
}

fn format_of(name: &str) -> Format {
    let f = Format::from_path(Path::new(name));
    // The JSON-envelope binary files are named .txt; the functional-test YAML files too.
    if name.ends_with(".yaml") {
        Format::Yaml
    } else {
        f
    }
}

fn check_values(name: &str, doc: &sops::Document, expected: &Value) {
    let (vals, comments) = leaves(doc.branches());
    let want = expected["values"].as_array().expect("values");
    assert_eq!(vals.len(), want.len(), "{name}: number of leaves");
    for ((aad, got), w) in vals.iter().zip(want) {
        assert_eq!(aad, w["aad"].as_str().expect("aad"), "{name}: aad");
        let v = &w["value"];
        match (got, v) {
            (Node::Str(b), Value::String(s)) => assert_eq!(b, s.as_bytes(), "{name} {aad}"),
            (Node::Float(f), Value::Number(n)) => assert_eq!(Some(*f), n.as_f64(), "{name} {aad}"),
            (Node::Int(i), Value::Number(n)) => assert_eq!(Some(*i), n.as_i64(), "{name} {aad}"),
            (Node::Bool(b), Value::Bool(e)) => assert_eq!(b, e, "{name} {aad}"),
            (g, e) => panic!("{name} {aad}: got {g:?}, want {e}"),
        }
    }
    for c in expected["comments"].as_array().into_iter().flatten() {
        let pair = (
            c["aad"].as_str().expect("aad").to_string(),
            c["plaintext"].as_str().expect("plaintext").to_string(),
        );
        assert!(comments.contains(&pair), "{name}: comment {pair:?} missing");
    }
}

fn age_ids(key_file: &Path) -> Identities {
    let (ids, warnings) = Identities::load_from(&Sources {
        explicit: vec![key_file.to_path_buf()],
        ..Sources::default()
    });
    assert!(warnings.is_empty(), "{warnings:?}");
    ids
}

#[test]
fn age_examples_decrypt_with_both_key_files() {
    let Some(c) = conformance() else { return };
    let dir = c.join("sops");
    for keys in ["age_keys.txt", "age_keys_single.txt"] {
        let ids = age_ids(&dir.join(keys));
        for name in [
            "age_example.yaml",
            "age_example.json",
            "age_example.ini",
            "age_example.txt",
        ] {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).expect("read");
            let origin = Origin::File(path.clone());
            let format = Format::from_path(&path);
            let doc = sops::decrypt(&origin, &bytes, format, &ids, DecryptOptions::default())
                .unwrap_or_else(|e| panic!("{name} with {keys}: {e}"));
            check_values(name, &doc, &json(&dir.join(format!("{name}.values.json"))));
        }
    }
}

#[test]
fn pgp_files_decrypt_with_the_recorded_data_key() {
    let Some(c) = conformance() else { return };
    let dir = c.join("sops");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.starts_with("pgp_") || name.starts_with("ft_"))
            || name.ends_with(".json") && name.contains(".values")
        {
            continue;
        }
        let vj = dir.join(format!("{name}.values.json"));
        if !vj.exists() {
            continue;
        }
        n += 1;
        let expected = json(&vj);
        let key = hex32(expected["data_key_hex"].as_str().expect("key"));
        let bytes = std::fs::read(&path).expect("read");
        let origin = Origin::File(path.clone());
        let format = format_of(&name);
        let verified = expected["mac_verified"].as_bool().unwrap_or(false);
        let res =
            sops::decrypt_with_data_key(&origin, &bytes, format, &key, DecryptOptions::default());
        if !verified {
            let e = res.expect_err("a file without MAC must fail");
            assert!(e.to_string().contains("no MAC"), "{name}: {e}");
        }
        let doc = sops::decrypt_with_data_key(
            &origin,
            &bytes,
            format,
            &key,
            DecryptOptions {
                ignore_mac: !verified,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        check_values(&name, &doc, &expected);
        let exp = dir.join(format!("{name}.expected-decrypt"));
        if exp.exists() {
            let want = std::fs::read(&exp).expect("expected");
            assert_eq!(
                *doc.render(format).expect("render"),
                want,
                "{name}: sops -d output"
            );
        }
    }
    assert!(n >= 15, "only {n} pgp/functional-test files found");
}

#[test]
fn ft_comments_round_to_the_source_plaintext() {
    let Some(c) = conformance() else { return };
    let dir = c.join("sops");
    let expected = json(&dir.join("ft_comments.enc.yaml.values.json"));
    let key = hex32(expected["data_key_hex"].as_str().expect("key"));
    let path = dir.join("ft_comments.enc.yaml");
    let doc = sops::decrypt_with_data_key(
        &Origin::File(path.clone()),
        &std::fs::read(&path).expect("read"),
        Format::Yaml,
        &key,
        DecryptOptions::default(),
    )
    .expect("decrypt");
    let mut want = std::fs::read(dir.join("ft_comments.yaml")).expect("plain");
    want.push(b'\n');
    assert_eq!(*doc.render(Format::Yaml).expect("render"), want);
}

#[test]
fn age_layer_vectors() {
    let Some(c) = conformance() else { return };
    let dir = c.join("sops");
    let origin = |n: &str| Origin::File(dir.join(n));
    let x = age_ids(&dir.join("agevec_mock_identity.txt"));
    let data = std::fs::read(dir.join("agevec_mock_x25519_enc_data.age.asc")).expect("read");
    assert_eq!(
        *sops::decrypt_age(&origin("x"), &data, &x).expect("x25519"),
        b"data"
    );
    let ssh = age_ids(&dir.join("agevec_mock_ssh_ed25519_id"));
    let data = std::fs::read(dir.join("agevec_mock_sshed25519_enc_data.age.asc")).expect("read");
    assert_eq!(
        *sops::decrypt_age(&origin("s"), &data, &ssh).expect("ssh"),
        b"data"
    );
    // The wrong identity: 77-class error naming recipients.
    let other = age_ids(&dir.join("agevec_mock_other_identity.txt"));
    let e = sops::decrypt_age(&origin("o"), &data, &other).expect_err("wrong identity");
    assert!(e.is_permission(), "{e}");
    assert!(e.to_string().contains("ssh-ed25519"), "{e}");
    // scrypt-protected identity file holding mockIdentity.
    let (ids, warnings) = Identities::load_from(&Sources {
        explicit: vec![dir.join("agevec_mock_identity_scrypt_passphrase.age.asc")],
        passphrase: Some("passphrase".into()),
        ..Sources::default()
    });
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        ids.recipients(),
        vec!["age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun".to_string()]
    );
    let data = std::fs::read(dir.join("agevec_mock_x25519_enc_data.age.asc")).expect("read");
    assert_eq!(
        *sops::decrypt_age(&origin("x"), &data, &ids).expect("scrypt id"),
        b"data"
    );
    let (_, warnings) = Identities::load_from(&Sources {
        explicit: vec![dir.join("agevec_mock_identity_scrypt_passphrase.age.asc")],
        passphrase: Some("wrong".into()),
        ..Sources::default()
    });
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("wrong passphrase"), "{warnings:?}");
}

#[test]
fn sops_nix_secrets_yaml_opens_with_the_ssh_host_key() {
    let Some(c) = conformance() else { return };
    let dir = c.join("sops-nix/test-assets");
    let expected = json(&c.join("sops-nix/EXPECTED.json"));
    let out = run(
        {
            let mut cmd = tskeyctl();
            cmd.args(["decrypt", "-i"])
                .arg(dir.join("ssh-ed25519-key"))
                .arg(dir.join("secrets.yaml"));
            cmd
        },
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "test_key: test_value\na_list:\n    - e1\n    - e3\nnested:\n    test:\n        file: another value\n"
    );
    for (key, want) in [
        ("test_key", "test_value"),
        ("nested/test/file", "another value"),
    ] {
        let mut cmd = tskeyctl();
        cmd.args(["decrypt", "--key", key, "-i"])
            .arg(dir.join("ssh-ed25519-key"))
            .arg(dir.join("secrets.yaml"));
        let out = run(cmd, None);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, want.as_bytes());
        let installed =
            std::fs::read(c.join("sops-nix/derived/expected-install").join(key)).expect("expected");
        assert_eq!(out.stdout, installed);
    }
    // Also with its age key, and every other file through its recorded data key.
    let ids = age_ids(&dir.join("age-keys.txt"));
    let p = dir.join("secrets.yaml");
    sops::decrypt(
        &Origin::File(p.clone()),
        &std::fs::read(&p).expect("read"),
        Format::Yaml,
        &ids,
        DecryptOptions::default(),
    )
    .expect("age key");
    for (name, format) in [
        ("secrets.json", Format::Json),
        ("secrets.bin", Format::Binary),
        ("secrets.env", Format::Dotenv),
        ("secrets.ini", Format::Ini),
        ("secrets.yaml", Format::Yaml),
    ] {
        let e = &expected[name];
        let key = hex32(e["data_key_hex"].as_str().expect("key"));
        let p = dir.join(name);
        let doc = sops::decrypt_with_data_key(
            &Origin::File(p.clone()),
            &std::fs::read(&p).expect("read"),
            format,
            &key,
            DecryptOptions::default(),
        )
        .unwrap_or_else(|err| panic!("{name}: {err}"));
        let (vals, comments) = leaves(doc.branches());
        let want = e["values"].as_array().expect("values");
        assert_eq!(vals.len(), want.len(), "{name}");
        for ((aad, got), w) in vals.iter().zip(want) {
            assert_eq!(aad, w["aad"].as_str().expect("aad"));
            assert_eq!(
                *got,
                Node::str(w["plaintext"].as_str().expect("pt")),
                "{name} {aad}"
            );
        }
        for ec in e["encrypted_comments"].as_array().into_iter().flatten() {
            let pair = (
                ec["aad"].as_str().expect("aad").to_string(),
                ec["plaintext"].as_str().expect("pt").to_string(),
            );
            assert!(comments.contains(&pair), "{name}: {pair:?}");
        }
        if name == "secrets.bin" {
            let plain =
                std::fs::read(c.join("sops-nix/derived/expected-install/secrets.bin.plain"))
                    .expect("plain");
            assert_eq!(*doc.render(Format::Binary).expect("render"), plain);
        }
        if name == "secrets.env" {
            let plain =
                std::fs::read(c.join("sops-nix/derived/expected-install/secrets.env.plain"))
                    .expect("plain");
            assert_eq!(*doc.render(Format::Dotenv).expect("render"), plain);
        }
    }
}

#[test]
fn agenix_files_open_with_their_ssh_keys() {
    let Some(c) = conformance() else { return };
    let dir = c.join("agenix");
    let expected = json(&dir.join("EXPECTED.json"));
    for (name, e) in expected["files"].as_object().expect("files") {
        let want = e["plaintext"].as_str().expect("plaintext");
        let openers: Vec<&str> = e["decrypts_with"]
            .as_array()
            .expect("dw")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        for key in ["example_keys/system1", "example_keys/user1"] {
            let mut cmd = tskeyctl();
            cmd.args(["decrypt", "-i"])
                .arg(dir.join(key))
                .arg("--")
                .arg(dir.join("example").join(name));
            let out = run(cmd, None);
            if openers.contains(&key) {
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "{name} {key}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(out.stdout, want.as_bytes(), "{name} {key}");
            } else {
                assert_eq!(out.status.code(), Some(77), "{name} {key}");
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(err.contains("ssh-ed25519 (key tag V3XmEA)"), "{err}");
                assert!(err.contains("identities tried"), "{err}");
            }
        }
    }
}
