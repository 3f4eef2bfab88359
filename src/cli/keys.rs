//! `tskeyctl recipient` and `tskeyctl identity`: the host key as age keys, ssh-to-age compatible.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use zeroize::Zeroizing;

use super::{output_path, write_stdout};
use crate::error::Error;
use crate::hostkey::{self, Found, HostKey, KeyError};
use crate::log;
use crate::sink::{self, SymlinkPolicy, WriteOptions};
use crate::source::{self, Origin};

/// Largest public-key input read (known_hosts files can be long; this bounds memory).
const PUBLIC_INPUT_LIMIT: u64 = 8 << 20;
/// Largest private key file read: an OpenSSH ed25519 key is ~400 bytes, rsa-16384 ~12 KiB.
const PRIVATE_KEY_LIMIT: u64 = 64 << 10;
/// Largest passphrase file read.
const PASSPHRASE_LIMIT: u64 = 64 << 10;

/// Print the age recipient(s) of ssh ed25519 public keys (like ssh-to-age).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl recipient                                # this host: age1…\n  \
ssh-keyscan host | tskeyctl recipient -            # a remote host\n  \
tskeyctl recipient --ssh                           # ssh-ed25519 AAAA… for sops >= 3.10 / agenix\n  \
tskeyctl recipient --sops-rule 'secrets/web1/.*'   # a .sops.yaml creation_rules entry")]
pub struct RecipientArgs {
    /// Public key files, known_hosts/ssh-keyscan output, or an OpenSSH private key; `-` is stdin.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Input file (ssh-to-age compatible; same as a FILE argument).
    #[arg(short = 'i', long = "input", value_name = "FILE")]
    input: Vec<PathBuf>,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Print the native age recipient (`ssh-ed25519 AAAA… [comment]`) instead of `age1…`.
    #[arg(long)]
    ssh: bool,
    /// Print a .sops.yaml creation_rules entry for PATH_REGEX with these recipients.
    #[arg(long, value_name = "PATH_REGEX")]
    sops_rule: Option<String>,
}

/// Print the age identity (AGE-SECRET-KEY-1…) of an ssh ed25519 private key (like ssh-to-age -private-key).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl identity -o /run/age/host.txt            # file created 0600\n  \
SSH_TO_AGE_PASSPHRASE=\"$(cat pass.txt)\" tskeyctl identity ~/.ssh/id_ed25519 -o key.txt\n  \
tskeyctl identity --passphrase-file pass.txt key --force | age -d -i - file.age")]
pub struct IdentityArgs {
    /// OpenSSH ed25519 private key; `-` is stdin. [default: /etc/ssh/ssh_host_ed25519_key]
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Input file (ssh-to-age compatible; same as FILE).
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    input: Option<PathBuf>,
    /// Write to FILE (created 0600, a symlink there is refused) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Read the key's passphrase from FILE (trailing newline stripped).
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    /// Print the identity even when stdout is a terminal.
    #[arg(long)]
    force: bool,
}

pub fn recipient(a: RecipientArgs) -> Result<(), Error> {
    let mut inputs: Vec<PathBuf> = a.input;
    inputs.extend(a.files);
    if inputs.is_empty() {
        inputs.push(PathBuf::from(hostkey::DEFAULT_PUB));
    }
    let mut lines = Vec::new();
    for input in &inputs {
        let origin = Origin::from_arg(input);
        let data = source::read_limited(&origin, PUBLIC_INPUT_LIMIT, "ssh public keys")?;
        let mut skipped = Vec::new();
        let mut any = false;
        for found in hostkey::scan_public(&origin, &data)? {
            match found {
                Found::Ed25519(key, _) => {
                    any = true;
                    lines.push(if a.ssh {
                        key.ssh_line()
                    } else {
                        // Checked in scan_public: every returned key is a valid point.
                        key.age_recipient().unwrap_or_default()
                    });
                }
                Found::Skipped(line, kind) => {
                    log::warn(format!(
                        "{origin}:{line}: skipped {kind} key (only ssh-ed25519 keys convert)"
                    ));
                    skipped.push(kind);
                }
            }
        }
        if !any {
            return Err(KeyError::NoEd25519 { origin, skipped }.into());
        }
    }
    let out = match &a.sops_rule {
        Some(regex) => sops_rule(regex, &lines),
        None => lines.iter().map(|l| format!("{l}\n")).collect(),
    };
    match output_path(&a.output) {
        Some(path) => {
            let opts = WriteOptions {
                mode: 0o644,
                allow_sticky_dir: true,
                ..WriteOptions::default()
            };
            sink::write_atomic(path, out.as_bytes(), &opts)?;
            Ok(())
        }
        None => write_stdout(out.as_bytes()),
    }
}

/// A `.sops.yaml` `creation_rules` list entry, ready to paste under `creation_rules:`.
fn sops_rule(path_regex: &str, recipients: &[String]) -> String {
    let mut s = format!(
        "- path_regex: {}\n  key_groups:\n    - age:\n",
        yaml_quote(path_regex)
    );
    for r in recipients {
        s.push_str(&format!("        - {}\n", yaml_quote(r)));
    }
    s
}

/// Single-quotes a YAML scalar when it is not plainly safe.
fn yaml_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-+=".contains(c))
        && !s.starts_with('-');
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

pub fn identity(a: IdentityArgs) -> Result<(), Error> {
    let file = a
        .input
        .or(a.file)
        .unwrap_or_else(|| PathBuf::from(hostkey::DEFAULT_KEY));
    let to = output_path(&a.output);
    if to.is_none() && std::io::stdout().is_terminal() && !a.force {
        return Err(Error::Usage(
            "refusing to print a secret key to a terminal; use -o FILE, a pipe, or --force".into(),
        ));
    }
    let passphrase = read_passphrase(a.passphrase_file.as_ref())?;
    let origin = Origin::from_arg(&file);
    let data = source::read_limited(&origin, PRIVATE_KEY_LIMIT, "an ssh private key")?;
    let key = HostKey::from_openssh(&origin, &data, passphrase.as_ref().map(|p| p.as_slice()))?;
    let id = key.age_identity_string();
    // Sized up front: a reallocation would leave an unzeroized copy of the identity behind.
    let mut out = Zeroizing::new(String::with_capacity(id.len() + 1));
    out.push_str(&id);
    out.push('\n');
    match to {
        Some(path) => {
            let opts = WriteOptions {
                mode: 0o600,
                allow_sticky_dir: true,
                symlink: SymlinkPolicy::Refuse,
                ..WriteOptions::default()
            };
            sink::write_atomic(path, out.as_bytes(), &opts)?;
            Ok(())
        }
        None => write_stdout(out.as_bytes()),
    }
}

/// `--passphrase-file` (one trailing newline stripped) or `SSH_TO_AGE_PASSPHRASE`.
fn read_passphrase(file: Option<&PathBuf>) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    if let Some(path) = file {
        let mut p =
            source::read_limited(&Origin::from_arg(path), PASSPHRASE_LIMIT, "a passphrase")?;
        if p.last() == Some(&b'\n') {
            p.pop();
            if p.last() == Some(&b'\r') {
                p.pop();
            }
        }
        return Ok(Some(p));
    }
    Ok(std::env::var_os("SSH_TO_AGE_PASSPHRASE")
        .map(|v| Zeroizing::new(std::os::unix::ffi::OsStringExt::into_vec(v))))
}
