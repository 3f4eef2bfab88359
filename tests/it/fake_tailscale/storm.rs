//! A fleet's boot storm at the fake: the first burst of requests is refused with 429 and a
//! `Retry-After`, then a fraction of the following ones get 503 — as an API does when 200 hosts
//! boot at once. And, to count per host, which OAuth client made a request.
//!
//! The storm counts requests in arrival order under the fake's one lock, so with many
//! concurrent connections the numbers it hands out are still exact: `burst` 429s, then every
//! `every`-th request a 503 until `unavailable` of them have been given.

use base64::Engine;

use super::api::parse_form;
use super::{FakeTailscale, Fault, Recorded, State, TOKEN};

/// The storm's shape.
#[derive(Clone, Debug)]
pub struct Storm {
    /// The first this many requests get 429.
    pub burst: u32,
    /// The 429s' `Retry-After` value.
    pub retry_after: String,
    /// After the burst, every this many-th request gets 503 (no `Retry-After`)…
    pub every: u32,
    /// …until this many 503s have been given.
    pub unavailable: u32,
}

/// A storm in progress.
#[derive(Debug)]
pub(super) struct Raging {
    storm: Storm,
    seen: u32,
    given_503: u32,
}

impl State {
    /// The fault the storm gives the next request, if any (counts it).
    pub(super) fn storm_fault(&mut self) -> Option<Fault> {
        let r = self.storm.as_mut()?;
        let n = r.seen;
        r.seen += 1;
        if n < r.storm.burst {
            return Some(Fault::RateLimited(r.storm.retry_after.clone()));
        }
        let after = n - r.storm.burst + 1;
        if r.given_503 < r.storm.unavailable && after % r.storm.every.max(1) == 0 {
            r.given_503 += 1;
            return Some(Fault::Status(503));
        }
        None
    }
}

impl FakeTailscale {
    /// From now on, requests meet `storm` (after any injected fault, which goes first).
    pub fn storm(&self, storm: Storm) {
        self.lock().storm = Some(Raging {
            storm,
            seen: 0,
            given_503: 0,
        });
    }

    /// The id of the OAuth client that made `r`: by the secret of a token request (form or
    /// Basic auth), by the access token of an API call. `None` for anything else.
    pub fn client_of(&self, r: &Recorded) -> Option<String> {
        let s = self.lock();
        if r.path == TOKEN {
            let form = parse_form(&r.body);
            let mut secret = form
                .iter()
                .find(|(k, _)| k == "client_secret")
                .map(|(_, v)| v.clone());
            if secret.is_none() {
                let b = r.header("authorization")?.strip_prefix("Basic ")?;
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()?;
                let raw = String::from_utf8_lossy(&raw).into_owned();
                secret = raw.split_once(':').map(|(_, v)| v.to_owned());
            }
            let secret = secret?;
            return s
                .clients
                .iter()
                .find(|c| c.secret == secret)
                .map(|c| c.id.clone());
        }
        let bearer = r.header("authorization")?.strip_prefix("Bearer ")?.trim();
        s.tokens
            .iter()
            .find(|t| t.token == bearer)
            .map(|t| t.client.clone())
    }
}
