//! Shared helpers for the `install` integration tests: a temp `--root` with an age key, sops
//! files made at test time by the real sops (env `SOPS_BIN`, else `sops` on PATH), manifests in
//! sops-nix's shape, a fake `systemctl` that records its arguments, and running the binary.
//! Without sops or age-keygen the tests print "skipped: …" and pass, except under `CI=true`,
//! where a missing peer fails them.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

use crate::util::{BIN, peer};

/// A temp root with an age identity at `/var/lib/sops-nix/key.txt` and sops files under `/src`.
pub struct Fixture {
    _dir: tempfile::TempDir,
    /// The `--root` directory.
    pub root: PathBuf,
    /// The sops binary.
    pub sops: PathBuf,
    /// `age1…` of the identity.
    pub recipient: String,
    /// Scratch space outside the root (plaintexts, fake systemctl).
    pub scratch: PathBuf,
}

impl Fixture {
    /// `None` when sops or age-keygen is missing (outside CI).
    pub fn new() -> Option<Fixture> {
        let sops = peer("SOPS_BIN", "sops")?;
        let keygen = peer("AGE_KEYGEN_BIN", "age-keygen")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let scratch = dir.path().join("scratch");
        fs::create_dir_all(root.join("var/lib/sops-nix")).unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join("run/nixos")).unwrap();
        fs::create_dir_all(&scratch).unwrap();
        let key = root.join("var/lib/sops-nix/key.txt");
        let out = Command::new(&keygen).arg("-o").arg(&key).output().unwrap();
        assert!(out.status.success(), "age-keygen: {out:?}");
        let recipient = String::from_utf8(
            Command::new(&keygen)
                .arg("-y")
                .arg(&key)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string();
        Some(Fixture {
            _dir: dir,
            root,
            sops,
            recipient,
            scratch,
        })
    }

    /// A second, unrelated age recipient (for "encrypted to the wrong host").
    pub fn foreign_recipient(&self) -> String {
        let key = self.scratch.join("other.txt");
        let _ = fs::remove_file(&key);
        let keygen = peer("AGE_KEYGEN_BIN", "age-keygen").unwrap();
        Command::new(&keygen).arg("-o").arg(&key).output().unwrap();
        String::from_utf8(
            Command::new(&keygen)
                .arg("-y")
                .arg(&key)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap()
        .trim()
        .to_string()
    }

    fn sops_cmd(&self) -> Command {
        let mut c = Command::new(&self.sops);
        c.current_dir(&self.scratch)
            .env("HOME", &self.scratch)
            .env_remove("SOPS_AGE_KEY")
            .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
            .env(
                "SOPS_AGE_KEY_FILE",
                self.root.join("var/lib/sops-nix/key.txt"),
            );
        c
    }

    /// Encrypts `plain` (of sops `format`) to `recipient` into `<root>/src/<name>`; returns the
    /// manifest path `/src/<name>`.
    pub fn encrypt_to(&self, name: &str, format: &str, plain: &[u8], recipient: &str) -> String {
        let input = self.scratch.join(format!("plain-{name}"));
        fs::write(&input, plain).unwrap();
        let out = self
            .sops_cmd()
            .args([
                "--encrypt",
                "--age",
                recipient,
                "--input-type",
                format,
                "--output-type",
                format,
            ])
            .arg(&input)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sops -e: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(self.root.join("src").join(name), &out.stdout).unwrap();
        format!("/src/{name}")
    }

    /// Encrypts to this fixture's identity.
    pub fn encrypt(&self, name: &str, format: &str, plain: &[u8]) -> String {
        self.encrypt_to(name, format, plain, &self.recipient.clone())
    }

    /// What `sops -d` prints for `/src/<name>` (the oracle for whole-file secrets), optionally
    /// with `--extract`.
    pub fn sops_decrypt(&self, name: &str, format: &str, extract: Option<&str>) -> Vec<u8> {
        let mut c = self.sops_cmd();
        c.args(["--decrypt", "--input-type", format, "--output-type", format]);
        if let Some(e) = extract {
            c.args(["--extract", e]);
        }
        let out = c.arg(self.root.join("src").join(name)).output().unwrap();
        assert!(
            out.status.success(),
            "sops -d: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Writes a sops-nix style manifest with `secrets` to `<scratch>/<file>`.
    pub fn manifest(&self, file: &str, secrets: Vec<Value>, keep: u64) -> PathBuf {
        let m = json!({
            "secrets": secrets, "templates": [], "placeholderBySecretName": {},
            "secretsMountPoint": "/run/secrets.d", "symlinkPath": "/run/secrets",
            "keepGenerations": keep, "sshKeyPaths": [], "gnupgHome": null,
            "ageKeyFile": "/var/lib/sops-nix/key.txt", "ageSshKeyPaths": [],
            "useTmpfs": false, "userMode": false,
            "logging": {"keyImport": true, "secretChanges": true}
        });
        let p = self.scratch.join(file);
        fs::write(&p, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
        p
    }

    /// Installs a fake `systemctl` that appends its argv to `<scratch>/systemctl.log`; returns
    /// the directory to put first on PATH.
    pub fn fake_systemctl(&self) -> PathBuf {
        let bin = self.scratch.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let script = bin.join("systemctl");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n",
                self.scratch.join("systemctl.log").display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    /// The fake systemctl's recorded calls.
    pub fn systemctl_log(&self) -> String {
        fs::read_to_string(self.scratch.join("systemctl.log")).unwrap_or_default()
    }

    /// `<root>/<rel>`.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }

    /// Runs `tskeyctl install --root <root> --no-mount <manifest>` with extra env.
    pub fn install(&self, manifest: &Path, env: &[(&str, &OsStr)]) -> Output {
        self.run(
            &[
                "--root".as_ref(),
                self.root.as_os_str(),
                "--no-mount".as_ref(),
                manifest.as_os_str(),
            ],
            env,
        )
    }

    /// Runs `tskeyctl install ARGS…` with a clean environment plus `env`.
    pub fn run(&self, args: &[&OsStr], env: &[(&str, &OsStr)]) -> Output {
        let mut c = Command::new(BIN);
        c.arg("install")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }
}

/// One manifest secret entry (uid/gid of the caller unless given).
pub fn secret(name: &str, sops_file: &str, format: &str, key: &str, mode: &str) -> Value {
    json!({
        "name": name, "key": key, "path": format!("/run/secrets/{name}"),
        "owner": null, "uid": nix::unistd::geteuid().as_raw(),
        "group": null, "gid": nix::unistd::getegid().as_raw(),
        "sopsFile": sops_file, "sopsFileHash": "", "format": format, "mode": mode,
        "restartUnits": [], "reloadUnits": [], "neededForUsers": false
    })
}
