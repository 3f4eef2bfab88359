//! The test matrix shared by the interop tests: generated keys, plaintexts in every format,
//! recipient kinds and crypt options, as `.sops.yaml` creation rules.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{clean_env, write};

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
        "# top comment\nuser: alice # inline\n# sops:enc\npw: \"s3cr3t\"\ntoken_secret: tok\n# sops:noenc\nhost_clear: example.org\n\
comment_unencrypted: visible\nempty: \"\"\nnumber: 42\nfloat: 2.5\nflag: true\nnothing: null\n\
date: 2024-01-01\nunicode: \"héllo wörld ✓ 日本\"\nnested:\n  # head\n  list:\n    - one\n    # in list\n    - two: 2\n      three: [a, b]\n    - |\n      multi\n      line\n  map:\n    deep: value\n    pw: p2\n# foot\nbig: {big}\n---\nsecond: doc\n"
    );
    let json = format!(
        "{{\"user\": \"alice\", \"pw\": \"s3cr3t\", \"token_secret\": \"tok\", \"host_clear\": \"example.org\", \
\"comment_unencrypted\": \"visible\", \"empty\": \"\", \"number\": 42, \"float\": 2.5, \"flag\": true, \"nothing\": null, \
\"unicode\": \"héllo ✓ <&> \\u2028\", \"nested\": {{\"list\": [\"one\", {{\"two\": 2, \"three\": [\"a\", \"b\"]}}], \"map\": {{\"deep\": \"value\", \"pw\": \"p2\"}}, \"empty_map\": {{}}, \"empty_list\": []}}, \"big\": \"{big}\"}}"
    );
    let env = format!(
        "# comment\nuser=alice\n#sops:enc\npw=s3cr3t\ntoken_secret=tok\n# sops:noenc\nhost_clear=example.org\ncomment_unencrypted=visible\nempty=\nunicode=héllo ✓\nmulti=line1\\nline2\nbig={big}\n"
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
    "    encrypted_comment_regex: 'sops:enc'\n",
    "    unencrypted_comment_regex: 'sops:noenc'\n",
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
