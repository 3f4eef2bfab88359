//! What the minted key should be and which API to ask: the validated [`KeyOptions`] and the
//! request body they make, and the plain values the caller asks for ([`KeyOverrides`],
//! [`ApiSettings`]) with the rules that merge them with what the credentials themselves say.
//!
//! The CLI fills the plain values from flags and the environment; the library (`mint`,
//! `provision`, `revoke`) merges them with the credentials once those are known: a
//! tailscale-CLI-style `tskey-client-…?ephemeral=…&preauthorized=…&baseURL=…` secret changes the
//! defaults, never an explicit choice. Options are validated here, before any request, so a typo
//! costs no API call. Nothing here reads flags, the environment or state.

use std::time::Duration;

use super::error::MintError;
use super::url;
use super::wire::{Capabilities, CreateCaps, CreateKeyRequest, DeviceCaps};
use crate::credentials::Credentials;

/// Default API base.
pub const DEFAULT_API_URL: &str = "https://api.tailscale.com";
/// Default key lifetime: short-lived, the point of minting at boot.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(3600);
/// Longest key lifetime the API allows (90 days).
pub const MAX_EXPIRY: Duration = Duration::from_secs(90 * 24 * 3600);
/// Longest description the API allows.
pub const MAX_DESCRIPTION: usize = 50;

/// What the minted key should be. Build with [`KeyOptions::new`], which validates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOptions {
    /// ACL tags (`tag:…`), in order, without duplicates.
    pub tags: Vec<String>,
    /// Usable more than once.
    pub reusable: bool,
    /// Devices are removed when they go offline.
    pub ephemeral: bool,
    /// Devices need no approval.
    pub preauthorized: bool,
    /// Key lifetime, whole seconds in 1 s … 90 d.
    pub expiry: Duration,
    /// Free text, ≤ 50 of `[A-Za-z0-9 -]`.
    pub description: Option<String>,
}

impl Default for KeyOptions {
    /// The contract's defaults: no tags, single-use, ephemeral, preauthorized, 1 h.
    fn default() -> Self {
        KeyOptions {
            tags: Vec::new(),
            reusable: false,
            ephemeral: true,
            preauthorized: true,
            expiry: DEFAULT_EXPIRY,
            description: None,
        }
    }
}

/// Tailscale's tag syntax (`tailcfg.CheckTag`): `tag:` then a letter, then letters, digits, `-`.
pub fn check_tag(tag: &str) -> Result<(), MintError> {
    let bad = |why: &str| MintError::InvalidOption(format!("--tags: {tag:?} {why}"));
    let Some(name) = tag.strip_prefix("tag:") else {
        return Err(bad("must start with \"tag:\" (e.g. tag:server)"));
    };
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() => {}
        _ => return Err(bad("must have a letter right after \"tag:\"")),
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(bad(
            "may contain only letters, digits and '-' after \"tag:\"",
        ));
    }
    Ok(())
}

impl KeyOptions {
    /// Validates and normalises (tags deduplicated, in order).
    pub fn new(
        tags: Vec<String>,
        reusable: bool,
        ephemeral: bool,
        preauthorized: bool,
        expiry: Duration,
        description: Option<String>,
    ) -> Result<Self, MintError> {
        let mut uniq: Vec<String> = Vec::new();
        for t in tags.into_iter().map(|t| t.trim().to_owned()) {
            check_tag(&t)?;
            if !uniq.contains(&t) {
                uniq.push(t);
            }
        }
        if expiry.subsec_nanos() != 0 {
            return Err(MintError::InvalidOption(
                "--expiry: must be whole seconds (e.g. 90s, 1h, 7d)".into(),
            ));
        }
        if expiry < Duration::from_secs(1) || expiry > MAX_EXPIRY {
            return Err(MintError::InvalidOption(format!(
                "--expiry: {}s is outside 1s…90d (at most {}s, the API's limit)",
                expiry.as_secs(),
                MAX_EXPIRY.as_secs()
            )));
        }
        if let Some(d) = &description {
            if d.chars().count() > MAX_DESCRIPTION {
                return Err(MintError::InvalidOption(format!(
                    "--description: {} characters, the API allows at most {MAX_DESCRIPTION}",
                    d.chars().count()
                )));
            }
            if let Some(c) = d
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || *c == ' ' || *c == '-'))
            {
                return Err(MintError::InvalidOption(format!(
                    "--description: {c:?} is not allowed; use letters, digits, spaces and '-'"
                )));
            }
        }
        Ok(KeyOptions {
            tags: uniq,
            reusable,
            ephemeral,
            preauthorized,
            expiry,
            description,
        })
    }

    /// Checks the options against the credentials: OAuth-minted keys must be tagged.
    pub fn check_for(&self, creds: &Credentials) -> Result<(), MintError> {
        if matches!(creds, Credentials::Federated(_)) && self.tags.is_empty() {
            return Err(MintError::InvalidOption(
                "--tags is required with a federated identity: its keys are owned by the tailnet \
and must carry tags the identity owns (e.g. --tags tag:ci)"
                    .into(),
            ));
        }
        if matches!(creds, Credentials::OAuth(_)) && self.tags.is_empty() {
            return Err(MintError::InvalidOption(
                "--tags is required with an OAuth client: its keys are owned by the tailnet and \
must carry tags the client owns (e.g. --tags tag:server)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The request body these options make.
    pub fn request(&self) -> CreateKeyRequest {
        CreateKeyRequest {
            capabilities: Capabilities {
                devices: DeviceCaps {
                    create: CreateCaps {
                        reusable: self.reusable,
                        ephemeral: self.ephemeral,
                        preauthorized: self.preauthorized,
                        tags: self.tags.clone(),
                    },
                },
            },
            expiry_seconds: self.expiry.as_secs(),
            description: self.description.clone(),
        }
    }
}

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
            Some(Credentials::Federated(f)) => (f.ephemeral, f.preauthorized),
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
}
