//! `tskeyctl recipient` and `tskeyctl identity`: the host key as age keys, ssh-to-age compatible.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use zeroize::Zeroizing;

use super::{output_path, write_stdout};
use crate::error::Error;
use crate::hostkey::{self, Found, HostKey, KeyError};
use crate::log;
use crate::sink::{self, SymlinkPolicy, WriteOptions};
use crate::sops::config_edit;
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
cat key.pub | tskeyctl recipient                   # stdin, when no FILE is given\n  \
tskeyctl recipient --add-to .sops.yaml --path-regex 'secrets/web1/.*' --also \"$MY_AGE_RECIPIENT\"\n\n\
With no FILE: stdin when it is a pipe or a file, else /etc/ssh/ssh_host_ed25519_key.pub. \
--add-to adds a creation rule (before the existing ones, which stay as they are, comments \
included) or adds the recipients to the rule with the same path_regex; the file is created \
when missing.")]
pub struct RecipientArgs {
    /// Public key files, known_hosts/ssh-keyscan output, or an OpenSSH private key; `-` is stdin.
    /// [default: stdin when it is a pipe or file, else /etc/ssh/ssh_host_ed25519_key.pub]
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
    #[arg(long, value_name = "PATH_REGEX", conflicts_with = "add_to")]
    sops_rule: Option<String>,
    /// Add the recipients to this .sops.yaml (created when missing), for --path-regex.
    #[arg(
        long,
        value_name = "FILE",
        requires = "path_regex",
        conflicts_with = "output"
    )]
    add_to: Option<PathBuf>,
    /// The creation rule's path_regex (with --add-to).
    #[arg(long, value_name = "REGEX", requires = "add_to")]
    path_regex: Option<String>,
    /// Another recipient for the rule, such as your own age1… key (repeatable; with --add-to).
    #[arg(long, value_name = "RECIPIENT", requires = "add_to")]
    also: Vec<String>,
}

/// Print the age identity (AGE-SECRET-KEY-1…) of an ssh ed25519 private key (like ssh-to-age -private-key).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl identity -o /run/age/host.txt            # file created 0600\n  \
SSH_TO_AGE_PASSPHRASE=\"$(cat pass.txt)\" tskeyctl identity ~/.ssh/id_ed25519 -o key.txt\n  \
tskeyctl identity --passphrase-file pass.txt key --force | age -d -i - file.age")]
pub struct IdentityArgs {
    /// OpenSSH ed25519 private key; `-` is stdin. [default: stdin when it is a pipe or file,
    /// else /etc/ssh/ssh_host_ed25519_key]
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
        inputs.push(default_input(hostkey::DEFAULT_PUB));
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
    if let (Some(config), Some(regex)) = (&a.add_to, &a.path_regex) {
        return add_to(config, regex, &lines, &a.also);
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
    config_edit::rule_text("", path_regex, recipients)
}

/// `--add-to`: the recipients of the key files (and `--also`) into the config's rule for
/// `regex`, written atomically; a warning when the rule holds only host keys.
fn add_to(config: &Path, regex: &str, host: &[String], also: &[String]) -> Result<(), Error> {
    if let Err(e) = regex::Regex::new(regex) {
        return Err(Error::Config(format!(
            "--path-regex {regex:?} does not compile: {}",
            log::bounded::clip(&e.to_string(), 200)
        )));
    }
    for r in also {
        crate::sops::encrypt::parse_recipient(r)?;
    }
    let mut all: Vec<String> = host.to_vec();
    for r in also {
        let r = r.trim().to_string();
        if !all.contains(&r) {
            all.push(r);
        }
    }
    let origin = Origin::File(config.to_path_buf());
    let existing = match std::fs::symlink_metadata(config) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        _ => Some(source::read_limited(
            &origin,
            PUBLIC_INPUT_LIMIT,
            "a .sops.yaml",
        )?),
    };
    let text = match &existing {
        Some(b) => Some(
            std::str::from_utf8(b).map_err(|_| Error::Config(format!("{origin}: not UTF-8")))?,
        ),
        None => None,
    };
    let added = config_edit::add_recipients(text, regex, &all)
        .map_err(|e| Error::Config(format!("{origin}: {e}")))?;
    for r in &added.already {
        log::notice(format!(
            "{origin}: {r} is already in the rule for '{regex}'"
        ));
    }
    if added.rule_recipients.iter().all(|r| host.contains(r)) {
        log::warn(format!(
            "the rule for '{regex}' holds only host keys: you will not be able to open these \
files yourself; add your own key with --also"
        ));
    }
    if text.map(str::as_bytes) == Some(added.text.as_bytes()) {
        log::notice(format!("{origin}: unchanged"));
        return Ok(());
    }
    // Written like every sops file: its mode kept (0644 when new), atomically.
    super::sops::write_encrypted(config, added.text.as_bytes(), sink::Special::Refuse)?;
    log::notice(format!(
        "{origin}: {} for '{regex}': {}",
        if added.new_rule {
            "new rule, before the existing ones,"
        } else {
            "recipients added to the rule"
        },
        log::bounded::list(&added.rule_recipients, ", ")
    ));
    Ok(())
}

pub fn identity(a: IdentityArgs) -> Result<(), Error> {
    let file = a
        .input
        .or(a.file)
        .unwrap_or_else(|| default_input(hostkey::DEFAULT_KEY));
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

/// With no FILE, like ssh-to-age: stdin when it is a pipe or a file (`cat key.pub | tskeyctl
/// recipient`), else (a terminal, /dev/null, nothing) the host key.
fn default_input(host: &str) -> PathBuf {
    use nix::sys::stat::{SFlag, fstat};
    let stdin = std::io::stdin();
    let data = !stdin.is_terminal()
        && fstat(&stdin).is_ok_and(|st| {
            let t = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
            t == SFlag::S_IFIFO || t == SFlag::S_IFREG
        });
    if data {
        log::debug("no FILE given and stdin is a pipe or file: reading stdin");
        PathBuf::from("-")
    } else {
        PathBuf::from(host)
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
