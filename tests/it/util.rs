//! Helpers every integration-test module shares: run the built binary with a clean environment,
//! audit output for secrets, snapshot a directory, and find the unprivileged attacker account.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The built binary.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_tskeyctl")
}

/// Runs `tskeyctl ARGS` with only `envs` (plus PATH) in the environment and stdin closed.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tskeyctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts that `text` contains none of `secrets` (nor the random tail of one).
pub fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "{what} contains a secret (…{}):\n{text}",
            &s[s.len().saturating_sub(6)..]
        );
        if let Some(tail) = s.rsplit('-').next().filter(|t| t.len() >= 16) {
            assert!(
                !text.contains(tail),
                "{what} contains the tail of a secret:\n{text}"
            );
        }
    }
}

/// Whether the tests run as root (devices, chown to other users).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips (returns true, printing a notice) unless running as root.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("NOTICE: {test}: skipped, needs root");
    true
}

/// The unprivileged attacker account `.ci/run` creates: `(uid, gid)`.
pub fn attacker() -> Option<(u32, u32)> {
    let u = nix::unistd::User::from_name("tskeyctl-attacker")
        .ok()
        .flatten()?;
    Some((u.uid.as_raw(), u.gid.as_raw()))
}

/// The attacker account, or a printed notice and `None` (not root, or no such account).
pub fn attacker_or_skip(test: &str) -> Option<(u32, u32)> {
    if skip_unless_root(test) {
        return None;
    }
    let a = attacker();
    if a.is_none() {
        eprintln!("NOTICE: {test}: skipped, no tskeyctl-attacker account (.ci/run makes it)");
    }
    a
}

/// Every entry under `dir` (recursively, not following links) with its type, mode and content
/// (for regular files): compare two snapshots to prove a failed run changed nothing and left no
/// temp file.
pub fn snapshot(dir: &Path) -> BTreeMap<String, (String, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (String, u32, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let m = fs::symlink_metadata(&p).expect("lstat");
        let rel = p.strip_prefix(root).expect("prefix").display().to_string();
        let ft = m.file_type();
        let (kind, content) = if ft.is_symlink() {
            (
                "link".to_string(),
                fs::read_link(&p)
                    .expect("readlink")
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_dir() {
            ("dir".to_string(), Vec::new())
        } else if ft.is_file() {
            ("file".to_string(), fs::read(&p).unwrap_or_default())
        } else {
            ("special".to_string(), Vec::new())
        };
        out.insert(rel, (kind.clone(), m.mode(), content));
        if kind == "dir" {
            walk(root, &p, out);
        }
    }
}

/// `part` of the sibling folder `../shared` (reference notes, the conformance files, a nixpkgs
/// lib): present in CI, absent in a plain clone. `None`, with a printed `skipped:` notice, when
/// absent. `TSKEYCTL_SHARED_DIR` stands in for `../shared` (the standalone tests point it at a
/// folder that does not exist to show the skip path).
pub fn shared(part: &str) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("TSKEYCTL_SHARED_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    present_or_skip(&base.join(part))
}

/// `Some(path)` when it exists, else `None` after printing `skipped: PATH is absent …`.
pub fn present_or_skip(path: &Path) -> Option<std::path::PathBuf> {
    if path.exists() {
        Some(path.to_path_buf())
    } else {
        println!(
            "skipped: {} is absent (tests that read it need the shared files beside the clone)",
            path.display()
        );
        None
    }
}

/// Runs `tskeyctl ARGS` like [`run`], but kills it and panics if it has not finished within
/// `secs` (a run that hangs on a FIFO must fail the test, not the suite).
pub fn run_within(secs: u64, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn tskeyctl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("collect");
            panic!(
                "tskeyctl {args:?} hung for {secs}s; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("collect");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A character device with null's numbers (1, 3) at `path` (root only; never a real /dev node).
pub fn mknod_null(path: &Path) {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    mknod(
        path,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        makedev(1, 3),
    )
    .expect("mknod");
}

/// A FIFO at `path`.
pub fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

/// A file of the repository's `secrets.example/` demo material.
pub fn example(rel: &str) -> String {
    format!("{}/secrets.example/{rel}", env!("CARGO_MANIFEST_DIR"))
}

/// What [`snapshot`] returns.
pub type Snapshot = BTreeMap<String, (String, u32, Vec<u8>)>;

/// Asserts two snapshots are equal, naming only the entries that differ (not their bytes).
pub fn assert_same(what: &str, before: &Snapshot, after: &Snapshot) {
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{what}: changed entries {changed:?}");
}
