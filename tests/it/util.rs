//! Helpers every integration-test module shares, defined once: run the built binary with a clean
//! environment, audit output for secrets, snapshot a directory, find the unprivileged attacker
//! account, find the external peers (real sops, age, ssh-keygen, nix-instantiate…) with one
//! rule for skipping (a notice locally, a failure under `CI=true`), and find `../shared`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    /// Wall time of the run (deadline tests assert on it).
    pub elapsed: Duration,
}

/// The built binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_tskeyctl");

/// The built binary.
pub fn bin() -> &'static str {
    BIN
}

/// `tskeyctl ARGS` with only `envs` (plus PATH) in the environment and stdin closed, not run yet.
pub fn command(args: &[&str], envs: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `tskeyctl ARGS` with only `envs` (plus PATH) in the environment and stdin closed.
pub fn run(args: &[&str], envs: &[(&str, &str)]) -> Run {
    run_command(command(args, envs))
}

/// Runs `cmd` (built by [`command`], then adjusted: another working directory…) to completion.
pub fn run_command(mut cmd: Command) -> Run {
    let started = Instant::now();
    let out = cmd.output().expect("run tskeyctl");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
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

/// Runs `cmd` with stdout and stderr captured and `stdin` (if any) written to it; stdin is closed
/// otherwise. A child that stops reading early (refusing a large input) is not an error.
pub fn output(mut cmd: Command, stdin: Option<&[u8]>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    if let Some(data) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        // A large input may be refused before it is all read: a broken pipe is expected then.
        let _ = w.write_all(data);
    }
    child.wait_with_output().expect("wait for the child")
}

/// The exit code of a finished process (a test fails if it was killed by a signal).
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// A process's stderr as text, for assertions and their messages.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A path as `&str` for an argument list (test paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Permission bits of `p` (not following a symlink).
pub fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("lstat").permissions().mode() & 0o7777
}

/// The crate root (the repository).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether this is a CI run (`CI=true`): a missing peer or fixture fails there instead of
/// skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing prerequisite: `None` after printing "skipped: …" locally, a panic under `CI=true`.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "CI=true but {what}");
    eprintln!("skipped: {what}");
    None
}

/// An external program from `$env_var` (if it names a file) or else from PATH; no notice.
pub fn find_program(env_var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(env_var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// A peer program the test drives (`find_program`); when absent, skip with a notice locally and
/// fail under `CI=true` (`.ci/run` installs every peer).
pub fn peer(env_var: &str, name: &str) -> Option<PathBuf> {
    find_program(env_var, name).or_else(|| {
        missing(&format!(
            "{name} not found (set {env_var} or put it on PATH)"
        ))
    })
}

/// `../shared/conformance` beside the clone (the reference vectors), or `None` with a notice.
/// It is absent in a plain clone, so its absence is a skip even in CI.
pub fn conformance() -> Option<PathBuf> {
    shared("conformance")
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
    let mut cmd = command(args, envs);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
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
        elapsed: started.elapsed(),
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

/// Runs `script` in a private mount namespace (root only); `None` with a notice otherwise.
pub fn in_mount_namespace(test: &str, script: &str) -> Option<Output> {
    if skip_unless_root(test) {
        return None;
    }
    let probe = Command::new("unshare").args(["-m", "true"]).status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("NOTICE: {test}: skipped, unshare -m is not permitted here");
        return None;
    }
    Some(
        Command::new("unshare")
            .args(["-m", "sh", "-euc", script])
            .output()
            .expect("unshare"),
    )
}
