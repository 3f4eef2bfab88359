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
//! Creating a key is not idempotent: a reply cut short, garbled or reset after the server acted
//! leaves a key nobody received. Every create request therefore carries a per-run marker in the
//! key's description; before retrying such an attempt (and once more after a success that
//! followed one), the keys of the tailnet are listed and every live key bearing the marker,
//! other than the one delivered, is revoked. If that cannot be done in time, the error says so
//! and names the marker.

use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::http::Method;
use zeroize::Zeroizing;

use super::error::MintError;
use super::retry::Deadline;
pub use super::transport::{Api, Bearer};
use super::transport::{Body, CallError, Status, encode, segment};
use super::wire::{CreateKeyRequest, Deleted, Device, KeyInfo};
use crate::log;

/// What a rejected credential means, per kind.
fn rejected(auth: Bearer<'_>) -> &'static str {
    match auth {
        Bearer::Token(_) => {
            "the API rejected the access token just issued for the OAuth client or federated \
identity (revoked?)"
        }
        Bearer::ApiKey(_) => "API key rejected (revoked, expired or mistyped)",
    }
}

/// An access token from the OAuth token endpoint.
pub struct AccessToken {
    /// The `tskey-api-…` token.
    pub token: Zeroizing<String>,
    /// When it stops working (a little early, to be safe).
    pub valid_until: Instant,
    /// The scopes the reply says the token carries (`scope`, space-separated), if it says.
    pub scopes: Option<Vec<String>>,
}

fn scopes_of(scope: Option<String>) -> Option<Vec<String>> {
    scope.map(|s| s.split_whitespace().map(str::to_owned).collect())
}

/// Time allowed for finding and revoking the keys of lost replies, even past the deadline.
const CLEANUP_GRACE: Duration = Duration::from_secs(10);

/// Longest access-token lifetime believed (a day; Tailscale issues one-hour tokens).
const MAX_TOKEN_LIFE_SECS: u64 = 24 * 3600;

/// The reply of both token endpoints (OAuth client credentials and token exchange).
#[derive(Deserialize)]
struct TokenReply {
    access_token: Zeroizing<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    scope: Option<String>,
}

impl Api {
    /// POSTs `form` to a token endpoint and reads the access token; `well_formed` checks the
    /// token (a reply it refuses counts as garbled). The server's lifetime is untrusted: capped so
    /// `started + life` cannot overflow, and taken 30 s early.
    fn access_token(
        &self,
        path: &str,
        form: Zeroizing<Vec<u8>>,
        deadline: &Deadline,
        well_formed: fn(&str) -> Result<(), &'static str>,
    ) -> Result<AccessToken, CallError> {
        let started = Instant::now();
        let r = self.call(
            Method::POST,
            path,
            None,
            || Body::Form(form.clone()),
            deadline,
            |b| {
                let r: TokenReply = serde_json::from_slice(b).map_err(|e| e.to_string())?;
                well_formed(&r.access_token)?;
                Ok(r)
            },
        )?;
        let secs = r.expires_in.unwrap_or(3600).min(MAX_TOKEN_LIFE_SECS);
        Ok(AccessToken {
            token: r.access_token,
            valid_until: started + Duration::from_secs(secs.saturating_sub(30)),
            scopes: scopes_of(r.scope),
        })
    }
}

impl Api {
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
        let reply = self.access_token(path, form, deadline, |t| {
            if crate::material::is_api_key(t) {
                Ok(())
            } else {
                Err("access_token missing or not a well-formed API token")
            }
        });
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok(t) => Ok(t),
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

    /// `POST /api/v2/oauth/token-exchange`: a federated identity's ID token for an access
    /// token (form fields `client_id` and `jwt`, nothing else; the token is never logged).
    pub fn token_exchange(
        &self,
        client_id: &str,
        jwt: &str,
        deadline: &Deadline,
    ) -> Result<AccessToken, MintError> {
        let path = "/api/v2/oauth/token-exchange";
        let mut form = Zeroizing::new(Vec::with_capacity(64 + jwt.len()));
        form.extend_from_slice(b"client_id=");
        encode(client_id, &mut form);
        form.extend_from_slice(b"&jwt=");
        encode(jwt, &mut form);
        let reply = self.access_token(path, form, deadline, |t| {
            if t.len() <= 4096 && crate::material::check_plain("", "", t).is_ok() {
                Ok(())
            } else {
                Err("access_token missing or malformed")
            }
        });
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok(t) => Ok(t),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => Err(match s.status {
                401 => MintError::Unauthorized {
                    endpoint,
                    what: "the ID token was rejected for this federated identity (its issuer, \
subject, signature or expiry does not match the identity's trust settings, or the client id is \
wrong)",
                    server: s.server,
                },
                400 => MintError::ExchangeRefused {
                    endpoint,
                    client_id: client_id.to_owned(),
                    server: s.server,
                },
                403 => MintError::Forbidden {
                    endpoint,
                    what: "the federated identity may not be used here".into(),
                    server: s.server,
                },
                404 => MintError::NotFound {
                    endpoint,
                    server: s.server,
                    hint: "no token-exchange endpoint at this address: check --api-url / \
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

    /// `POST /api/v2/tailnet/{tailnet}/keys`: creates an auth key whose description contains
    /// `marker` (unique to this run). Returns the key and the server's description of it. Keys
    /// a lost reply created are found by the marker and revoked (see the module doc).
    pub fn create_key(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        req: &CreateKeyRequest,
        marker: &str,
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
        // Finding and revoking what a lost reply created may take a little past the deadline.
        let cleanup = || deadline.at_least(CLEANUP_GRACE);
        let mut settle = || {
            self.revoke_marked(auth, tailnet, marker, None, &cleanup())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        let reply = self.call_settling(
            Method::POST,
            &path,
            Some(auth),
            || Body::Json(body.clone()),
            deadline,
            |b| {
                let c: Created = serde_json::from_slice(b).map_err(|e| e.to_string())?;
                if !crate::material::is_auth_key(&c.key) || c.info.id.is_empty() {
                    return Err("reply holds no well-formed auth key, or no id".into());
                }
                Ok(c)
            },
            Some(&mut settle),
        );
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok((c, unsettled)) => {
                if unsettled {
                    // A lost reply may have been acted on after the last check: look again.
                    let keep = Some(c.info.id.as_str());
                    if let Err(e) = self.revoke_marked(auth, tailnet, marker, keep, &cleanup()) {
                        log::warn(format!(
                            "could not check for other keys this run created (description \
containing {marker}): {e}"
                        ));
                    }
                }
                Ok((c.key, c.info))
            }
            Err(CallError::Mint(MintError::Unsettled { endpoint, last, .. })) => {
                Err(MintError::Unsettled {
                    endpoint,
                    last,
                    marker: marker.to_owned(),
                })
            }
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

    /// Revokes every live key whose description contains `marker`, except `keep`; returns how
    /// many. Lists the tailnet's keys (`GET …/keys`), asking for a key's description one by one
    /// when the listing omits it.
    pub fn revoke_marked(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        marker: &str,
        keep: Option<&str>,
        deadline: &Deadline,
    ) -> Result<usize, MintError> {
        let mut revoked = 0;
        for k in self.list_keys(auth, tailnet, deadline)? {
            if k.invalid || keep == Some(k.id.as_str()) {
                continue;
            }
            let info = match k.description {
                Some(_) => k,
                None => self.get_key(auth, tailnet, &k.id, deadline)?,
            };
            if info.invalid
                || !info
                    .description
                    .as_deref()
                    .is_some_and(|d| d.contains(marker))
            {
                continue;
            }
            self.delete_key(auth, tailnet, &info.id, deadline)?;
            log::warn(format!(
                "revoked key {} that this run created but whose reply was lost",
                info.id
            ));
            revoked += 1;
        }
        Ok(revoked)
    }

    /// `GET /api/v2/tailnet/{tailnet}/keys`: the keys the caller can see.
    pub fn list_keys(
        &self,
        auth: Bearer<'_>,
        tailnet: &str,
        deadline: &Deadline,
    ) -> Result<Vec<KeyInfo>, MintError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            keys: Vec<KeyInfo>,
        }
        let path = format!("/api/v2/tailnet/{}/keys", segment(tailnet));
        let l: List = self.get(auth, &path, tailnet, "auth_keys:read", deadline)?;
        Ok(l.keys)
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
        self.get(auth, &path, tailnet, "auth_keys:read", deadline)
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

    /// `GET path` with a JSON reply of type `T`. `scope` names what a 403 lacks.
    fn get<T: serde::de::DeserializeOwned>(
        &self,
        auth: Bearer<'_>,
        path: &str,
        tailnet: &str,
        scope: &str,
        deadline: &Deadline,
    ) -> Result<T, MintError> {
        let reply = self.call(
            Method::GET,
            path,
            Some(auth),
            || Body::Empty,
            deadline,
            |b| serde_json::from_slice::<T>(b).map_err(|e| e.to_string()),
        );
        match reply {
            Ok(t) => Ok(t),
            Err(CallError::Mint(e)) => Err(e),
            Err(CallError::Status(s)) => {
                let endpoint = format!("GET {}{path}", self.base);
                Err(self.key_status(s, endpoint, auth, tailnet, scope, None))
            }
        }
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
        #[derive(Deserialize)]
        struct List {
            devices: Vec<Device>,
        }
        let path = format!("/api/v2/tailnet/{}/devices", segment(tailnet));
        let l: List = self.get(auth, &path, tailnet, "devices:core:read", deadline)?;
        Ok(l.devices)
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
                what: rejected(auth),
                server,
            },
            403 => MintError::Forbidden {
                endpoint,
                what: match auth {
                    Bearer::Token(_) => format!(
                        "the OAuth client lacks the `{scope}` scope (or, with a federated \
identity, the identity does): edit it (or create a new one) with that scope under Settings → \
OAuth clients / Trust credentials"
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
