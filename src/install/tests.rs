//! Flow tests of `install` with a stand-in decoder (plain JSON files play the part of sops files),
//! so validation, generations, change detection and all-or-nothing behaviour are tested apart
//! from sops. End-to-end tests with real sops files are in `tests/it/install_*.rs`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use zeroize::Zeroizing;

use super::error::Class;
use super::*;

/// Plain JSON "sops" files; a top-level `"locked": true` makes a file undecryptable.
#[derive(Default)]
struct Fake {
    inspected: usize,
    decrypted: usize,
}

struct Doc(Value, Vec<u8>);

fn walk<'a>(v: &'a Value, key: &str) -> Result<&'a Value, KeyError> {
    let mut cur = v;
    let mut so_far = String::new();
    for comp in key.split('/') {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(comp);
        let Value::Object(map) = cur else {
            return Err(KeyError::NotADictionary { path: so_far });
        };
        cur = map.get(comp).ok_or(KeyError::NotFound {
            path: so_far.clone(),
        })?;
    }
    Ok(cur)
}

impl KeyIndex for Doc {
    fn check(&self, key: &str) -> Result<(), KeyError> {
        self.leaf(key).map(|_| ())
    }
}

impl Plaintext for Doc {
    fn leaf(&self, key: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        match walk(&self.0, key)? {
            Value::String(s) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
            _ => Err(KeyError::NotAString { path: key.into() }),
        }
    }
    fn whole(&self) -> Result<Zeroizing<Vec<u8>>, FileError> {
        Ok(Zeroizing::new(self.1.clone()))
    }
}

fn parse(bytes: &[u8]) -> Result<Doc, FileError> {
    serde_json::from_slice(bytes)
        .map(|v| Doc(v, bytes.to_vec()))
        .map_err(|e| FileError {
            problem: FileProblem::Malformed,
            detail: e.to_string(),
        })
}

impl SecretFiles for Fake {
    fn inspect(&mut self, _: &Path, b: &[u8], _: Format) -> Result<Box<dyn KeyIndex>, FileError> {
        self.inspected += 1;
        Ok(Box::new(parse(b)?))
    }
    fn decrypt(&mut self, _: &Path, b: &[u8], _: Format) -> Result<Box<dyn Plaintext>, FileError> {
        self.decrypted += 1;
        let d = parse(b)?;
        if d.0.get("locked") == Some(&Value::Bool(true)) {
            return Err(FileError {
                problem: FileProblem::Undecryptable,
                detail: "no identity opens it".into(),
            });
        }
        Ok(Box::new(d))
    }
}

impl Decoder for Fake {
    fn load_identities(&mut self, _: &IdentitySources) -> Result<(), InstallError> {
        Ok(())
    }
}

struct Env {
    _t: tempfile::TempDir,
    root: PathBuf,
}

fn ids() -> (u32, u32) {
    (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    )
}

impl Env {
    fn new() -> Env {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_path_buf();
        fs::create_dir_all(root.join("run/nixos")).unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        Env { _t: t, root }
    }
    fn file(&self, name: &str, body: &str) {
        fs::write(self.root.join("src").join(name), body).unwrap();
    }
    fn manifest(&self, secrets: &[Value]) -> Options {
        let (uid, gid) = ids();
        let secrets: Vec<Value> = secrets
            .iter()
            .map(|s| {
                let mut s = s.clone();
                let o = s.as_object_mut().unwrap();
                o.entry("uid").or_insert(uid.into());
                o.entry("gid").or_insert(gid.into());
                s
            })
            .collect();
        let m = serde_json::json!({
            "secrets": secrets, "templates": [], "secretsMountPoint": "/run/secrets.d",
            "symlinkPath": "/run/secrets", "keepGenerations": 1, "sshKeyPaths": [],
            "ageSshKeyPaths": ["/etc/ssh/ssh_host_ed25519_key"], "useTmpfs": false, "userMode": false,
            "logging": {"keyImport": true, "secretChanges": true}
        });
        let p = self.root.join("manifest.json");
        fs::write(&p, serde_json::to_vec(&m).unwrap()).unwrap();
        Options {
            manifest: p,
            root: Some(self.root.clone()),
            check: false,
            mount: false,
            dry: false,
            via_systemctl: false,
            ignore_passwd: false,
        }
    }
    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
}

fn secret(name: &str, file: &str, key: &str) -> Value {
    serde_json::json!({"name": name, "key": key, "sopsFile": format!("/src/{file}"),
        "format": "json", "mode": "0440", "restartUnits": [format!("{}.service", name.replace('/', "-"))]})
}

#[test]
fn installs_switches_reports_and_prunes() {
    let env = Env::new();
    env.file("a.json", r#"{"x": {"y": "one"}, "top": "t"}"#);
    env.file("b.json", r#"{"k": "kv"}"#);
    let mut link = secret("link", "b.json", "k");
    link["path"] = "/etc/app/key".into();
    let opts = env.manifest(&[
        secret("nested/x", "a.json", "x/y"),
        secret("top", "a.json", "top"),
        link,
    ]);
    let mut fake = Fake::default();
    let out = run(&opts, &mut fake).unwrap();
    assert_eq!((fake.inspected, fake.decrypted), (2, 2), "each file once");
    assert_eq!(out.generation, Some(1));
    assert!(out.changes.is_none(), "first install reports nothing");
    assert_eq!(
        fs::read_link(env.p("run/secrets")).unwrap(),
        env.p("run/secrets.d/1")
    );
    assert_eq!(fs::read(env.p("run/secrets/nested/x")).unwrap(), b"one");
    let meta = fs::metadata(env.p("run/secrets/top")).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o440);
    assert_eq!(
        fs::read_link(env.p("etc/app/key")).unwrap(),
        env.p("run/secrets/link")
    );
    assert_eq!(fs::read(env.p("etc/app/key")).unwrap(), b"kv");

    // Second run: one value changed, one secret dropped.
    env.file("a.json", r#"{"x": {"y": "two"}, "top": "t"}"#);
    let opts = env.manifest(&[
        secret("nested/x", "a.json", "x/y"),
        secret("top", "a.json", "top"),
    ]);
    let out = run(&opts, &mut Fake::default()).unwrap();
    assert_eq!(out.generation, Some(2));
    assert_eq!(out.pruned, vec![1]);
    assert!(!env.p("run/secrets.d/1").exists());
    assert_eq!(
        out.report,
        "modifying secret: nested/x\nremoving secret: link\n"
    );
    assert_eq!(
        fs::read_to_string(env.p("run/nixos/activation-restart-list")).unwrap(),
        "nested-x.service\n"
    );
    assert_eq!(fs::read(env.p("run/secrets/nested/x")).unwrap(), b"two");
}

#[test]
fn one_bad_secret_changes_nothing() {
    let env = Env::new();
    env.file("a.json", r#"{"k": "v"}"#);
    env.file("locked.json", r#"{"locked": true, "k": "v"}"#);
    let opts = env.manifest(&[secret("k", "a.json", "k")]);
    run(&opts, &mut Fake::default()).unwrap();
    let before = fs::read_link(env.p("run/secrets")).unwrap();

    let mut bad_mode = secret("m", "a.json", "k");
    bad_mode["mode"] = "0999".into();
    let mut bad_owner = secret("o", "a.json", "k");
    bad_owner["owner"] = "no-such-user-tskeyctl".into();
    let cases: Vec<(Value, Class)> = vec![
        (secret("missing", "a.json", "nope"), Class::Config),
        (bad_mode, Class::Config),
        (bad_owner, Class::Config),
        (secret("l", "locked.json", "k"), Class::Permission),
    ];
    for (bad, class) in cases {
        env.file("a.json", r#"{"k": "changed"}"#);
        let opts = env.manifest(&[secret("k", "a.json", "k"), bad.clone()]);
        let err = run(&opts, &mut Fake::default()).unwrap_err();
        assert_eq!(err.class(), class, "{bad}: {err}");
        assert_eq!(fs::read_link(env.p("run/secrets")).unwrap(), before);
        assert!(!env.p("run/secrets.d/2").exists(), "{bad}");
        assert_eq!(fs::read(env.p("run/secrets/k")).unwrap(), b"v");
    }
}

#[test]
fn check_and_dry_run_do_not_decrypt_or_write() {
    let env = Env::new();
    env.file("a.json", r#"{"k": "v"}"#);
    let mut opts = env.manifest(&[secret("k", "a.json", "k")]);
    opts.check = true;
    let mut fake = Fake::default();
    run(&opts, &mut fake).unwrap();
    assert_eq!((fake.inspected, fake.decrypted), (1, 0));
    assert!(!env.p("run/secrets.d").exists());

    opts.check = false;
    run(&opts, &mut Fake::default()).unwrap();
    env.file("a.json", r#"{"k": "w"}"#);
    opts.dry = true;
    let out = run(&opts, &mut Fake::default()).unwrap();
    assert_eq!(out.report, "would modify secret: k\n");
    assert!(!env.p("run/secrets.d/2").exists());
    assert_eq!(fs::read(env.p("run/secrets/k")).unwrap(), b"v");
    assert_eq!(
        fs::read_to_string(env.p("run/nixos/dry-activation-restart-list")).unwrap(),
        "k.service\n"
    );
    assert!(!env.p("run/nixos/activation-restart-list").exists());
}

#[test]
fn all_problems_are_listed() {
    let env = Env::new();
    env.file("a.json", r#"{"k": "v"}"#);
    let mut two_formats = secret("f", "a.json", "k");
    two_formats["format"] = "yaml".into();
    let opts = env.manifest(&[
        secret("k", "a.json", "k"),
        secret("k", "a.json", "k"),
        secret("k/sub", "a.json", "k"),
        secret("../x", "a.json", "k"),
        two_formats,
    ]);
    let err = run(&opts, &mut Fake::default()).unwrap_err().to_string();
    assert!(err.starts_with("4 problems, nothing was changed"), "{err}");
    assert!(
        err.contains("secret 'k': the name is used by another secret"),
        "{err}"
    );
    assert!(err.contains("secret 'k' is a file"), "{err}");
    assert!(err.contains("'..'"), "{err}");
    assert!(err.contains("one file has one format"), "{err}");
}

#[test]
fn pgp_and_templates_are_refused() {
    let env = Env::new();
    let p = env.p("m.json");
    fs::write(&p, br#"{"secrets":[],"sshKeyPaths":["/etc/ssh/ssh_host_rsa_key"],"gnupgHome":"/g","templates":[{"name":"t"}]}"#).unwrap();
    let opts = Options {
        manifest: p,
        root: Some(env.root.clone()),
        check: true,
        mount: false,
        dry: false,
        via_systemctl: false,
        ignore_passwd: false,
    };
    let err = run(&opts, &mut Fake::default()).unwrap_err();
    assert_eq!(err.class(), Class::Config);
    let msg = err.to_string();
    assert!(
        msg.contains("sshKeyPaths") && msg.contains("gnupgHome") && msg.contains("templates"),
        "{msg}"
    );
}
