//! Where `mint` finds the API credentials, in the contract's order (first found wins).
//!
//! 1. `--oauth-secret-file F`, then the env vars `TS_API_CLIENT_SECRET` and
//!    `TAILSCALE_OAUTH_CLIENT_SECRET` (client id optional: `--oauth-client-id`,
//!    `TS_API_CLIENT_ID`, `TAILSCALE_OAUTH_CLIENT_ID`; otherwise taken from the secret);
//! 2. `--credentials-file F`, an env file with those KEY=VALUE lines (tailscale-manager's format);
//! 3. `--api-key-file F`, then `TAILSCALE_API_KEY`, with `--tailnet` / `TAILSCALE_TAILNET`
//!    (default `-`).
//!
//! A credentials file carries its own client id (or the one in its secret); flags and env ids
//! apply to the other sources. Secrets are never taken from argv: only from files and the environment. When more than one
//! source is present the first wins and a warning names the ones ignored (names, not values).

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{Credentials, MintError};
use crate::error::Error;
use crate::log;
use crate::material::{self, ApiKey, Material, MaterialError, Want};
use crate::source::{self, Origin};

/// Largest secret file read.
const SECRET_FILE_LIMIT: u64 = 64 << 10;

/// The places credentials may come from (the CLI fills this from flags).
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--oauth-secret-file`.
    pub oauth_secret_file: Option<PathBuf>,
    /// `--oauth-client-id` (not secret).
    pub oauth_client_id: Option<String>,
    /// `--credentials-file`.
    pub credentials_file: Option<PathBuf>,
    /// `--api-key-file`.
    pub api_key_file: Option<PathBuf>,
    /// `--tailnet`.
    pub tailnet: Option<String>,
}

/// Credentials and a description of where they came from (for logs).
pub struct Resolved {
    /// What to authenticate with.
    pub credentials: Credentials,
    /// "--oauth-secret-file /run/…", "TS_API_CLIENT_SECRET", …
    pub source: String,
}

fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, Error> {
    let origin = Origin::from_arg(path);
    let bytes = source::read_limited(&origin, SECRET_FILE_LIMIT, "a secret file")?;
    let text = std::str::from_utf8(&bytes).map_err(|_| MaterialError::NotText {
        origin: origin.to_string(),
    })?;
    Ok(Zeroizing::new(text.trim().to_owned()))
}

fn first_env(
    env: &dyn Fn(&str) -> Option<String>,
    names: &[&'static str],
) -> Option<(&'static str, Zeroizing<String>)> {
    names.iter().find_map(|n| {
        env(n)
            .map(Zeroizing::new)
            .filter(|v| !v.trim().is_empty())
            .map(|v| (*n, v))
    })
}

fn oauth(origin: &str, value: &str, wanted: &'static str) -> Result<Material, Error> {
    match material::classify_str(origin, value)? {
        m @ Material::OAuth(_) => Ok(m),
        other => Err(MaterialError::WrongType {
            origin: origin.into(),
            key: wanted.into(),
            found: format!("an {}", other.kind()),
            expected: "a tskey-client-… OAuth client secret",
        }
        .into()),
    }
}

/// Reads and classifies one source, when it is the one chosen.
type Loader<'a> = Box<dyn FnOnce() -> Result<Material, Error> + 'a>;

/// Finds the credentials. `env` looks up an environment variable (injectable for tests).
pub fn resolve(src: &Sources, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved, Error> {
    let mut found: Vec<(String, Loader<'_>)> = Vec::new();
    if let Some(f) = &src.oauth_secret_file {
        found.push((
            format!("--oauth-secret-file {}", f.display()),
            Box::new(move || {
                let s = read_secret_file(f)?;
                oauth(&f.display().to_string(), &s, "the file")
            }),
        ));
    }
    for name in ["TS_API_CLIENT_SECRET", "TAILSCALE_OAUTH_CLIENT_SECRET"] {
        if let Some((n, v)) = first_env(env, &[name]) {
            found.push((n.to_owned(), Box::new(move || oauth(n, &v, n))));
        }
    }
    if let Some(f) = &src.credentials_file {
        found.push((
            format!("--credentials-file {}", f.display()),
            Box::new(move || {
                let origin = Origin::from_arg(f);
                let bytes = source::read_limited(&origin, material::ENV_FILE_LIMIT, "an env file")?;
                let entries = material::parse_env(&origin.to_string(), &bytes)?;
                Ok(material::classify_map(
                    &origin.to_string(),
                    &entries,
                    Want::ApiCredentials,
                )?)
            }),
        ));
    }
    let api_key = |origin: &str, v: &str| -> Result<Material, Error> {
        match material::classify_str(origin, v)? {
            m @ Material::ApiKey(_) => Ok(m),
            other => Err(MaterialError::WrongType {
                origin: origin.into(),
                key: "the API key".into(),
                found: format!("an {}", other.kind()),
                expected: "a tskey-api-… API key",
            }
            .into()),
        }
    };
    if let Some(f) = &src.api_key_file {
        found.push((
            format!("--api-key-file {}", f.display()),
            Box::new(move || api_key(&f.display().to_string(), &read_secret_file(f)?)),
        ));
    }
    if let Some((n, v)) = first_env(env, &["TAILSCALE_API_KEY"]) {
        found.push((n.to_owned(), Box::new(move || api_key(n, &v))));
    }

    let mut sources = found.into_iter();
    let Some((source, load)) = sources.next() else {
        return Err(MintError::NoCredentials.into());
    };
    let ignored: Vec<String> = sources.map(|(s, _)| s).collect();
    if !ignored.is_empty() {
        log::warn(format!(
            "using credentials from {source}; ignoring {}",
            ignored.join(", ")
        ));
    }
    let credentials = match load()? {
        Material::OAuth(mut c) => {
            // A credentials file carries its own id (or the secret's); otherwise an id given
            // by flag or env wins over the one embedded in the secret.
            if !source.starts_with("--credentials-file") {
                let given = src
                    .oauth_client_id
                    .clone()
                    .or_else(|| {
                        first_env(env, &["TS_API_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_ID"])
                            .map(|(_, v)| v.trim().to_owned())
                    })
                    .filter(|id| !id.is_empty());
                if given.is_some() {
                    c.client_id = given;
                }
            }
            Credentials::OAuth(c)
        }
        Material::ApiKey(mut k) => {
            if let Some(t) = src
                .tailnet
                .clone()
                .or_else(|| env("TAILSCALE_TAILNET"))
                .filter(|t| !t.trim().is_empty())
            {
                if !source.starts_with("--credentials-file") || k.tailnet == "-" {
                    k.tailnet = t.trim().to_owned();
                }
            }
            Credentials::ApiKey(ApiKey {
                key: k.key,
                tailnet: k.tailnet,
            })
        }
        Material::AuthKey(_) => return Err(MintError::NoCredentials.into()),
    };
    log::info(format!(
        "credentials: {} from {source}",
        credentials.describe()
    ));
    Ok(Resolved {
        credentials,
        source,
    })
}
