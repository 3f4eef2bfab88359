//! The Tailscale API over blocking HTTP: the OAuth token endpoint, auth keys and devices.
//!
//! One [`Api`] per command holds a ureq agent (rustls with the ring provider and the bundled
//! webpki roots, so a host needs no CA bundle at boot and the tree has no OpenSSL or aws-lc).
//! Every call goes through `Api::call` (`transport.rs`, retries and deadline); this file
//! maps each endpoint's reply to a typed value ([`super::wire`]) or a [`MintError`] that says
//! what to do. Redirects are
//! never followed (a Bearer token must not travel to another host). Request and response bodies
//! that carry secrets live in zeroizing buffers; only method, path, status and timing are logged.
//!
//! Retrying `POST …/keys` after a timeout or a 5xx may leave behind a key the server created
//! but whose reply was lost. That key is never delivered to anyone, and it expires with
//! `--expiry` (default 1 h). The alternative, not retrying, would fail the boot on a transient
//! error.

use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::Agent;
use ureq::http::Method;
use zeroize::Zeroizing;

use super::error::MintError;
use super::retry::{CONNECT_TIMEOUT, Deadline, Policy};
use super::transport::{Body, CallError, Status, encode, segment};
use super::wire::{CreateKeyRequest, Deleted, Device, KeyInfo};

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Bearer<'a> {
    /// An access token from the OAuth token endpoint.
    Token(&'a str),
    /// A personal API key.
    ApiKey(&'a str),
}

impl Bearer<'_> {
    pub(super) fn secret(&self) -> &str {
        match self {
            Bearer::Token(s) | Bearer::ApiKey(s) => s,
        }
    }
    fn rejected(&self) -> &'static str {
        match self {
            Bearer::Token(_) => {
                "the API rejected the access token just issued for the OAuth client (revoked \
client?)"
            }
            Bearer::ApiKey(_) => "API key rejected (revoked, expired or mistyped)",
        }
    }
}

/// An access token from the OAuth token endpoint.
pub struct AccessToken {
    /// The `tskey-api-…` token.
    pub token: Zeroizing<String>,
    /// When it stops working (a little early, to be safe).
    pub valid_until: Instant,
}

/// Longest access-token lifetime believed (a day; Tailscale issues one-hour tokens).
const MAX_TOKEN_LIFE_SECS: u64 = 24 * 3600;

/// A Tailscale API endpoint base with its HTTP agent and retry policy.
pub struct Api {
    pub(super) agent: Agent,
    pub(super) base: String,
    pub(super) policy: Policy,
}

impl Api {
    /// An API at `base` (already checked by [`super::url::check`]), e.g.
    /// `https://api.tailscale.com`.
    pub fn new(base: &str, policy: Policy) -> Self {
        let mut config = Agent::config_builder();
        if super::url::is_loopback_url(base) {
            // A proxy from the environment must not see loopback traffic.
            config = config.proxy(None);
        }
        let agent: Agent = config
            .http_status_as_error(false)
            .max_redirects(0)
            .https_only(false) // checked beforehand: http only for loopback
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("tskeyctl/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .build()
            .into();
        Api {
            agent,
            base: base.trim_end_matches('/').to_owned(),
            policy,
        }
    }

    /// `POST /api/v2/oauth/token`: client credentials in the form body (never as a Bearer).
    pub fn token(
        &self,
        client_id: Option<&str>,
        secret: &str,
        deadline: &Deadline,
    ) -> Result<AccessToken, MintError> {
        let path = "/api/v2/oauth/token";
        let mut form = Zeroizing::new(Vec::with_capacity(128 + secret.len()));
        if let Some(id) = client_id {
            form.extend_from_slice(b"client_id=");
            encode(id, &mut form);
            form.push(b'&');
        }
        form.extend_from_slice(b"client_secret=");
        encode(secret, &mut form);
        form.extend_from_slice(b"&grant_type=client_credentials");
        #[derive(Deserialize)]
        struct TokenReply {
            access_token: Zeroizing<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let started = Instant::now();
        let reply = self.call(
            Method::POST,
            path,
            None,
            || Body::Form(form.clone()),
            deadline,
            |b| {
                let r: TokenReply = serde_json::from_slice(b).map_err(|e| e.to_string())?;
                if !crate::material::is_api_key(&r.access_token) {
                    return Err(
                        "access_token missing or not a well-formed tskey-api-… token".into(),
                    );
                }
                Ok(r)
            },
        );
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok(r) => {
                // The server's number is untrusted: cap it so `started + life` cannot overflow
                // (a token is only used within one command's deadline anyway).
                let secs = r.expires_in.unwrap_or(3600).min(MAX_TOKEN_LIFE_SECS);
                let life = Duration::from_secs(secs.saturating_sub(30));
                Ok(AccessToken {
                    token: r.access_token,
                    valid_until: started + life,
                })
            }
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => Err(match s.status {
                401 => MintError::Unauthorized {
                    endpoint,
                    what: "OAuth client secret rejected (revoked or mistyped)",
                    server: s.server,
                },
                403 => MintError::Forbidden {
                    endpoint,
                    what: "the OAuth client may not grant the scopes asked for".into(),
                    server: s.server,
                },
                404 => MintError::NotFound {
                    endpoint,
                    server: s.server,
                    hint: "no OAuth token endpoint at this address: check --api-url / \
TAILSCALE_BASE_URL (this is not a credentials problem)"
                        .into(),
                },
                status => MintError::Refused {
                    endpoint,
                    status,
                    server: s.server,
                },
            }),
        }
    }

    /// `POST /api/v2/tailnet/{tailnet}/keys`: creates an auth key. Returns the key and the
    /// server's description of it.
    pub fn create_key(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        req: &CreateKeyRequest,
        deadline: &Deadline,
    ) -> Result<(Zeroizing<String>, KeyInfo), MintError> {
        let path = format!("/api/v2/tailnet/{}/keys", segment(tailnet));
        let body = serde_json::to_vec(req).map_err(|e| MintError::InvalidOption(e.to_string()))?;
        #[derive(Deserialize)]
        struct Created {
            key: Zeroizing<String>,
            #[serde(flatten)]
            info: KeyInfo,
        }
        let reply = self.call(
            Method::POST,
            &path,
            Some(auth),
            || Body::Json(body.clone()),
            deadline,
            |b| {
                let c: Created = serde_json::from_slice(b).map_err(|e| e.to_string())?;
                if !crate::material::is_auth_key(&c.key) || c.info.id.is_empty() {
                    return Err("reply has no well-formed tskey-auth-… key or no id".into());
                }
                Ok(c)
            },
        );
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok(c) => Ok((c.key, c.info)),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => Err(self.key_status(
                s,
                endpoint,
                auth,
                tailnet,
                "auth_keys",
                Some(&req.capabilities.devices.create.tags),
            )),
        }
    }

    /// `GET /api/v2/tailnet/{tailnet}/keys/{id}`.
    pub fn get_key(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        id: &str,
        deadline: &Deadline,
    ) -> Result<KeyInfo, MintError> {
        let path = format!("/api/v2/tailnet/{}/keys/{}", segment(tailnet), segment(id));
        let reply = self.call(
            Method::GET,
            &path,
            Some(auth),
            || Body::Empty,
            deadline,
            |b| serde_json::from_slice::<KeyInfo>(b).map_err(|e| e.to_string()),
        );
        let endpoint = format!("GET {}{path}", self.base);
        match reply {
            Ok(k) => Ok(k),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => {
                Err(self.key_status(s, endpoint, auth, tailnet, "auth_keys:read", None))
            }
        }
    }

    /// `DELETE /api/v2/tailnet/{tailnet}/keys/{id}`: revokes a key; 404 means already gone.
    pub fn delete_key(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Deleted, MintError> {
        let path = format!("/api/v2/tailnet/{}/keys/{}", segment(tailnet), segment(id));
        self.delete(auth, &path, tailnet, "auth_keys", deadline)
    }

    /// `DELETE path`; a 404 means already gone. `scope` names what a 403 lacks.
    fn delete(
        &self,
        auth: Bearer<'_>,
        path: &str,
        tailnet: &str,
        scope: &str,
        deadline: &Deadline,
    ) -> Result<Deleted, MintError> {
        let reply = self.call(
            Method::DELETE,
            path,
            Some(auth),
            || Body::Empty,
            deadline,
            |_| Ok(()),
        );
        let endpoint = format!("DELETE {}{path}", self.base);
        match reply {
            Ok(()) => Ok(Deleted::Removed),
            Err(CallError::Status(s)) if s.status == 404 => Ok(Deleted::AlreadyGone),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => {
                Err(self.key_status(s, endpoint, auth, tailnet, scope, None))
            }
        }
    }

    /// `GET /api/v2/tailnet/{tailnet}/devices`.
    pub fn list_devices(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        deadline: &Deadline,
    ) -> Result<Vec<Device>, MintError> {
        let path = format!("/api/v2/tailnet/{}/devices", segment(tailnet));
        #[derive(Deserialize)]
        struct List {
            devices: Vec<Device>,
        }
        let reply = self.call(
            Method::GET,
            &path,
            Some(auth),
            || Body::Empty,
            deadline,
            |b| serde_json::from_slice::<List>(b).map_err(|e| e.to_string()),
        );
        let endpoint = format!("GET {}{path}", self.base);
        match reply {
            Ok(l) => Ok(l.devices),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => {
                Err(self.key_status(s, endpoint, auth, tailnet, "devices:core:read", None))
            }
        }
    }

    /// `DELETE /api/v2/device/{id}`; 404 means already gone.
    pub fn delete_device(
        &self,
        auth: Bearer<'_>,
        id: &str,
        deadline: &Deadline,
    ) -> Result<Deleted, MintError> {
        let path = format!("/api/v2/device/{}", segment(id));
        self.delete(auth, &path, "-", "devices:core", deadline)
    }

    /// Maps a final status of a tailnet-scoped call to an actionable error.
    fn key_status(
        &self,
        s: Status,
        endpoint: String,
        auth: Bearer<'_>,
        tailnet: &str,
        scope: &str,
        tags: Option<&[String]>,
    ) -> MintError {
        let server = s.server;
        match s.status {
            401 => MintError::Unauthorized {
                endpoint,
                what: auth.rejected(),
                server,
            },
            403 => MintError::Forbidden {
                endpoint,
                what: match auth {
                    Bearer::Token(_) => format!(
                        "the OAuth client lacks the `{scope}` scope: edit it (or create a new \
one) with that scope under Settings → OAuth clients"
                    ),
                    Bearer::ApiKey(_) => format!(
                        "the API key's user may not do this (it needs the rights of the \
`{scope}` scope, e.g. an Admin or IT admin role)"
                    ),
                },
                server,
            },
            400 if tags.is_some() && server.contains("must have tags") => {
                MintError::TagsRequired { endpoint, server }
            }
            400 if tags.is_some() && server.contains("tag") => MintError::TagsNotPermitted {
                endpoint,
                tags: format!("[{}]", tags.unwrap_or_default().join(" ")),
                server,
            },
            404 => MintError::NotFound {
                endpoint,
                server,
                hint: format!(
                    "check the tailnet ({tailnet}) and --api-url; a 404 is not a credentials problem"
                ),
            },
            status => MintError::Refused {
                endpoint,
                status,
                server,
            },
        }
    }
}
