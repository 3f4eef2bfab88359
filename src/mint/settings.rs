//! What the caller asks of a key and of the API, as plain values, and how they merge with what
//! the credentials themselves say.
//!
//! The CLI fills these from flags and the environment; the library (`mint`, `provision`,
//! `revoke`) merges them with the credentials once those are known: a tailscale-CLI-style
//! `tskey-client-…?ephemeral=…&preauthorized=…&baseURL=…` secret changes the defaults, never an
//! explicit choice. Nothing here reads flags, the environment or state.

use std::time::Duration;

use super::{Credentials, DEFAULT_API_URL, KeyOptions, MintError, Minter, url};

/// The key options asked for; `None` flags take the secret's query or the contract's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOverrides {
    /// `--tags`.
    pub tags: Vec<String>,
    /// `--reusable` / `--no-reusable`.
    pub reusable: Option<bool>,
    /// `--ephemeral` / `--no-ephemeral`.
    pub ephemeral: Option<bool>,
    /// `--preauthorized` / `--no-preauthorized`.
    pub preauthorized: Option<bool>,
    /// `--expiry`.
    pub expiry: Duration,
    /// `--description`.
    pub description: Option<String>,
}

impl KeyOverrides {
    /// Validated options. Precedence per flag: the explicit choice, then the `?ephemeral=` /
    /// `?preauthorized=` of a tailscale-CLI-style client secret, then the default. With
    /// credentials, also checks that they can mint such a key (OAuth keys need tags).
    pub fn resolve(&self, creds: Option<&Credentials>) -> Result<KeyOptions, MintError> {
        let d = KeyOptions::default();
        let (q_eph, q_pre) = match creds {
            Some(Credentials::OAuth(c)) => (c.ephemeral, c.preauthorized),
            _ => (None, None),
        };
        let opts = KeyOptions::new(
            self.tags.clone(),
            self.reusable.unwrap_or(d.reusable),
            self.ephemeral.or(q_eph).unwrap_or(d.ephemeral),
            self.preauthorized.or(q_pre).unwrap_or(d.preauthorized),
            self.expiry,
            self.description.clone(),
        )?;
        if let Some(c) = creds {
            opts.check_for(c)?;
        }
        Ok(opts)
    }
}

/// Which API, and how long to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiSettings {
    /// The base URL configured (flag or environment); `None` for the secret's `?baseURL=`, else
    /// the default. Never a URL read from state: credentials go only where configured.
    pub url: Option<String>,
    /// Overall deadline of the command's API calls.
    pub deadline: Duration,
}

impl ApiSettings {
    /// Checks what can be checked before anything is read: the configured URL (or the default)
    /// and a deadline above zero.
    pub fn check(&self) -> Result<(), MintError> {
        if self.deadline.is_zero() {
            return Err(MintError::InvalidOption(
                "--deadline: must be more than 0s".into(),
            ));
        }
        url::check(self.url.as_deref().unwrap_or(DEFAULT_API_URL))?;
        Ok(())
    }

    /// The base URL for these credentials: the configured one, the secret's `?baseURL=`, or the
    /// default. Not yet checked.
    pub fn url_for(&self, creds: Option<&Credentials>) -> String {
        self.url
            .clone()
            .or_else(|| match creds {
                Some(Credentials::OAuth(c)) => c.base_url.clone(),
                _ => None,
            })
            .unwrap_or_else(|| DEFAULT_API_URL.to_owned())
    }

    /// A minter for these credentials; the deadline starts now.
    pub fn minter(&self, creds: Option<&Credentials>) -> Result<Minter, MintError> {
        self.check()?;
        Minter::new(&self.url_for(creds), self.deadline)
    }
}
