//! `tskeyctl provision` (the main job) and `tskeyctl revoke` (its undo, for `ExecStopPost=`).
//!
//! Flags are parsed and validated here — option values before any file is read or request made —
//! then [`crate::provision`] runs the flow.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::Args;

use super::mint::{ApiArgs, CredentialArgs, KeyOptionArgs, parse_duration};
use super::parse_format;
use super::sops::load_identities;
use crate::error::Error;
use crate::log;
use crate::mint::{Credentials, Deleted, Minter};
use crate::provision::{self, MintWith, OutputFormat, Request};
use crate::sink::WriteOptions;
use crate::sops::{Format, Identities};
use crate::state;

const STATE_DIR: &str = "/var/lib/tskeyctl";

/// Decrypt a source with the host key, mint an auth key if it holds OAuth/API-key material, and
/// write the key atomically (0600).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl provision --source /etc/nixos/secrets/ts.yaml --key tailscale/oauth \\\n      \
--tags tag:server --out /run/secrets/tailscale_authkey\n  \
tskeyctl provision --source ts-oauth.env --tags tag:web --format env \\\n      \
--out /run/secrets/web-sidecar.env --reuse-if-valid-for 15m --revoke-previous\n  \
tskeyctl provision --source authkey.age --out /run/secrets/tailscale_authkey   # pre-made key\n\n\
Sources: a sops file (yaml/json/dotenv/ini/binary), an age file, a plain file holding one \
tskey-… value, or an env file (TS_AUTHKEY=…, TAILSCALE_OAUTH_CLIENT_SECRET=…, …). A tskey-auth-… \
key is written as is; OAuth client or API-key material mints a fresh key.\n\n\
Exit codes: 0 ok, 65 bad data / no material, 66 source missing, 73 cannot write, 75 network or \
API temporarily failing (retry), 77 no identity opens the source / credentials rejected, 78 bad \
option or tags not permitted.")]
pub struct ProvisionArgs {
    /// The encrypted (or plain) source file.
    #[arg(long, value_name = "FILE")]
    source: PathBuf,
    /// Key inside the source: sops-nix path `a/b`, or an env-file variable.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Force the sops format of the source (default: detected).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Where to write the auth key.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// raw: the key and a newline; env: TS_AUTHKEY=<key>; json: the key and its metadata.
    #[arg(long, value_enum, default_value = "raw")]
    format: OutputFormat,
    /// Variable name for --format env.
    #[arg(long, value_name = "NAME", default_value = "TS_AUTHKEY")]
    env_name: String,
    /// Owner of the output file (name or uid).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// Group of the output file (name or gid).
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Mode of the output file (octal), applied exactly.
    #[arg(long, value_name = "OCTAL", default_value = "0600")]
    mode: String,
    /// Create the output directory (mode 0751) if missing.
    #[arg(long)]
    mkdir: bool,
    /// Name of the state record (default: the output file's name).
    #[arg(long)]
    name: Option<String>,
    /// State directory.
    #[arg(long, value_name = "DIR", default_value = STATE_DIR)]
    state_dir: PathBuf,
    /// Keep the current key (no API call) if tskeyctl minted it and it stays valid this long.
    #[arg(long, value_name = "DURATION")]
    reuse_if_valid_for: Option<String>,
    /// After minting, revoke the key the state recorded before.
    #[arg(long)]
    revoke_previous: bool,
    /// Identity: an OpenSSH ed25519 private key or an age identity file (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    #[command(flatten)]
    key_options: KeyOptionArgs,
    #[command(flatten)]
    api: ApiArgs,
}

/// `--format`: the library's layouts as clap values (only the CLI knows clap).
impl clap::ValueEnum for OutputFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[OutputFormat::Raw, OutputFormat::Env, OutputFormat::Json]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        let help = match self {
            OutputFormat::Raw => "The bare key and a newline (`services.tailscale.authKeyFile`)",
            OutputFormat::Env => {
                "`TS_AUTHKEY=<key>` and a newline (a sidecar's `EnvironmentFile=`)"
            }
            OutputFormat::Json => "A JSON object with the key and what is known about it",
        };
        Some(clap::builder::PossibleValue::new(self.as_str()).help(help))
    }
}

fn parse_mode(s: &str) -> Result<u32, Error> {
    let digits = s.trim_start_matches("0o");
    match u32::from_str_radix(digits, 8) {
        Ok(m) if m <= 0o7777 && !digits.is_empty() => Ok(m),
        _ => Err(Error::Config(format!(
            "--mode: {s:?} is not an octal file mode (e.g. 0600, 0640, 0400)"
        ))),
    }
}

fn resolve_user(flag: &str, v: &str) -> Result<u32, Error> {
    if let Ok(n) = v.parse::<u32>() {
        return Ok(n);
    }
    match crate::accounts::user_id(v) {
        Ok(Some(uid)) => Ok(uid),
        _ => Err(Error::Config(format!("{flag}: no such user {v:?}"))),
    }
}

fn resolve_group(flag: &str, v: &str) -> Result<u32, Error> {
    if let Ok(n) = v.parse::<u32>() {
        return Ok(n);
    }
    match crate::accounts::group_id(v) {
        Ok(Some(gid)) => Ok(gid),
        _ => Err(Error::Config(format!("{flag}: no such group {v:?}"))),
    }
}

fn name_of(name: Option<&String>, out: &Path) -> Result<String, Error> {
    let n = match name {
        Some(n) => n.clone(),
        None => out
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .ok_or_else(|| Error::Config(format!("--out {}: not a file path", out.display())))?,
    };
    state::check_name(&n)?;
    Ok(n)
}

pub fn provision(a: ProvisionArgs) -> Result<(), Error> {
    // Every option value is checked before any file is read or request made.
    a.key_options.resolve(None)?;
    parse_duration("--deadline", &a.api.deadline)?;
    let reuse = a
        .reuse_if_valid_for
        .as_deref()
        .map(|v| parse_duration("--reuse-if-valid-for", v))
        .transpose()?;
    let write = WriteOptions {
        mode: parse_mode(&a.mode)?,
        uid: a
            .owner
            .as_deref()
            .map(|v| resolve_user("--owner", v))
            .transpose()?,
        gid: a
            .group
            .as_deref()
            .map(|v| resolve_group("--group", v))
            .transpose()?,
        mkdir: a.mkdir,
        ..WriteOptions::default()
    };
    if !a
        .env_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || a.env_name.is_empty()
    {
        return Err(Error::Config(format!(
            "--env-name: {:?} is not a variable name",
            a.env_name
        )));
    }
    let req = Request {
        name: name_of(a.name.as_ref(), &a.out)?,
        out: a.out.clone(),
        format: a.format,
        env_name: a.env_name.clone(),
        write,
        state_dir: a.state_dir.clone(),
        source: Some(a.source.clone()),
        source_key: a.key.clone(),
        reuse_if_valid_for: reuse,
        revoke_previous: a.revoke_previous,
    };
    let identities = || load_identities(&a.identity);
    let mut load =
        || provision::material_from_source(&a.source, a.key.as_deref(), a.input_type, &identities);
    let options = |c: &Credentials| Ok(a.key_options.resolve(Some(c))?);
    let minter = |c: &Credentials| -> Result<(Minter, String), Error> {
        Ok((a.api.minter(Some(c))?, a.api.url(Some(c))))
    };
    let outcome = provision::provision(
        &req,
        &mut load,
        &MintWith {
            options: &options,
            minter: &minter,
        },
    )?;
    log::info(format!("{}: {outcome:?}", req.out.display()));
    Ok(())
}

/// Revoke the key `provision` recorded (404 = already gone), for `ExecStopPost=`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl revoke --name tailscale_authkey\n  \
tskeyctl revoke --name web-sidecar.env --delete-device --remove-file\n\n\
Credentials: --source/--key/-i (decrypted like provision), else --oauth-secret-file / \
--credentials-file / --api-key-file / environment, else the source recorded in the state.")]
pub struct RevokeArgs {
    /// Name of the state record.
    #[arg(long, required_unless_present = "out")]
    name: Option<String>,
    /// The output file provisioned (its name is the record name).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// State directory.
    #[arg(long, value_name = "DIR", default_value = STATE_DIR)]
    state_dir: PathBuf,
    /// Credentials from this source instead of the recorded one.
    #[arg(long, value_name = "FILE")]
    source: Option<PathBuf>,
    /// Key inside --source.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Force the sops format of the source.
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Identity for the source (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    #[command(flatten)]
    credentials: CredentialArgs,
    #[command(flatten)]
    api: ApiArgs,
    /// Also delete the devices that joined with this key: same tags and ephemeral flag, created
    /// after the key.
    #[arg(long)]
    delete_device: bool,
    /// Also remove the provisioned file.
    #[arg(long)]
    remove_file: bool,
}

fn credentials_for(a: &RevokeArgs, rec: &state::Record) -> Result<Credentials, Error> {
    let identities = || -> Identities { load_identities(&a.identity) };
    let from_source = |src: &Path, key: Option<&str>| -> Result<Credentials, Error> {
        let m = provision::material_from_source(src, key, a.input_type, &identities)?;
        Credentials::from_material(m).ok_or_else(|| {
            Error::Config(format!(
                "{}: holds an auth key, not API credentials; give --oauth-secret-file, \
--credentials-file or --api-key-file to revoke",
                src.display()
            ))
        })
    };
    if let Some(src) = &a.source {
        return from_source(src, a.key.as_deref());
    }
    match a.credentials.resolve() {
        Ok(r) => Ok(r.credentials),
        Err(e) => match &rec.source {
            Some(src) if rec.material.as_deref() != Some("auth-key") => {
                from_source(src, rec.source_key.as_deref())
            }
            _ => Err(e),
        },
    }
}

pub fn revoke(a: RevokeArgs) -> Result<(), Error> {
    parse_duration("--deadline", &a.api.deadline)?;
    let name = match (&a.name, &a.out) {
        (Some(n), _) => {
            state::check_name(n)?;
            n.clone()
        }
        (None, Some(out)) => name_of(None, out)?,
        (None, None) => return Err(Error::Usage("give --name or --out".into())),
    };
    let locked = state::lock(&a.state_dir, &name)?;
    let mut rec = locked.load()?.ok_or_else(|| {
        Error::NoState(format!(
            "{}: no state recorded for {name:?} (nothing was provisioned under that name)",
            a.state_dir.display()
        ))
    })?;
    match (rec.minted, rec.key_id.clone(), &rec.revoked) {
        (true, Some(id), None) => {
            let creds = credentials_for(&a, &rec)?;
            let api = ApiArgs {
                api_url: a.api.api_url.clone().or_else(|| rec.api_url.clone()),
                deadline: a.api.deadline.clone(),
            };
            let mut minter = api.minter(Some(&creds))?;
            match minter.revoke_key(&creds, &id)? {
                Deleted::Removed => log::info(format!("revoked key {id}")),
                Deleted::AlreadyGone => log::info(format!("key {id} was already gone")),
            }
            if a.delete_device {
                delete_devices(&mut minter, &creds, &rec)?;
            }
            let now = state::rfc3339(SystemTime::now());
            rec.revoked = Some(now);
            rec.revoked_ids.push(id);
            let excess = rec.revoked_ids.len().saturating_sub(20);
            rec.revoked_ids.drain(..excess);
        }
        (true, Some(id), Some(when)) => log::info(format!("key {id} was revoked at {when}")),
        _ => log::warn(format!(
            "{name}: the current key was not minted by tskeyctl; nothing to revoke"
        )),
    }
    if a.remove_file {
        match std::fs::remove_file(&rec.out) {
            Ok(()) => log::info(format!("removed {}", rec.out.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(crate::sink::SinkError::Io {
                    path: rec.out.clone(),
                    step: "remove the provisioned file",
                    source,
                }
                .into());
            }
        }
    }
    locked.save(&rec)?;
    Ok(())
}

fn delete_devices(
    minter: &mut Minter,
    creds: &Credentials,
    rec: &state::Record,
) -> Result<(), Error> {
    let created = rec
        .created
        .as_deref()
        .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok());
    let ephemeral = rec.flags.map(|f| f.ephemeral);
    let mut want_tags = rec.tags.clone();
    want_tags.sort();
    for d in minter.list_devices(creds)? {
        let mut tags = d.tags.clone();
        tags.sort();
        let joined = d
            .created
            .as_deref()
            .and_then(|c| humantime::parse_rfc3339_weak(c.trim_end_matches('Z')).ok());
        let after_key = match (created, joined) {
            (Some(k), Some(j)) => j + Duration::from_secs(1) >= k,
            _ => false,
        };
        if after_key && tags == want_tags && ephemeral.is_none_or(|e| e == d.is_ephemeral) {
            let id = if d.node_id.is_empty() {
                &d.id
            } else {
                &d.node_id
            };
            minter.delete_device(creds, id)?;
            log::info(format!("deleted device {id} ({})", d.hostname));
        }
    }
    Ok(())
}
