//! `install` against sops-nix's own test assets (`../shared/conformance/sops-nix`, see its
//! SOURCES.md): the host ed25519 key in `ageSshKeyPaths` (converted like ssh-to-age, in memory)
//! and the age key file each open `secrets.yaml` and install what sops-nix's tests assert;
//! `--check` accepts all five sops-nix files (the PGP-only ones too: no decryption).
//! Skipped with a notice when the conformance folder is absent.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

fn assets() -> Option<PathBuf> {
    let d = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance/sops-nix"
    ));
    if d.join("test-assets/secrets.yaml").is_file() {
        // Manifest paths are taken as written and `..` is refused: give the plain path.
        Some(d.canonicalize().expect("canonicalize"))
    } else {
        eprintln!("skipped: {} not found", d.display());
        None
    }
}

fn entry(name: &str, file: &Path, format: &str, key: &str) -> Value {
    json!({"name": name, "key": key, "sopsFile": file, "format": format, "mode": "0400",
           "owner": null, "group": null,
           "uid": nix::unistd::geteuid().as_raw(), "gid": nix::unistd::getegid().as_raw(),
           "restartUnits": [], "reloadUnits": []})
}

fn run(dir: &Path, secrets: Vec<Value>, ids: Value, check: bool) -> Output {
    let mut m = json!({
        "secrets": secrets, "templates": [], "secretsMountPoint": dir.join("secrets.d"),
        "symlinkPath": dir.join("secrets"), "keepGenerations": 1, "sshKeyPaths": [],
        "gnupgHome": null, "ageKeyFile": null, "ageSshKeyPaths": [], "useTmpfs": false,
        "userMode": false, "logging": {"keyImport": true, "secretChanges": true}
    });
    for (k, v) in ids.as_object().unwrap() {
        m[k] = v.clone();
    }
    let p = dir.join("manifest.json");
    fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_tskeyctl"));
    c.arg("install")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    if check {
        c.arg("--check");
    } else {
        c.arg("--no-mount");
    }
    c.arg(&p).output().unwrap()
}

fn yaml_secrets(a: &Path) -> Vec<Value> {
    let y = a.join("test-assets/secrets.yaml");
    vec![
        entry("test_key", &y, "yaml", "test_key"),
        entry("nested/test/file", &y, "yaml", "nested/test/file"),
    ]
}

fn assert_expected(a: &Path, dir: &Path) {
    let exp = a.join("derived/expected-install");
    for n in ["test_key", "nested/test/file"] {
        assert_eq!(
            fs::read(dir.join("secrets").join(n)).unwrap(),
            fs::read(exp.join(n)).unwrap(),
            "{n}"
        );
    }
}

#[test]
fn host_ssh_key_opens_secrets_yaml_like_sops_nix() {
    let Some(a) = assets() else { return };
    let t = tempfile::tempdir().unwrap();
    let key = a.join("test-assets/ssh-ed25519-key");
    let out = run(
        t.path(),
        yaml_secrets(&a),
        json!({"ageSshKeyPaths": [key]}),
        false,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_expected(&a, t.path());
    // keyImport logging names the converted recipient (the 2nd age recipient of secrets.yaml).
    assert!(
        err.contains("age1a8pk4akrdamj7nvqy3zywgtny8dxz7t5xzu7u8v9mhrayp9freqsqatyrs"),
        "{err}"
    );
    // The converted key stays in memory: nothing but the generation and the link were written.
    let mut names: Vec<String> = fs::read_dir(t.path().join("secrets.d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["1"]);
}

#[test]
fn age_key_file_opens_secrets_yaml() {
    let Some(a) = assets() else { return };
    let t = tempfile::tempdir().unwrap();
    let ids = json!({"ageKeyFile": a.join("test-assets/age-keys.txt")});
    let out = run(t.path(), yaml_secrets(&a), ids, false);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_expected(&a, t.path());
}

#[test]
fn pgp_only_files_are_77_with_the_recipients_named() {
    let Some(a) = assets() else { return };
    let t = tempfile::tempdir().unwrap();
    let j = a.join("test-assets/secrets.json");
    let ids = json!({"ageSshKeyPaths": [a.join("test-assets/ssh-ed25519-key")]});
    let out = run(
        t.path(),
        vec![entry("j", &j, "json", "test_key")],
        ids,
        false,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "{err}");
    assert!(err.contains("secrets.json"), "{err}");
    assert!(!t.path().join("secrets").exists());
}

#[test]
fn check_accepts_all_sops_nix_files_without_keys() {
    let Some(a) = assets() else { return };
    let t = tempfile::tempdir().unwrap();
    let f = |n: &str| a.join("test-assets").join(n);
    let mut secrets = yaml_secrets(&a);
    secrets.extend([
        entry("json", &f("secrets.json"), "json", "test_key"),
        entry("bin", &f("secrets.bin"), "binary", ""),
        entry("env", &f("secrets.env"), "dotenv", ""),
        entry("ini", &f("secrets.ini"), "ini", ""),
    ]);
    let out = run(t.path(), secrets.clone(), json!({}), true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !t.path().join("secrets.d").exists(),
        "--check writes nothing"
    );

    // A list is not addressable; a missing key is named.
    secrets.push(entry("list", &f("secrets.yaml"), "yaml", "a_list"));
    secrets.push(entry("nope", &f("secrets.json"), "json", "nested/x"));
    let out = run(t.path(), secrets, json!({}), true);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("the value of key 'a_list' is not a string"),
        "{err}"
    );
    assert!(err.contains("the key 'nested' cannot be found"), "{err}");
}
