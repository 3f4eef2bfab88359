//! Interop with the npm package `sops-age` (yaml, json, dotenv) and Debian's `age` (the age
//! layer): files tskeyctl encrypts open in both, and age files Debian's age makes open in
//! tskeyctl.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::sops_support::matrix::make_keys;
use crate::sops_support::*;
use crate::util::missing;

/// Directory holding `node_modules/sops-age` (`SOPS_AGE_NPM_DIR`).
fn sops_age_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SOPS_AGE_NPM_DIR").map(PathBuf::from);
    match dir.filter(|d| d.join("node_modules/sops-age/package.json").is_file()) {
        Some(d) => Some(d),
        None => missing("npm sops-age not installed (set SOPS_AGE_NPM_DIR)"),
    }
}

fn tk_json(ids: &[&Path], file: &Path) -> Value {
    let mut c = tskeyctl();
    c.args(["decrypt", "--output-type", "json"]);
    for i in ids {
        c.arg("-i").arg(i);
    }
    let out = run(
        {
            c.arg(file);
            c
        },
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

#[test]
fn sops_age_npm_decrypts_tskeyctl_files() {
    let Some(npm) = sops_age_dir() else { return };
    let Some(node) = peer("NODE_BIN", "node") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let script = write(
        dir,
        "dec.mjs",
        format!(
            "import {{ decryptSops }} from {:?};\n\
const [file, type, key] = process.argv.slice(2);\n\
const out = await decryptSops({{ path: file, secretKey: key, fileType: type }});\n\
process.stdout.write(JSON.stringify(out));\n",
            npm.join("node_modules/sops-age/dist/index.js")
                .display()
                .to_string()
        )
        .as_bytes(),
    );
    let xa = write(dir, "xa.txt", format!("{}\n", keys.x_a.0).as_bytes());
    let inputs: [(&str, &str, &[u8]); 3] = [
        ("yaml", "s.yaml", b"user: alice\npw: s3cr3t # c\nnested:\n  list: [1, 2.5, true, x]\n  map: {k: \"v\\u00e9\"}\nempty: \"\"\n"),
        ("json", "s.json", b"{\"user\": \"alice\", \"n\": 42, \"nested\": {\"l\": [\"a\", {\"b\": false}]}, \"u\": \"\\u2713\"}"),
        ("env", "s.env", b"# comment\nUSER=alice\nPW=s3cr3t\nMULTI=a\\nb\n"),
    ];
    for (typ, name, plain) in inputs {
        let f = write(dir, name, plain);
        let mut enc = tskeyctl();
        enc.args(["encrypt", "-i", "--age", &keys.x_a.1]).arg(&f);
        assert_eq!(run(enc, None).status.code(), Some(0));
        let mut js = Command::new(&node);
        js.arg(&script).arg(&f).arg(typ).arg(&keys.x_a.0);
        let out = run(js, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "sops-age {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got: Value = serde_json::from_slice(&out.stdout).expect("node json");
        let want = tk_json(&[&xa], &f);
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn debian_age_and_tskeyctl_share_the_age_layer() {
    let Some(age_bin) = peer("AGE_BIN", "age") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let keys = make_keys(dir);
    let xa = write(dir, "xa.txt", format!("{}\n", keys.x_a.0).as_bytes());
    let pub_file = write(dir, "host.pub", format!("{}\n", keys.ssh_pub).as_bytes());
    let secret = b"hello \x00\xff age\n".to_vec();
    let plain = write(dir, "plain.bin", &secret);
    // Debian age → tskeyctl: X25519, ssh-ed25519 and converted recipients, binary and armored.
    let cases: Vec<(Vec<String>, &Path)> = vec![
        (vec!["-r".into(), keys.x_a.1.clone()], &xa),
        (
            vec!["-R".into(), pub_file.display().to_string()],
            &keys.ssh_key,
        ),
        (
            vec!["-r".into(), keys.converted_recipient.clone()],
            &keys.ssh_key,
        ),
        (
            vec!["-a".into(), "-R".into(), pub_file.display().to_string()],
            &keys.ssh_key,
        ),
    ];
    for (i, (args, id)) in cases.iter().enumerate() {
        let out_file = dir.join(format!("f{i}.age"));
        let mut c = Command::new(&age_bin);
        c.args(args).arg("-o").arg(&out_file).arg(&plain);
        assert_eq!(run(c, None).status.code(), Some(0), "age {args:?}");
        let mut d = tskeyctl();
        d.args(["decrypt", "-i"]).arg(id).arg(&out_file);
        let out = run(d, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, secret, "{args:?}");
    }
    // tskeyctl → Debian age: every `enc` of a sops file is an age file holding the data key.
    let f = write(dir, "k.json", b"{\"a\": \"b\"}");
    let mut enc = tskeyctl();
    enc.args([
        "encrypt",
        "-i",
        "--age",
        &format!("{},{}", keys.x_a.1, keys.ssh_pub),
    ])
    .arg(&f);
    assert_eq!(run(enc, None).status.code(), Some(0));
    let doc: Value = serde_json::from_slice(&std::fs::read(&f).expect("read")).expect("json");
    for (k, id) in doc["sops"]["age"]
        .as_array()
        .expect("age")
        .iter()
        .zip([&xa, &keys.ssh_key])
    {
        let armored = write(dir, "enc.age", k["enc"].as_str().expect("enc").as_bytes());
        let mut c = Command::new(&age_bin);
        c.args(["-d", "-i"]).arg(id).arg(&armored);
        let out = run(c, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), 32, "data key");
    }
}
