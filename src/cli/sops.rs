//! `tskeyctl decrypt` (and, later in this file, `encrypt` / `updatekeys`): sops-compatible
//! commands on top of [`crate::decode`].

use std::path::PathBuf;

use clap::Args;

use super::{output_path, write_stdout};
use crate::decode::{self, DecryptOptions, Format, Identities, Kind};
use crate::error::Error;
use crate::log;
use crate::sink::{self, WriteOptions};
use crate::source::{self, Origin};

/// Largest sops or age file read (a documented limit: larger inputs exit 65 before any
/// allocation of their size).
pub const SOPS_LIMIT: u64 = 64 << 20;

/// Decrypt a sops file (yaml, json, dotenv, ini, binary) or an age file.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl decrypt secrets.yaml                          # with /etc/ssh/ssh_host_ed25519_key\n  \
tskeyctl decrypt -i ~/.ssh/id_ed25519 secrets.yaml --extract '[\"db\"][\"password\"]'\n  \
tskeyctl decrypt secrets.yaml --key tailscale/authkey -o /run/secrets/ts\n  \
SOPS_AGE_KEY_FILE=keys.txt tskeyctl decrypt --output-type json secrets.env\n  \
tskeyctl decrypt -i /etc/ssh/ssh_host_ed25519_key secret.age\n\n\
Identities tried: each -i FILE (an OpenSSH ed25519 key counts twice: converted to X25519 like \
ssh-to-age, and as a native ssh-ed25519 age identity), SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, \
SOPS_AGE_SSH_PRIVATE_KEY_FILE, then /etc/ssh/ssh_host_ed25519_key. Passphrase-protected keys: \
TSKEYCTL_IDENTITY_PASSPHRASE or SSH_TO_AGE_PASSPHRASE.\n\n\
Exit codes: 65 malformed file or MAC mismatch, 66 missing input, 77 no identity opens the file.")]
pub struct DecryptArgs {
    /// The encrypted file; `-` is stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Identity: an OpenSSH ed25519 private key or an age identity file (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Write to FILE (atomically, mode 0600) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Input format (default: from the file name like sops: .yaml/.yml, .json, .env, .ini, else binary).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Output format (default: the input format).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    output_type: Option<Format>,
    /// Print only this part, sops syntax: '["a"]["b"]' or '["list"][0]'.
    #[arg(long, value_name = "PATH", conflicts_with = "key")]
    extract: Option<String>,
    /// Print only this key, sops-nix syntax: a/b.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Do not verify the MAC (prints a warning).
    #[arg(long)]
    ignore_mac: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    Format::parse(s)
        .ok_or_else(|| format!("unknown format {s:?} (yaml, json, dotenv, ini, binary)"))
}

pub(crate) fn load_identities(explicit: &[PathBuf]) -> Identities {
    let (ids, warnings) = Identities::load(explicit);
    for w in warnings {
        log::warn(w);
    }
    log::debug(format!("identities: {}", ids.recipients().join(", ")));
    ids
}

pub fn decrypt(a: DecryptArgs) -> Result<(), Error> {
    let origin = Origin::from_arg(&a.file);
    let data = source::read_limited(&origin, SOPS_LIMIT, "a sops or age file")?;
    let ids = load_identities(&a.identity);
    // An explicit --input-type wins; otherwise an age header means an age file, and the
    // format comes from the name like sops (content sniffing only for names sops calls binary).
    let sops_format = match (a.input_type, decode::detect(&origin, &data)) {
        (Some(f), _) | (None, Kind::Sops(f)) => Some(f),
        (None, Kind::Age) => None,
        (None, Kind::Plain) => Some(match &origin {
            Origin::File(p) => Format::from_path(p),
            Origin::Stdin => Format::Binary,
        }),
    };
    let out = match sops_format {
        None => {
            if a.extract.is_some() || a.key.is_some() {
                return Err(Error::Usage(
                    "--extract/--key apply to sops files; this is a plain age file".into(),
                ));
            }
            decode::decrypt_age(&origin, &data, &ids)?
        }
        Some(format) => {
            if a.ignore_mac {
                log::warn(format!(
                    "{origin}: --ignore-mac: the MAC is not verified, the content may have been tampered with"
                ));
            }
            let doc = decode::decrypt(
                &origin,
                &data,
                format,
                &ids,
                DecryptOptions {
                    ignore_mac: a.ignore_mac,
                },
            )?;
            let out_format = a.output_type.unwrap_or(format);
            if let Some(x) = &a.extract {
                let path = decode::parse_extract(x)?;
                doc.extract(&path, out_format)?
            } else if let Some(k) = &a.key {
                doc.get(k)?
            } else {
                doc.render(out_format)?
            }
        }
    };
    match output_path(&a.output) {
        Some(p) => sink::write_atomic(p, &out, &WriteOptions::default())?,
        None => write_stdout(&out)?,
    }
    Ok(())
}
