//! Real sops 3.11 → tskeyctl: files made by `sops encrypt` across every format × recipient kind
//! × crypt option decrypt byte-identically to `sops decrypt` (whole file and `--extract`).

mod sops_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use sops_support::*;

/// Test keys, generated per run.
pub struct Keys {
    pub x_a: (String, String),
    pub x_b: (String, String),
    pub ssh_key: PathBuf,
    pub ssh_pub: String,
    pub converted_recipient: String,
    pub converted_identity: String,
}

pub fn make_keys(dir: &Path) -> Keys {
    let new_key = || {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        (
            id.to_string().expose_secret().to_string(),
            id.to_public().to_string(),
        )
    };
    let kp = ssh_key::private::Ed25519Keypair::from_seed(&[0x42; 32]);
    let mut key = ssh_key::PrivateKey::from(kp);
    key.set_comment("host@test");
    let pem = key.to_openssh(ssh_key::LineEnding::LF).expect("pem");
    let ssh_key = write(dir, "ssh_host_ed25519_key", pem.as_bytes());
    let ssh_pub = key.public_key().to_openssh().expect("pub");
    let hk = tskeyctl::hostkey::HostKey::from_openssh(
        &tskeyctl::source::Origin::File(ssh_key.clone()),
        pem.as_bytes(),
        None,
    )
    .expect("hostkey");
    Keys {
        x_a: new_key(),
        x_b: new_key(),
        ssh_key,
        ssh_pub,
        converted_recipient: hk.public().age_recipient().expect("recipient"),
        converted_identity: hk.age_identity_string().to_string(),
    }
}

const BIG: usize = 64 << 10;

pub fn plaintexts() -> Vec<(&'static str, Vec<u8>)> {
    let big = "x".repeat(BIG);
    let yaml = format!(
        "# top comment\nuser: alice # inline\npw: \"s3cr3t\"\ntoken_secret: tok\nhost_clear: example.org\n\
comment_unencrypted: visible\nempty: \"\"\nnumber: 42\nfloat: 2.5\nflag: true\nnothing: null\n\
date: 2024-01-01\nunicode: \"héllo wörld ✓ 日本\"\nnested:\n  # head\n  list:\n    - one\n    # in list\n    - two: 2\n      three: [a, b]\n    - |\n      multi\n      line\n  map:\n    deep: value\n    pw: p2\n# foot\nbig: {big}\n---\nsecond: doc\n"
    );
    let json = format!(
        "{{\"user\": \"alice\", \"pw\": \"s3cr3t\", \"token_secret\": \"tok\", \"host_clear\": \"example.org\", \
\"comment_unencrypted\": \"visible\", \"empty\": \"\", \"number\": 42, \"float\": 2.5, \"flag\": true, \"nothing\": null, \
\"unicode\": \"héllo ✓ <&> \\u2028\", \"nested\": {{\"list\": [\"one\", {{\"two\": 2, \"three\": [\"a\", \"b\"]}}], \"map\": {{\"deep\": \"value\", \"pw\": \"p2\"}}, \"empty_map\": {{}}, \"empty_list\": []}}, \"big\": \"{big}\"}}"
    );
    let env = format!(
        "# comment\nuser=alice\npw=s3cr3t\ntoken_secret=tok\nhost_clear=example.org\ncomment_unencrypted=visible\nempty=\nunicode=héllo ✓\nmulti=line1\\nline2\nbig={big}\n"
    );
    let ini = format!(
        "; section comment\n[app]\nuser = alice\npw = s3cr3t\ntoken_secret = tok\nhost_clear = example.org\ncomment_unencrypted = visible\nempty =\nunicode = héllo ✓\nbig = {big}\n\n[other]\nkey = value\n"
    );
    let mut bin: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    bin.extend_from_slice(b"\xff\xfe\x00invalid utf-8 \xc3\x28 end");
    vec![
        ("yaml", yaml.into_bytes()),
        ("json", json.into_bytes()),
        ("env", env.into_bytes()),
        ("ini", ini.into_bytes()),
        ("bin", bin),
    ]
}

pub fn extracts(ext: &str) -> &'static [&'static str] {
    match ext {
        "yaml" => &[
            "[\"user\"]",
            "[\"nested\"][\"list\"][1]",
            "[\"nested\"]",
            "[\"number\"]",
            "[\"nested\"][\"list\"][2]",
        ],
        "json" => &[
            "[\"user\"]",
            "[\"nested\"][\"list\"]",
            "[\"nested\"]",
            "[\"float\"]",
        ],
        "env" => &["[\"pw\"]", "[\"multi\"]"],
        "ini" => &["[\"app\"][\"pw\"]", "[\"other\"]"],
        _ => &[],
    }
}

/// Recipient kinds: (name, creation-rule YAML for the keys, how sops decrypts, how tskeyctl decrypts).
pub struct Kind {
    pub name: &'static str,
    pub rule_keys: String,
    pub sops_env: Vec<(&'static str, PathBuf)>,
    pub tk_ids: Vec<PathBuf>,
}

pub fn kinds(dir: &Path, k: &Keys) -> Vec<Kind> {
    let xa = write(dir, "xa.txt", format!("{}\n", k.x_a.0).as_bytes());
    let xab = write(
        dir,
        "xab.txt",
        format!("# two keys\n{}\n{}\n", k.x_a.0, k.x_b.0).as_bytes(),
    );
    let conv = write(
        dir,
        "conv.txt",
        format!("{}\n", k.converted_identity).as_bytes(),
    );
    vec![
        Kind {
            name: "x25519",
            rule_keys: format!("    age: {}\n", k.x_a.1),
            sops_env: vec![("SOPS_AGE_KEY_FILE", xa.clone())],
            tk_ids: vec![xa.clone()],
        },
        Kind {
            name: "ssh-native",
            rule_keys: format!("    age: '{}'\n", k.ssh_pub),
            sops_env: vec![("SOPS_AGE_SSH_PRIVATE_KEY_FILE", k.ssh_key.clone())],
            tk_ids: vec![k.ssh_key.clone()],
        },
        Kind {
            name: "ssh-converted",
            rule_keys: format!("    age: {}\n", k.converted_recipient),
            sops_env: vec![("SOPS_AGE_KEY_FILE", conv)],
            tk_ids: vec![k.ssh_key.clone()],
        },
        Kind {
            name: "several",
            rule_keys: format!("    age: '{},{}'\n", k.x_b.1, k.ssh_pub),
            sops_env: vec![("SOPS_AGE_SSH_PRIVATE_KEY_FILE", k.ssh_key.clone())],
            tk_ids: vec![k.ssh_key.clone()],
        },
        Kind {
            name: "shamir-2-of-3",
            rule_keys: format!(
                "    shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: ['{}']\n",
                k.x_a.1, k.x_b.1, k.ssh_pub
            ),
            sops_env: vec![("SOPS_AGE_KEY_FILE", xab.clone())],
            tk_ids: vec![xab],
        },
    ]
}

pub const OPTIONS: &[&str] = &[
    "",
    "    encrypted_regex: '^(pw|token_secret|big|data)$'\n",
    "    unencrypted_regex: '^(user|host_clear)$'\n",
    "    encrypted_suffix: _secret\n",
    "    unencrypted_suffix: _clear\n",
    "    mac_only_encrypted: true\n",
];

pub fn sops_cmd(sops: &Path, dir: &Path, env: &[(&str, PathBuf)]) -> Command {
    let mut c = Command::new(sops);
    clean_env(&mut c);
    c.current_dir(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
fn real_sops_files_decrypt_byte_identically() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let mut checked = 0;
    for kind in kinds(dir, &keys) {
        for (oi, opt) in OPTIONS.iter().enumerate() {
            let rule = format!(
                "creation_rules:\n  - path_regex: .*\n{}{}",
                kind.rule_keys, opt
            );
            write(dir, ".sops.yaml", rule.as_bytes());
            for (ext, plain) in plaintexts() {
                let name = format!("f-{}-{oi}.{ext}", kind.name);
                let src = write(dir, &name, &plain);
                let mut enc = sops_cmd(&sops, dir, &[]);
                enc.args(["encrypt", "-i"]).arg(&src);
                let out = run(enc, None);
                assert_eq!(
                    out.status.code(),
                    Some(0),
                    "sops encrypt {name}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let mut extracts_all: Vec<Option<&str>> = vec![None];
                extracts_all.extend(extracts(ext).iter().map(|e| Some(*e)));
                for x in extracts_all {
                    let mut dec = sops_cmd(&sops, dir, &kind.sops_env);
                    dec.arg("decrypt");
                    let mut tk = tskeyctl();
                    tk.current_dir(dir).arg("decrypt");
                    for id in &kind.tk_ids {
                        tk.arg("-i").arg(id);
                    }
                    if let Some(x) = x {
                        dec.args(["--extract", x]);
                        tk.args(["--extract", x]);
                    }
                    dec.arg(&src);
                    tk.arg(&src);
                    let want = run(dec, None);
                    let got = run(tk, None);
                    if want.status.code() != Some(0) {
                        // Where sops refuses (e.g. a section extracted from INI), so do we.
                        assert_ne!(
                            got.status.code(),
                            Some(0),
                            "{name} {x:?}: sops failed but tskeyctl did not"
                        );
                        checked += 1;
                        continue;
                    }
                    assert_eq!(
                        got.status.code(),
                        Some(0),
                        "tskeyctl decrypt {name} {x:?}: {}",
                        String::from_utf8_lossy(&got.stderr)
                    );
                    if want.stdout != got.stdout {
                        std::fs::write("/tmp/tskeyctl-interop-want", &want.stdout).ok();
                        std::fs::write("/tmp/tskeyctl-interop-got", &got.stdout).ok();
                        panic!(
                            "{name} {x:?}: output differs from sops (see /tmp/tskeyctl-interop-{{want,got}})"
                        );
                    }
                    checked += 1;
                }
            }
        }
    }
    eprintln!("{checked} decryptions compared");
    assert!(checked > 100);
}

#[test]
fn shamir_threshold_not_met_is_77_for_both() {
    let Some(sops) = sops() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let kind = kinds(dir, &keys).pop().expect("shamir");
    write(
        dir,
        ".sops.yaml",
        format!("creation_rules:\n  - path_regex: .*\n{}", kind.rule_keys).as_bytes(),
    );
    let src = write(dir, "s.yaml", b"a: b\n");
    let mut enc = sops_cmd(&sops, dir, &[]);
    enc.args(["encrypt", "-i"]).arg(&src);
    assert_eq!(run(enc, None).status.code(), Some(0));
    let xa = dir.join("xa.txt");
    let mut dec = sops_cmd(&sops, dir, &[("SOPS_AGE_KEY_FILE", xa.clone())]);
    dec.arg("decrypt").arg(&src);
    assert_ne!(run(dec, None).status.code(), Some(0));
    let mut tk = tskeyctl();
    tk.arg("decrypt").arg("-i").arg(&xa).arg(&src);
    let out = run(tk, None);
    assert_eq!(out.status.code(), Some(77));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Shamir threshold of 2, but only 1"), "{err}");
    assert!(err.contains(&keys.x_b.1), "{err}");
    // With the ssh key as well (group 3) it opens.
    let mut tk = tskeyctl();
    tk.arg("decrypt")
        .arg("-i")
        .arg(&xa)
        .arg("-i")
        .arg(&keys.ssh_key)
        .arg(&src);
    let out = run(tk, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"a: b\n");
}
