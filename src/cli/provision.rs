//! `tskeyctl provision` (the main job) and `tskeyctl revoke` (its undo, for `ExecStopPost=`).
//!
//! Flags are parsed and validated here — every option value before any file is read or request
//! made — then [`crate::provision`] and [`crate::revoke`] run the flows with plain values. Paths
//! handed to the library are absolute, so the records they make work from any directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::mint::{ApiArgs, CredentialArgs, FederationArgs, KeyOptionArgs, parse_duration};
use super::parse_format;
use super::sops::load_identities;
use crate::error::Error;
use crate::log;
use crate::perm;
use crate::provision::{self, MintWith, OutputFormat, Request};
use crate::revoke::{self, CredentialsFrom};
use crate::sink::{SinkError, WriteOptions};
use crate::sops::{Format, Identities};
use crate::state;
use crate::tailscaled;

use super::manual::STATE_DIR;

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
    /// The encrypted (or plain) source file (optional with a federated identity: --client-id
    /// or TS_CLIENT_ID).
    #[arg(long, value_name = "FILE")]
    pub(super) source: Option<PathBuf>,
    /// Key inside the source: sops-nix path `a/b`, or an env-file variable.
    #[arg(long, value_name = "KEY")]
    pub(super) key: Option<String>,
    /// Force the sops format of the source (default: detected).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    pub(super) input_type: Option<Format>,
    /// Where to write the auth key.
    #[arg(long, value_name = "PATH")]
    pub(super) out: PathBuf,
    /// raw: the key and a newline; env: TS_AUTHKEY=<key>; json: the key and its metadata.
    #[arg(long, value_enum, default_value = "raw")]
    pub(super) format: OutputFormat,
    /// Variable name for --format env.
    #[arg(long, value_name = "NAME", default_value = "TS_AUTHKEY")]
    pub(super) env_name: String,
    /// Owner of the output file (name or uid).
    #[arg(long, value_name = "USER")]
    pub(super) owner: Option<String>,
    /// Group of the output file (name or gid).
    #[arg(long, value_name = "GROUP")]
    pub(super) group: Option<String>,
    /// Mode of the output file (octal permission bits, at most 0777), applied exactly.
    #[arg(long, value_name = "OCTAL", default_value = "0600")]
    pub(super) mode: String,
    /// Create the output directory (mode 0751) if missing.
    #[arg(long)]
    pub(super) mkdir: bool,
    /// Name of the state record (default: the output file's name).
    #[arg(long)]
    pub(super) name: Option<String>,
    /// State directory.
    #[arg(long, value_name = "DIR", default_value = STATE_DIR)]
    pub(super) state_dir: PathBuf,
    /// Keep the current key (no API call) if tskeyctl minted it and it stays valid this long.
    #[arg(long, value_name = "DURATION")]
    pub(super) reuse_if_valid_for: Option<String>,
    /// After minting, revoke the key the state recorded before.
    #[arg(long)]
    pub(super) revoke_previous: bool,
    /// Mint nothing, write nothing when tailscaled is logged in (its BackendState is Running,
    /// Starting or Stopped); an absent or silent tailscaled provisions as usual.
    #[arg(long)]
    pub(super) skip_if_logged_in: bool,
    /// tailscaled's LocalAPI socket (for --skip-if-logged-in).
    #[arg(long, value_name = "PATH", default_value = tailscaled::DEFAULT_SOCKET)]
    pub(super) tailscaled_socket: PathBuf,
    /// Identity: an OpenSSH ed25519 private key or an age identity file (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    pub(super) identity: Vec<PathBuf>,
    #[command(flatten)]
    pub(super) key_options: KeyOptionArgs,
    #[command(flatten)]
    pub(super) federation: FederationArgs,
    #[command(flatten)]
    pub(super) api: ApiArgs,
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

/// `--mode`, `--owner`, `--group` through the crate's one parser and resolver ([`crate::perm`]).
pub(super) fn perm_flag<T>(flag: &str, r: Result<T, crate::perm::PermError>) -> Result<T, Error> {
    r.map_err(|e| Error::Config(format!("{flag}: {e}")))
}

/// `p` made absolute against the working directory (`-`, standard input, stays as it is).
pub(super) fn absolute(p: &Path) -> Result<PathBuf, Error> {
    if p.as_os_str() == "-" {
        return Ok(p.to_path_buf());
    }
    std::path::absolute(p).map_err(|e| {
        Error::Config(format!(
            "{}: cannot make the path absolute: {e}",
            p.display()
        ))
    })
}

pub(super) fn name_of(name: Option<&String>, out: &Path) -> Result<String, Error> {
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

/// Every option value of `provision` (and `doctor`, which takes the same flags), checked before
/// any file is read or request made.
pub(super) struct Checked {
    pub key: crate::mint::KeyOverrides,
    pub api: crate::mint::ApiSettings,
    pub reuse: Option<std::time::Duration>,
    pub write: WriteOptions,
}

impl ProvisionArgs {
    pub(super) fn checked(&self) -> Result<Checked, Error> {
        let a = self;
        let key = a.key_options.overrides()?;
        key.resolve(None)?;
        let api = a.api.checked()?;
        let reuse = a
            .reuse_if_valid_for
            .as_deref()
            .map(|v| parse_duration("--reuse-if-valid-for", v))
            .transpose()?;
        let write = WriteOptions {
            mode: perm_flag("--mode", perm::parse_mode(&a.mode))?,
            uid: a
                .owner
                .as_deref()
                .map(|v| perm_flag("--owner", perm::resolve_user(v)))
                .transpose()?,
            gid: a
                .group
                .as_deref()
                .map(|v| perm_flag("--group", perm::resolve_group(v)))
                .transpose()?,
            mkdir: a.mkdir,
            ..WriteOptions::default()
        };
        if !crate::material::is_var_name(&a.env_name) {
            return Err(Error::Config(format!(
                "--env-name: {:?} is not a variable name",
                a.env_name
            )));
        }
        Ok(Checked {
            key,
            api,
            reuse,
            write,
        })
    }
}

pub fn provision(a: ProvisionArgs) -> Result<(), Error> {
    let Checked {
        key,
        api,
        reuse,
        write,
    } = a.checked()?;
    // A device, FIFO, directory or untrusted directory at --out fails before anything is read.
    crate::sink::preflight(&a.out, &write).map_err(|e| offer_mkdir(e.into(), &a.out))?;
    let source = a.source.as_deref().map(absolute).transpose()?;
    if source.is_none()
        && a.federation.client_id.is_none()
        && std::env::var_os("TS_CLIENT_ID").is_none()
    {
        return Err(Error::Usage(
            "give --source FILE, or a federated identity (--client-id ID or TS_CLIENT_ID)".into(),
        ));
    }
    let req = Request {
        name: name_of(a.name.as_ref(), &a.out)?,
        out: absolute(&a.out)?,
        format: a.format,
        env_name: a.env_name.clone(),
        write,
        state_dir: a.state_dir.clone(),
        source: source.clone(),
        source_key: a.key.clone(),
        reuse_if_valid_for: reuse,
        revoke_previous: a.revoke_previous,
    };
    if a.skip_if_logged_in && tailscaled_logged_in(&a.tailscaled_socket) {
        provision::skip(&req, "tailscaled is logged in")?;
        log::notice(format!(
            "{}: skipped: tailscaled is logged in; nothing minted or written",
            req.out.display()
        ));
        return Ok(());
    }
    let identities = || load_identities(&a.identity);
    let mut load = || -> Result<crate::material::Material, Error> {
        use crate::material::Material;
        match &source {
            Some(source) => {
                let mut m = provision::material_from_source(
                    source,
                    a.key.as_deref(),
                    a.input_type,
                    &identities,
                )?;
                if let Material::Federated(f) = &mut m {
                    a.federation.complete(f)?;
                }
                Ok(m)
            }
            None => match a.federation.federated()? {
                Some(f) => Ok(Material::Federated(f)),
                None => Err(crate::credentials::CredentialsError::None.into()),
            },
        }
    };
    let outcome = provision::provision(&req, &mut load, &MintWith { key, api })
        .map_err(|e| offer_mkdir(e, &req.out))?;
    match outcome {
        provision::Outcome::Reused { .. } | provision::Outcome::Skipped => {
            log::notice(format!("{}: {outcome}", req.out.display()));
        }
        _ => log::notice(format!(
            "wrote {} (format {}, mode {:04o}): {outcome}",
            req.out.display(),
            req.format.as_str(),
            req.write.mode
        )),
    }
    log::info(format!(
        "{}: state recorded in {}",
        req.name,
        req.state_dir.join(&req.name).display()
    ));
    Ok(())
}

/// Whether tailscaled at `socket` holds a login. An absent, silent or garbled tailscaled counts
/// as not logged in: the run provisions as it would without `--skip-if-logged-in`.
fn tailscaled_logged_in(socket: &Path) -> bool {
    match tailscaled::backend_state(socket, tailscaled::TIMEOUT) {
        Ok(state) if state.logged_in() => true,
        Ok(state) => {
            log::info(format!(
                "tailscaled's backend state is {}; provisioning",
                state.as_str()
            ));
            false
        }
        Err(e) => {
            log::info(format!("{e}; provisioning as without --skip-if-logged-in"));
            false
        }
    }
}

/// Only provision has `--mkdir`, so only its message about a missing output directory names it
/// (the directory is first met when the output is locked, or when it is written).
fn offer_mkdir(e: Error, out: &Path) -> Error {
    let hint = "create it, or pass --mkdir";
    match e {
        Error::Sink(SinkError::DirMissing { dir, .. }) if Some(dir.as_path()) == out.parent() => {
            Error::Sink(SinkError::DirMissing { dir, hint })
        }
        Error::State(state::StateError::Write(SinkError::DirMissing { dir, .. }))
            if Some(dir.as_path()) == out.parent() =>
        {
            Error::State(state::StateError::Write(SinkError::DirMissing {
                dir,
                hint,
            }))
        }
        other => other,
    }
}

/// Revoke the key `provision` recorded (404 = already gone), for `ExecStopPost=`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl revoke --name tailscale_authkey\n  \
tskeyctl revoke --name web-sidecar.env --delete-device --remove-file\n  \
tskeyctl revoke --name tailscale_authkey --after-join --timeout 5m   # once tailscaled joined\n\n\
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
    /// First wait until tailscaled reports Running (it has joined with the key), then revoke;
    /// if it does not within --timeout, keep the key and exit 75.
    #[arg(long)]
    after_join: bool,
    /// How long --after-join waits.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        requires = "after_join"
    )]
    timeout: String,
    /// tailscaled's LocalAPI socket (for --after-join).
    #[arg(long, value_name = "PATH", default_value = tailscaled::DEFAULT_SOCKET)]
    tailscaled_socket: PathBuf,
}

pub fn revoke(a: RevokeArgs) -> Result<(), Error> {
    // The API settings are checked before anything is read; they come from the flag, the
    // environment or the default, never from the record.
    let api = a.api.checked()?;
    let name = match (&a.name, &a.out) {
        (Some(n), _) => {
            state::check_name(n)?;
            n.clone()
        }
        (None, Some(out)) => name_of(None, out)?,
        (None, None) => return Err(Error::Usage("give --name or --out".into())),
    };
    let source = a
        .source
        .as_deref()
        .map(absolute)
        .transpose()?
        .map(|s| (s, a.key.clone()));
    let given = if source.is_some() {
        Err(crate::credentials::CredentialsError::None)
    } else {
        a.credentials.resolve().map(|r| r.credentials)
    };
    let identities = || -> Result<Identities, Error> { load_identities(&a.identity) };
    let req = revoke::Request {
        name,
        state_dir: a.state_dir.clone(),
        delete_device: a.delete_device,
        remove_file: a.remove_file,
    };
    if a.after_join {
        let timeout = parse_duration("--timeout", &a.timeout)?;
        // A name with no record fails now, not after the wait (the lock is not held while
        // waiting: provision may run meanwhile).
        drop(revoke::recorded(&req)?);
        match tailscaled::wait_running(&a.tailscaled_socket, timeout) {
            Ok(took) => log::info(format!(
                "tailscaled is Running (after {}); revoking the key it joined with",
                humantime::format_duration(Duration::from_millis(took.as_millis() as u64))
            )),
            Err(e) => return Err(revoke::keep(&req, e.into())),
        }
    }
    let outcome = revoke::revoke(
        &req,
        CredentialsFrom {
            source,
            input_type: a.input_type,
            given,
            identities: &identities,
            complete: &|f| a.credentials.federation.complete(f),
        },
        &api,
    )?;
    log::notice(outcome);
    Ok(())
}
