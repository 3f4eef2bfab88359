//! Shared helpers for the sops engine's integration tests: the real sops, the built binary with no
//! identity in its environment, and walking decrypted trees (peers, the conformance folder and
//! running a command with stdin come from `util`).
#![allow(dead_code)]

pub mod matrix;

use std::path::{Path, PathBuf};
use std::process::Command;

use tskeyctl::sops::tree::{Item, Node};

use crate::util::BIN;
pub use crate::util::{conformance, output as run, peer};

/// The real sops (3.11) binary.
pub fn sops() -> Option<PathBuf> {
    peer("SOPS_BIN", "sops")
}

/// The built tskeyctl.
pub fn tskeyctl() -> Command {
    let mut c = Command::new(BIN);
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
