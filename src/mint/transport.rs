//! The HTTP client of the API: one agent per command, one exchange, and the retry loop around it.
//!
//! `Api::call` sends a request with the policy of [`super::retry`]. Connect errors, timeouts,
//! TLS failures, 408, 429 and 5xx are retried with backoff (or after `Retry-After`, with jitter on top). A 2xx body
//! that does not parse is retried too. Any other status is handed back to the endpoint, which
//! maps it to an actionable [`MintError`]. Each attempt's timeout is the request timeout or
//! whatever is left of the deadline, if that is less. A wait that would end past the deadline
//! is not started.
//!
//! A request that is not idempotent (`POST …/keys`) may have acted on the server although its
//! reply was lost (cut short, garbled, connection reset, 5xx). `Api::call_settling` therefore
//! runs a caller-supplied check before every retry of such an attempt, and sends nothing more
//! until that check has succeeded. The endpoints live in `api.rs`, which imports this file and
//! not the other way round.

use std::time::{Duration, Instant, SystemTime};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use ureq::http::{self, Method};
use ureq::{Agent, RequestExt};
use zeroize::Zeroizing;

use super::error::{MintError, redact, server_message};
use super::retry::{CONNECT_TIMEOUT, Deadline, Policy, parse_retry_after};
use crate::log;

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
}

/// A Tailscale API endpoint base with its HTTP agent and retry policy.
pub struct Api {
    agent: Agent,
    pub(super) base: String,
    policy: Policy,
    /// A header every request carries (the GCP metadata server's `Metadata-Flavor: Google`).
    pub(super) extra_header: Option<(&'static str, &'static str)>,
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
            extra_header: None,
        }
    }
}

/// Largest response body read (the v1 Go client caps at 10 MB; ours are a few KiB).
const BODY_LIMIT: u64 = 1 << 20;

/// What a non-2xx, non-retryable reply said.
pub(super) struct Status {
    pub(super) status: u16,
    pub(super) server: String,
}

/// Why one call failed: a final HTTP verdict for the caller to interpret, or an error already.
pub(super) enum CallError {
    Status(Status),
    /// Includes [`MintError::Unsettled`]: gave up while the last attempt may have acted on the
    /// server and that is not settled (the endpoint fills in the marker).
    Mint(MintError),
}

/// The body of a request.
pub(super) enum Body {
    Empty,
    Form(Zeroizing<Vec<u8>>),
    Json(Vec<u8>),
}

/// Everything but RFC 3986's unreserved characters (letters, digits, `-._~`) is escaped.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes one form value into `out` (a secret's buffer: no copy is made elsewhere).
pub(super) fn encode(s: &str, out: &mut Vec<u8>) {
    for chunk in utf8_percent_encode(s, ESCAPED) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// One percent-encoded path segment.
pub(super) fn segment(s: &str) -> String {
    utf8_percent_encode(s, ESCAPED).to_string()
}

/// Run before retrying an attempt that may have acted on the server: `Ok` once whatever it did
/// is accounted for, `Err(why)` when that could not be found out (then nothing is sent).
pub(super) type Settle<'a> = &'a mut dyn FnMut() -> Result<(), String>;

impl Api {
    /// Sends one request with retries. `make_body` is called per attempt; `parse` turns a 2xx
    /// body into the result (a parse failure counts as a garbled, retryable reply).
    pub(super) fn call<T>(
        &self,
        method: Method,
        path: &str,
        auth: Option<Bearer<'_>>,
        make_body: impl Fn() -> Body,
        deadline: &Deadline,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, CallError> {
        self.call_settling(method, path, auth, make_body, deadline, parse, None)
            .map(|(t, _)| t)
    }

    /// [`Self::call`] for a request that is not idempotent: before a retry that follows an
    /// attempt whose reply was lost after sending, `settle` must succeed. Returns the result and
    /// whether any attempt was left unsettled on the way (the caller may check again).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn call_settling<T>(
        &self,
        method: Method,
        path: &str,
        auth: Option<Bearer<'_>>,
        make_body: impl Fn() -> Body,
        deadline: &Deadline,
        parse: impl Fn(&[u8]) -> Result<T, String>,
        mut settle: Option<Settle<'_>>,
    ) -> Result<(T, bool), CallError> {
        let url = format!("{}{path}", self.base);
        let endpoint = format!("{method} {url}");
        let mut attempt = 0u32;
        let mut unsettled = false;
        let mut ever_unsettled = false;
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
            let settled = match (&mut settle, unsettled) {
                (Some(check), true) => check(),
                _ => Ok(()),
            };
            let outcome = match settled {
                Ok(()) => {
                    unsettled = false;
                    self.once(&method, &url, auth, make_body(), timeout)
                }
                Err(why) => Once::Retry {
                    why: format!("cannot tell what the lost reply created: {why}"),
                    sent: false,
                },
            };
            let ms = started.elapsed().as_millis();
            let (why, retry_after) = match outcome {
                Once::Reply(status, _, body) if (200..300).contains(&status) => {
                    log::debug(format!(
                        "{endpoint} -> {status} in {ms} ms (attempt {attempt})"
                    ));
                    unsettled = settle.is_some();
                    match parse(&body) {
                        Ok(t) => return Ok((t, ever_unsettled)),
                        // The parser quotes offending values: server text, so redacted.
                        Err(e) => (
                            format!("HTTP {status} with a malformed body ({})", redact(&e)),
                            None,
                        ),
                    }
                }
                Once::Reply(status, retry_after, body)
                    if status == 408 || status == 429 || status >= 500 =>
                {
                    log::debug(format!(
                        "{endpoint} -> {status} in {ms} ms (attempt {attempt})"
                    ));
                    // A 429 was refused before acting; a 5xx or 408 may have acted.
                    unsettled = settle.is_some() && status != 429;
                    (
                        format!("HTTP {status}: {}", server_message(&body)),
                        retry_after,
                    )
                }
                Once::Reply(status, _, _) if (300..400).contains(&status) => {
                    return Err(CallError::Mint(MintError::Redirect { endpoint, status }));
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
                Once::Retry { why, sent } => {
                    log::debug(format!(
                        "{endpoint} failed in {ms} ms (attempt {attempt}): {why}"
                    ));
                    unsettled |= settle.is_some() && sent;
                    (why, None)
                }
                Once::Tls(detail) => {
                    return Err(CallError::Mint(MintError::Tls { endpoint, detail }));
                }
                Once::Unsendable(detail) => {
                    return Err(CallError::Mint(MintError::Unsendable { endpoint, detail }));
                }
            };
            ever_unsettled |= unsettled;
            let wait = self.policy.wait(attempt, retry_after, deadline);
            let giving_up = attempt >= self.policy.max_attempts || !deadline.allows_wait(wait);
            if giving_up && unsettled {
                // One last check before giving up, so that nothing is left behind.
                let last_check = settle.as_mut().map(|check| check());
                if !matches!(last_check, Some(Ok(()))) {
                    return Err(CallError::Mint(MintError::Unsettled {
                        endpoint,
                        last: why,
                        marker: String::new(),
                    }));
                }
            }
            if attempt >= self.policy.max_attempts {
                return Err(CallError::Mint(MintError::Temporary {
                    endpoint,
                    attempts: attempt,
                    last: why,
                }));
            }
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
        if let Some((name, value)) = self.extra_header {
            b = b.header(name, value);
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
            Err(e) => return Once::Unsendable(e.to_string()),
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
            Err(e) => Once::Retry {
                why: format!(
                    "HTTP {status} but reading the body failed: {}",
                    describe(&e)
                ),
                sent: true,
            },
        }
    }
}

/// The result of one attempt.
enum Once {
    Reply(u16, Option<Duration>, Zeroizing<Vec<u8>>),
    /// A failure worth retrying; `sent` unless the request surely never reached the server.
    Retry {
        why: String,
        sent: bool,
    },
    Tls(String),
    Unsendable(String),
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
        ureq::Error::BadUri(_) | ureq::Error::Http(_) | ureq::Error::RequireHttpsOnly(_) => {
            Once::Unsendable(e.to_string())
        }
        other => {
            let sent = !matches!(
                other,
                ureq::Error::HostNotFound
                    | ureq::Error::ConnectionFailed
                    | ureq::Error::Timeout(ureq::Timeout::Resolve | ureq::Timeout::Connect)
            ) && !matches!(&other, ureq::Error::Io(io)
                if io.kind() == std::io::ErrorKind::ConnectionRefused);
            Once::Retry {
                why: describe(&other),
                sent,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(segment("example.com"), "example.com");
        assert_eq!(segment("a b/c?d%e"), "a%20b%2Fc%3Fd%25e");
        assert_eq!(segment("kAbC-1_2~x"), "kAbC-1_2~x");
        assert_eq!(segment("ü"), "%C3%BC");
        let mut v = Vec::new();
        encode("tskey-client-k1-a+b=c&d", &mut v);
        assert_eq!(v, b"tskey-client-k1-a%2Bb%3Dc%26d");
    }
}
