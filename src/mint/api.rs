//! The Tailscale API over blocking HTTP: the OAuth token endpoint, auth keys and devices.
//!
//! One [`Api`] per command holds a ureq agent (rustls with the ring provider and the bundled
//! webpki roots, so a host needs no CA bundle at boot and the tree has no OpenSSL or aws-lc).
//! Every call goes through [`Api::call`], which applies the retry policy of [`super::retry`]
//! and turns the reply into a typed value or a [`MintError`] that says what to do. Redirects are
//! never followed (a Bearer token must not travel to another host). Request and response bodies
//! that carry secrets live in zeroizing buffers; only method, path, status and timing are logged.
//!
//! Retrying `POST …/keys` after a timeout or a 5xx may leave behind a key the server created
//! but whose reply was lost. That key is never delivered to anyone, and it expires with
//! `--expiry` (default 1 h). The alternative, not retrying, would fail the boot on a transient
//! error.

use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use ureq::http::{self, Method};
use ureq::{Agent, RequestExt};
use zeroize::Zeroizing;

use super::error::{MintError, server_message};
use super::retry::{CONNECT_TIMEOUT, Deadline, Policy, parse_retry_after};
use crate::log;

/// Largest response body read (the v1 Go client caps at 10 MB; ours are a few KiB).
const BODY_LIMIT: u64 = 1 << 20;

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Bearer<'a> {
    /// An access token from the OAuth token endpoint.
    Token(&'a str),
    /// A personal API key.
    ApiKey(&'a str),
}

impl Bearer<'_> {
    fn secret(&self) -> &str {
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

/// What a non-2xx, non-retryable reply said.
struct Status {
    status: u16,
    server: String,
}

/// Why one call failed: a final HTTP verdict for the caller to interpret, or an error already.
enum CallError {
    Status(Status),
    Mint(MintError),
}

/// The body of a request.
enum Body {
    Empty,
    Form(Zeroizing<Vec<u8>>),
    Json(Vec<u8>),
}

/// An access token from the OAuth token endpoint.
pub struct AccessToken {
    /// The `tskey-api-…` token.
    pub token: Zeroizing<String>,
    /// When it stops working (a little early, to be safe).
    pub valid_until: Instant,
}

/// A key as the API describes it (`GET …/keys/{id}` and the create reply).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Key id (`k…CNTRL`).
    pub id: String,
    /// RFC 3339 creation time.
    #[serde(default)]
    pub created: Option<String>,
    /// RFC 3339 expiry time.
    #[serde(default)]
    pub expires: Option<String>,
    /// RFC 3339 revocation time, if revoked.
    #[serde(default)]
    pub revoked: Option<String>,
    /// Revoked or expired.
    #[serde(default)]
    pub invalid: bool,
    /// Requested lifetime in seconds.
    #[serde(default)]
    pub expiry_seconds: Option<i64>,
    /// What the key allows.
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
}

/// `capabilities` of a key.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Capabilities {
    /// Device capabilities.
    pub devices: DeviceCaps,
}

/// `capabilities.devices`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct DeviceCaps {
    /// What a device created with the key gets.
    pub create: CreateCaps,
}

/// `capabilities.devices.create`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CreateCaps {
    /// Usable more than once.
    #[serde(default)]
    pub reusable: bool,
    /// Devices disappear when offline.
    #[serde(default)]
    pub ephemeral: bool,
    /// Devices need no admin approval.
    #[serde(default)]
    pub preauthorized: bool,
    /// Tags the devices get.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tags: Vec<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// The body of `POST /api/v2/tailnet/{tailnet}/keys` (field order is the wire order).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateKeyRequest {
    /// Flags and tags.
    pub capabilities: Capabilities,
    /// Lifetime in seconds.
    pub expiry_seconds: u64,
    /// Free text, omitted when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A device (`GET /api/v2/tailnet/{tailnet}/devices`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Legacy numeric id (a string).
    #[serde(default)]
    pub id: String,
    /// Preferred stable id.
    #[serde(default)]
    pub node_id: String,
    /// MagicDNS name.
    #[serde(default)]
    pub name: String,
    /// OS hostname.
    #[serde(default)]
    pub hostname: String,
    /// ACL tags.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    /// Removed by Tailscale when offline.
    #[serde(default)]
    pub is_ephemeral: bool,
    /// RFC 3339 time it joined.
    #[serde(default)]
    pub created: Option<String>,
    /// RFC 3339 time last seen.
    #[serde(default)]
    pub last_seen: Option<String>,
}

/// Whether a delete removed something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deleted {
    /// It existed and is now deleted (or revoked).
    Removed,
    /// The API did not know it (404): already gone.
    AlreadyGone,
}

/// A Tailscale API endpoint base with its HTTP agent and retry policy.
pub struct Api {
    agent: Agent,
    base: String,
    policy: Policy,
}

/// Percent-encodes one path segment or form value.
fn encode(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

fn segment(s: &str) -> String {
    let mut v = Vec::new();
    encode(s, &mut v);
    String::from_utf8(v).unwrap_or_default()
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
                if !r.access_token.starts_with("tskey-") {
                    return Err("access_token missing or not a tskey-…".into());
                }
                Ok(r)
            },
        );
        let endpoint = format!("POST {}{path}", self.base);
        match reply {
            Ok(r) => {
                let life = Duration::from_secs(r.expires_in.unwrap_or(3600).saturating_sub(30));
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
                if !c.key.starts_with("tskey-auth-") || c.info.id.is_empty() {
                    return Err("reply has no tskey-auth-… key or no id".into());
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
        let reply = self.call(
            Method::DELETE,
            &path,
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
                Err(self.key_status(s, endpoint, auth, tailnet, "auth_keys", None))
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
        let reply = self.call(
            Method::DELETE,
            &path,
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
                Err(self.key_status(s, endpoint, auth, "-", "devices:core", None))
            }
        }
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
                    "check --tailnet ({tailnet}) and --api-url; a 404 is not a credentials problem"
                ),
            },
            status => MintError::Refused {
                endpoint,
                status,
                server,
            },
        }
    }

    /// Sends one request with retries. `make_body` is called per attempt; `parse` turns a 2xx
    /// body into the result (a parse failure counts as a garbled, retryable reply).
    fn call<T>(
        &self,
        method: Method,
        path: &str,
        auth: Option<Bearer<'_>>,
        make_body: impl Fn() -> Body,
        deadline: &Deadline,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, CallError> {
        let url = format!("{}{path}", self.base);
        let endpoint = format!("{method} {url}");
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let timeout = deadline.request_timeout();
            if timeout.is_zero() {
                return Err(CallError::Mint(MintError::Deadline {
                    endpoint,
                    deadline: deadline.total(),
                    attempts: attempt - 1,
                    last: "no time left".into(),
                }));
            }
            let started = Instant::now();
            let outcome = self.once(&method, &url, auth, make_body(), timeout);
            let ms = started.elapsed().as_millis();
            let (why, retry_after) = match outcome {
                Once::Reply(status, _, body) if (200..300).contains(&status) => {
                    log::debug(format!(
                        "{endpoint} -> {status} in {ms} ms (attempt {attempt})"
                    ));
                    match parse(&body) {
                        Ok(t) => return Ok(t),
                        Err(e) => (format!("HTTP {status} with a malformed body ({e})"), None),
                    }
                }
                Once::Reply(status, retry_after, body)
                    if status == 408 || status == 429 || status >= 500 =>
                {
                    log::debug(format!(
                        "{endpoint} -> {status} in {ms} ms (attempt {attempt})"
                    ));
                    (
                        format!("HTTP {status}: {}", server_message(&body)),
                        retry_after,
                    )
                }
                Once::Reply(status, _, body) => {
                    log::debug(format!(
                        "{endpoint} -> {status} in {ms} ms (attempt {attempt})"
                    ));
                    return Err(CallError::Status(Status {
                        status,
                        server: server_message(&body),
                    }));
                }
                Once::Retry(why) => {
                    log::debug(format!(
                        "{endpoint} failed in {ms} ms (attempt {attempt}): {why}"
                    ));
                    (why, None)
                }
                Once::Tls(detail) => {
                    return Err(CallError::Mint(MintError::Tls { endpoint, detail }));
                }
            };
            if attempt >= self.policy.max_attempts {
                return Err(CallError::Mint(MintError::Temporary {
                    endpoint,
                    attempts: attempt,
                    last: why,
                }));
            }
            let wait = retry_after.unwrap_or_else(|| self.policy.backoff(attempt));
            if !deadline.allows_wait(wait) {
                let last = match retry_after {
                    Some(w) => format!("{why} (server asked to retry after {}s)", w.as_secs()),
                    None => why,
                };
                return Err(CallError::Mint(MintError::Deadline {
                    endpoint,
                    deadline: deadline.total(),
                    attempts: attempt,
                    last,
                }));
            }
            log::warn(format!(
                "{endpoint}: {why}; retrying in {} ms (attempt {} of {})",
                wait.as_millis(),
                attempt + 1,
                self.policy.max_attempts
            ));
            std::thread::sleep(wait);
        }
    }

    /// One attempt.
    fn once(
        &self,
        method: &Method,
        url: &str,
        auth: Option<Bearer<'_>>,
        body: Body,
        timeout: Duration,
    ) -> Once {
        let mut b = http::Request::builder().method(method.clone()).uri(url);
        if let Some(a) = auth {
            let value = Zeroizing::new(format!("Bearer {}", a.secret()));
            b = b.header("Authorization", value.as_str());
        }
        let result = match body {
            Body::Empty => b.body(()).map(|r| {
                r.with_agent(&self.agent)
                    .configure()
                    .timeout_global(Some(timeout))
                    .run()
            }),
            Body::Form(f) => b
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(f.as_slice())
                .map(|r| {
                    r.with_agent(&self.agent)
                        .configure()
                        .timeout_global(Some(timeout))
                        .run()
                }),
            Body::Json(j) => b
                .header("Content-Type", "application/json")
                .body(j.as_slice())
                .map(|r| {
                    r.with_agent(&self.agent)
                        .configure()
                        .timeout_global(Some(timeout))
                        .run()
                }),
        };
        let mut resp = match result {
            Err(e) => return Once::Retry(format!("cannot build the request: {e}")),
            Ok(Err(e)) => return classify(e),
            Ok(Ok(r)) => r,
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        match resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
        {
            Ok(body) => Once::Reply(status, retry_after, Zeroizing::new(body)),
            Err(e) => Once::Retry(format!(
                "HTTP {status} but reading the body failed: {}",
                describe(&e)
            )),
        }
    }
}

/// The result of one attempt.
enum Once {
    Reply(u16, Option<Duration>, Zeroizing<Vec<u8>>),
    Retry(String),
    Tls(String),
}

fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        // rustls reports handshake and certificate failures as InvalidData I/O errors.
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            format!("TLS or protocol error ({io}); check the system clock, --api-url and any proxy")
        }
        ureq::Error::Io(io) => format!("connection error ({})", io.kind()),
        other => other.to_string(),
    }
}

fn classify(e: ureq::Error) -> Once {
    match e {
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            Once::Tls(e.to_string())
        }
        other => Once::Retry(describe(&other)),
    }
}
