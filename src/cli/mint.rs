//! `tskeyctl mint`, and the flag groups that `provision` and `revoke` reuse
//! (`#[command(flatten)]`): [`CredentialArgs`], [`KeyOptionArgs`], [`ApiArgs`].
//!
//! Values that clap can parse but the API would refuse (tags, expiry, description, URL,
//! deadline) are checked by the library and exit 78, before any request. No flag takes a secret
//! value: secrets come from files or the environment only.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::{output_path, write_stdout};
use crate::credentials::{self, CredentialsError, Federated, Sources, TokenSource};
use crate::error::Error;
use crate::mint::{ApiSettings, KeyOverrides, MintError};
use crate::provision::write_or_revoke;
use crate::sink::{self, Special, WriteOptions};

/// Where the API credentials come from (first found wins, see `tskeyctl mint --help`).
#[derive(Args, Debug, Clone, Default)]
pub struct CredentialArgs {
    /// File holding the OAuth client secret (tskey-client-…[?ephemeral=…&preauthorized=…]).
    /// Env: TS_API_CLIENT_SECRET, TAILSCALE_OAUTH_CLIENT_SECRET.
    #[arg(long, value_name = "FILE")]
    pub oauth_secret_file: Option<PathBuf>,
    /// OAuth client id (optional: the secret embeds it). Env: TS_API_CLIENT_ID,
    /// TAILSCALE_OAUTH_CLIENT_ID.
    #[arg(long, value_name = "ID")]
    pub oauth_client_id: Option<String>,
    /// Env file with TAILSCALE_OAUTH_CLIENT_ID/_SECRET, TS_API_CLIENT_ID/_SECRET or
    /// TAILSCALE_API_KEY/TAILSCALE_TAILNET lines (tailscale-manager's format).
    #[arg(long, value_name = "FILE")]
    pub credentials_file: Option<PathBuf>,
    /// File holding a personal API key (tskey-api-…). Env: TAILSCALE_API_KEY.
    #[arg(long, value_name = "FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Tailnet for an API key. Env: TAILSCALE_TAILNET. [default: - (the key's own tailnet)]
    #[arg(long, value_name = "TAILNET")]
    pub tailnet: Option<String>,
    #[command(flatten)]
    pub federation: FederationArgs,
}

/// A federated identity (workload identity federation): no stored secret, an OIDC ID token
/// exchanged for an access token at every run.
#[derive(Args, Debug, Clone, Default)]
pub struct FederationArgs {
    /// Federated identity client id, optionally ID?ephemeral=…&preauthorized=… (as the
    /// tailscale CLI: with no `?` keys are ephemeral and not preauthorized; with a `?` an
    /// attribute not given is false). Not secret. Env: TS_CLIENT_ID.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// File holding the OIDC ID token, re-read at every run (e.g. a Kubernetes projected
    /// service-account token). Env: TS_ID_TOKEN (the token, or file:PATH).
    #[arg(long, value_name = "FILE")]
    pub id_token_file: Option<PathBuf>,
    /// Where the ID token comes from: auto (--id-token-file, else TS_ID_TOKEN, else GitHub
    /// Actions when ACTIONS_ID_TOKEN_REQUEST_URL is set), file, github (ACTIONS_ID_TOKEN_REQUEST_URL
    /// and _TOKEN), gcp (the metadata server; GCE_METADATA_HOST overrides its address).
    #[arg(long, value_name = "auto|file|github|gcp", value_parser = parse_token_source, default_value = "auto")]
    pub id_token_source: TokenSource,
    /// Audience to ask the token source for (required for gcp). Env: TS_AUDIENCE.
    #[arg(long, value_name = "AUD")]
    pub audience: Option<String>,
}

fn parse_token_source(v: &str) -> Result<TokenSource, String> {
    match v {
        "auto" => Ok(TokenSource::Auto),
        "file" => Ok(TokenSource::File),
        "github" => Ok(TokenSource::GitHub),
        "gcp" => Ok(TokenSource::Gcp),
        _ => Err("expected auto, file, github or gcp".into()),
    }
}

impl FederationArgs {
    /// The federation flags as credential places (the rest empty).
    pub fn sources(&self) -> Sources {
        Sources {
            client_id: self.client_id.clone(),
            id_token_file: self.id_token_file.clone(),
            id_token_source: self.id_token_source,
            audience: self.audience.clone(),
            ..Sources::default()
        }
    }

    /// Completes a federated identity a source named, from these flags and the environment.
    pub fn complete(&self, f: &mut Federated) -> Result<(), CredentialsError> {
        credentials::complete_federated(f, &self.sources(), &|n| std::env::var(n).ok())
    }

    /// The federated identity these flags or the environment name, if any.
    pub fn federated(&self) -> Result<Option<Federated>, CredentialsError> {
        Ok(credentials::federated(&self.sources(), &|n| std::env::var(n).ok())?.map(|(f, _)| f))
    }
}

impl CredentialArgs {
    /// Finds the credentials (flags, then the process environment).
    pub fn resolve(&self) -> Result<credentials::Resolved, CredentialsError> {
        let src = Sources {
            oauth_secret_file: self.oauth_secret_file.clone(),
            oauth_client_id: self.oauth_client_id.clone(),
            credentials_file: self.credentials_file.clone(),
            api_key_file: self.api_key_file.clone(),
            tailnet: self.tailnet.clone(),
            ..self.federation.sources()
        };
        credentials::resolve(&src, &|n| std::env::var(n).ok())
    }
}

/// What the minted key should be.
#[derive(Args, Debug, Clone, Default)]
pub struct KeyOptionArgs {
    /// Tags for devices using the key (comma-separated or repeated; each tag:…). Required with
    /// an OAuth client.
    #[arg(long, value_name = "TAG,…", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// The key can be used more than once. [default: off]
    #[arg(long, overrides_with = "no_reusable")]
    pub reusable: bool,
    /// Single-use key.
    #[arg(long, overrides_with = "reusable")]
    pub no_reusable: bool,
    /// Devices are removed when they go offline. [default: on]
    #[arg(long, overrides_with = "no_ephemeral")]
    pub ephemeral: bool,
    /// Devices stay when offline.
    #[arg(long, overrides_with = "ephemeral")]
    pub no_ephemeral: bool,
    /// Devices need no admin approval. [default: on]
    #[arg(long, overrides_with = "no_preauthorized")]
    pub preauthorized: bool,
    /// Devices wait for admin approval.
    #[arg(long, overrides_with = "preauthorized")]
    pub no_preauthorized: bool,
    /// Key lifetime, 1s…90d (humantime: 90s, 15m, 1h, 7d).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub expiry: String,
    /// Description shown in the admin console (≤ 50 of A-Z a-z 0-9 space -). A run marker
    /// (tskeyctl-XXXXXXXXXXXX) is appended, by which a key whose reply was lost is found and
    /// revoked; the text is shortened to 28 characters if need be.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

fn flag(on: bool, off: bool) -> Option<bool> {
    match (on, off) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    }
}

/// Parses a humantime duration for `flag` (exit 78 when malformed).
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration, MintError> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        MintError::InvalidOption(format!(
            "{flag}: {value:?} is not a duration ({e}); use e.g. 90s, 15m, 1h, 7d"
        ))
    })
}

impl KeyOptionArgs {
    /// The flags as plain values (exit 78 for a malformed `--expiry`).
    pub fn overrides(&self) -> Result<KeyOverrides, MintError> {
        Ok(KeyOverrides {
            tags: self.tags.clone(),
            reusable: flag(self.reusable, self.no_reusable),
            ephemeral: flag(self.ephemeral, self.no_ephemeral),
            preauthorized: flag(self.preauthorized, self.no_preauthorized),
            expiry: parse_duration("--expiry", &self.expiry)?,
            description: self.description.clone(),
        })
    }
}

/// Which API, and how long to try.
#[derive(Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Tailscale API base URL (`--api-url`).
    #[arg(
        long,
        value_name = "URL",
        help = "Tailscale API base URL (https, or http only to loopback). Env: TAILSCALE_BASE_URL, \
TS_BASE_URL. [default: https://api.tailscale.com]"
    )]
    pub api_url: Option<String>,
    /// Give up (exit 75) when the API has not answered usefully within this time, retries
    /// included.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub deadline: String,
}

impl ApiArgs {
    /// The settings: the URL from the flag or the environment (`TAILSCALE_BASE_URL`,
    /// `TS_BASE_URL`), the deadline parsed. Checked by [`ApiSettings::check`], not here.
    pub fn settings(&self) -> Result<ApiSettings, MintError> {
        Ok(ApiSettings {
            url: self
                .api_url
                .clone()
                .or_else(|| std::env::var("TAILSCALE_BASE_URL").ok())
                .or_else(|| std::env::var("TS_BASE_URL").ok())
                .filter(|u| !u.trim().is_empty()),
            deadline: parse_duration("--deadline", &self.deadline)?,
        })
    }

    /// The settings, checked: every value is refused before any file is read.
    pub fn checked(&self) -> Result<ApiSettings, MintError> {
        let s = self.settings()?;
        s.check()?;
        Ok(s)
    }
}

/// Mint one Tailscale auth key from OAuth client or API-key credentials and print it.
#[derive(Args, Debug)]
#[command(
    after_help = "Credentials, first found wins: a federated identity (--client-id or TS_CLIENT_ID, \
with an ID token from --id-token-file, TS_ID_TOKEN, GitHub Actions or GCP), --oauth-secret-file, TS_API_CLIENT_SECRET, \
TAILSCALE_OAUTH_CLIENT_SECRET, --credentials-file, --api-key-file, TAILSCALE_API_KEY. \
Secrets are never accepted as argument values.\n\n\
Examples:\n  \
tskeyctl mint --oauth-secret-file /run/credentials/ts.secret --tags tag:server\n  \
TS_API_CLIENT_SECRET=\"$(cat ts.secret)\" tskeyctl mint --tags tag:ci --expiry 15m -o ts_authkey\n  \
tskeyctl mint --credentials-file /etc/tailscale-manager.env --tags tag:web --reusable \\\n      \
--no-ephemeral --description 'web fleet'\n\n\
Exit codes: 0 ok, 2 stdout is a terminal (without --force), 65 unusable material, 66 missing file, 73 cannot write -o, 75 network / \
timeout / 429 / 5xx / garbled reply (try later), 77 credentials or scope rejected (401/403), \
78 bad option, insecure URL, tags not permitted, 404 (wrong tailnet or URL)."
)]
pub struct MintArgs {
    #[command(flatten)]
    pub credentials: CredentialArgs,
    #[command(flatten)]
    pub key: KeyOptionArgs,
    #[command(flatten)]
    pub api: ApiArgs,
    /// Write the key to FILE (atomically, mode 0600; an existing character device or FIFO is
    /// written into) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the key even when stdout is a terminal.
    #[arg(long)]
    pub force: bool,
}

/// `tskeyctl mint`.
pub fn mint(a: MintArgs) -> Result<(), Error> {
    // Option values first: a typo costs neither a file read nor a request.
    let overrides = a.key.overrides()?;
    overrides.resolve(None)?;
    let api = a.api.checked()?;
    // A live key on a terminal ends up in scrollback and screen recordings: refused before any
    // request is made (as `identity` does).
    if output_path(&a.output).is_none() && std::io::stdout().is_terminal() && !a.force {
        return Err(Error::Usage(
            "refusing to print a live auth key to a terminal; use -o FILE, a pipe, or --force"
                .into(),
        ));
    }
    let write = WriteOptions {
        mode: 0o600,
        allow_sticky_dir: true,
        special: Special::WriteInto,
        ..WriteOptions::default()
    };
    if let Some(path) = output_path(&a.output) {
        sink::preflight(path, &write)?;
    }
    let creds = a.credentials.resolve()?.credentials;
    let opts = overrides.resolve(Some(&creds))?;
    let mut minter = api.minter(Some(&creds))?;
    let minted = minter.mint(&creds, &opts)?;
    let mut out = zeroize::Zeroizing::new(String::with_capacity(minted.key.len() + 1));
    out.push_str(&minted.key);
    out.push('\n');
    match output_path(&a.output) {
        Some(path) => {
            write_or_revoke(&mut minter, &creds, &minted.id, || {
                sink::write_atomic(path, out.as_bytes(), &write)
            })?;
            crate::log::notice(format!(
                "wrote {}: minted key {} (expires {})",
                path.display(),
                minted.id,
                minted.expires.as_deref().unwrap_or("at an unknown time")
            ));
            Ok(())
        }
        // A closed pipe or a full disk behind `> file`: nobody holds the key, so revoke it.
        None => write_or_revoke(&mut minter, &creds, &minted.id, || {
            write_stdout(out.as_bytes())
        }),
    }
}
