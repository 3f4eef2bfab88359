//! One HTTP exchange with the API and the retry loop around it.
//!
//! `Api::call` sends a request with the policy of [`super::retry`]. Connect errors, timeouts,
//! TLS failures, 408, 429 and 5xx are retried with backoff (or after `Retry-After`). A 2xx body
//! that does not parse is retried too. Any other status is handed back to the endpoint, which
//! maps it to an actionable [`MintError`]. Each attempt's timeout is the request timeout or
//! whatever is left of the deadline, if that is less. A wait that would end past the deadline
//! is not started.

use std::time::{Duration, Instant, SystemTime};

use ureq::RequestExt;
use ureq::http::{self, Method};
use zeroize::Zeroizing;

use super::api::{Api, Bearer};
use super::error::{MintError, redact, server_message};
use super::retry::{Deadline, parse_retry_after};
use crate::log;

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
    Mint(MintError),
}

/// The body of a request.
pub(super) enum Body {
    Empty,
    Form(Zeroizing<Vec<u8>>),
    Json(Vec<u8>),
}

/// Percent-encodes one path segment or form value.
pub(super) fn encode(s: &str, out: &mut Vec<u8>) {
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

pub(super) fn segment(s: &str) -> String {
    let mut v = Vec::new();
    encode(s, &mut v);
    String::from_utf8(v).unwrap_or_default()
}

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
                Once::Retry(why) => {
                    log::debug(format!(
                        "{endpoint} failed in {ms} ms (attempt {attempt}): {why}"
                    ));
                    (why, None)
                }
                Once::Tls(detail) => {
                    return Err(CallError::Mint(MintError::Tls { endpoint, detail }));
                }
                Once::Unsendable(detail) => {
                    return Err(CallError::Mint(MintError::Unsendable { endpoint, detail }));
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
        other => Once::Retry(describe(&other)),
    }
}
