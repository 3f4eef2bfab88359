//! Shared helpers for the sops engine's integration tests: locating peers (real sops, age),
//! the conformance folder, running the built binary, and walking decrypted trees.
#![allow(dead_code)]

pub mod matrix;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tskeyctl::sops::tree::{Item, Node};

/// The conformance folder, or `None` (with a notice) when absent.
pub fn conformance() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/conformance"
    ));
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: {} not present", p.display());
        None
    }
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Finds an external program through `env_var` or PATH. Missing: skip locally, fail in CI.
pub fn peer(env_var: &str, name: &str) -> Option<PathBuf> {
    let found = std::env::var_os(env_var)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            !in_ci(),
            "{name} not found ({env_var} unset and not on PATH) but CI=true"
        );
        eprintln!("skipped: {name} not found (set {env_var})");
    }
    found
}

/// The real sops (3.11) binary.
pub fn sops() -> Option<PathBuf> {
    peer("SOPS_BIN", "sops")
}

/// The built tskeyctl.
pub fn tskeyctl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tskeyctl"));
    clean_env(&mut c);
    c
}

/// Removes identity variables so tests see only what they set.
pub fn clean_env(c: &mut Command) {
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "SOPS_AGE_SSH_PRIVATE_KEY_CMD",
        "TSKEYCTL_IDENTITY_PASSPHRASE",
        "SSH_TO_AGE_PASSPHRASE",
    ] {
        c.env_remove(v);
    }
    // sops also looks at ~/.ssh/id_ed25519 and ~/.config/sops/age/keys.txt.
    c.env("HOME", "/nonexistent-tskeyctl-test-home");
    c.env("XDG_CONFIG_HOME", "/nonexistent-tskeyctl-test-home");
}

/// Runs a command with optional stdin.
pub fn run(mut c: Command, stdin: Option<&[u8]>) -> Output {
    use std::io::Write;
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(data) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(data)
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// Leaves in walk order: (aad, value) for non-comment, non-null leaves; comments separately.
/// (aad, value) leaves and (aad, text) comments.
pub type Leaves = (Vec<(String, Node)>, Vec<(String, String)>);

pub fn leaves(branches: &[Vec<Item>]) -> Leaves {
    let mut vals = Vec::new();
    let mut comments = Vec::new();
    for b in branches {
        walk_items(b, &mut Vec::new(), &mut vals, &mut comments);
    }
    (vals, comments)
}

fn aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

fn walk_items(
    items: &[Item],
    path: &mut Vec<String>,
    vals: &mut Vec<(String, Node)>,
    comments: &mut Vec<(String, String)>,
) {
    for it in items {
        match &it.key {
            None => {
                if let Node::Comment(c) = &it.value {
                    comments.push((aad(path), c.clone()));
                }
            }
            Some(k) => {
                path.push(k.clone());
                walk_node(&it.value, path, vals, comments);
                path.pop();
            }
        }
    }
}

fn walk_node(
    n: &Node,
    path: &mut Vec<String>,
    vals: &mut Vec<(String, Node)>,
    comments: &mut Vec<(String, String)>,
) {
    match n {
        Node::Map(items) => walk_items(items, path, vals, comments),
        Node::Seq(v) => v.iter().for_each(|e| walk_node(e, path, vals, comments)),
        Node::Comment(c) => comments.push((aad(path), c.clone())),
        Node::Null => {}
        other => vals.push((aad(path), other.clone())),
    }
}

/// Writes `data` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write");
    p
}

/// Decodes lowercase hex.
pub fn hex32(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

/// The real sops with an age keys file.
pub fn sops_cmd_plain(sops: &Path, keys: &Path) -> Command {
    let mut c = Command::new(sops);
    clean_env(&mut c);
    c.env("SOPS_AGE_KEY_FILE", keys);
    c
}
