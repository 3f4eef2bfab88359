//! Getting a federated identity's OIDC ID token: from a file or value (through
//! [`crate::credentials`]), from GitHub Actions' OIDC endpoint, or from the GCP metadata server.
//!
//! GitHub: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
//! `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` → `{"value": "<jwt>"}`. GCP:
//! `GET http://$GCE_METADATA_HOST/computeMetadata/v1/instance/service-accounts/default/identity?audience=AUD&format=full`
//! with `Metadata-Flavor: Google` → the JWT as the body. The GitHub URL must be https (or http
//! to loopback, for tests); the metadata server is reached over plain http as Google's own
//! clients do, but only at a loopback or link-local address or `metadata.google.internal`.
//! Tokens are held in zeroizing buffers and never logged; retries and the deadline are the API's.

use std::net::IpAddr;

use serde::Deserialize;
use ureq::http::Method;
use zeroize::Zeroizing;

use super::error::MintError;
use super::retry::{Deadline, Policy};
use super::transport::{Api, Bearer, Body, CallError, encode};
use crate::credentials::{self, CredentialsError};
use crate::material::{IdToken, IdTokenFrom};

/// The metadata server's identity path.
const GCP_IDENTITY: &str = "/computeMetadata/v1/instance/service-accounts/default/identity";

/// Splits `https://host[:port]/path?query` into the base and the rest.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let cut = rest.find('/').map_or(url.len(), |i| scheme.len() + 3 + i);
    Some((&url[..cut], &url[cut..]))
}

/// Whether the metadata host may be reached over plain http.
fn metadata_host_ok(base: &str) -> bool {
    let Some((_, host)) = base.split_once("://") else {
        return false;
    };
    let host = host.split('/').next().unwrap_or("");
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    if name.eq_ignore_ascii_case("metadata.google.internal")
        || name.eq_ignore_ascii_case("localhost")
    {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback() || a.is_link_local(),
        Ok(IpAddr::V6(a)) => a.is_loopback(),
        Err(_) => false,
    }
}

/// The token `from` names (fetched or read now), checked for shape and expiry.
pub fn obtain(
    from: &IdTokenFrom,
    audience: Option<&str>,
    deadline: &Deadline,
) -> Result<IdToken, MintError> {
    let token = match from {
        IdTokenFrom::Value(t) => t.clone(),
        IdTokenFrom::File(p) => credentials::read_id_token(p)?,
        IdTokenFrom::GitHub { url, request_token } => {
            github(url, request_token, audience, deadline)?
        }
        IdTokenFrom::Gcp { base } => gcp(base, audience, deadline)?,
    };
    credentials::check_fresh(&token, from, std::time::SystemTime::now())?;
    Ok(token)
}

fn source_error(endpoint: String, what: &'static str, e: CallError) -> MintError {
    match e {
        CallError::Mint(m) => m,
        CallError::Status(s) => MintError::TokenSource {
            endpoint,
            what,
            status: s.status,
            server: s.server,
        },
    }
}

fn github(
    url: &str,
    request_token: &str,
    audience: Option<&str>,
    deadline: &Deadline,
) -> Result<IdToken, MintError> {
    let bad = |problem| MintError::TokenSourceUrl {
        url: "ACTIONS_ID_TOKEN_REQUEST_URL".into(),
        problem,
    };
    let (base, rest) = split_url(url).ok_or_else(|| bad("not a URL"))?;
    let base = super::url::check(base).map_err(|_| {
        bad("must be https (or http to a loopback address); refusing to send the request token")
    })?;
    let mut path = if rest.is_empty() {
        "/".to_owned()
    } else {
        rest.to_owned()
    };
    if let Some(a) = audience {
        let mut enc = Vec::new();
        encode(a, &mut enc);
        path.push(if path.contains('?') { '&' } else { '?' });
        path.push_str("audience=");
        path.push_str(&String::from_utf8_lossy(&enc));
    }
    #[derive(Deserialize)]
    struct Reply {
        value: Zeroizing<String>,
    }
    let api = Api::new(&base, Policy::default());
    let endpoint = format!("GET {base}{}", path.split('?').next().unwrap_or(""));
    let reply = api
        .call(
            Method::GET,
            &path,
            Some(Bearer::Token(request_token)),
            || Body::Empty,
            deadline,
            |b| serde_json::from_slice::<Reply>(b).map_err(|e| e.to_string()),
        )
        .map_err(|e| {
            source_error(
                endpoint,
                "GitHub Actions refused the ID token request (does the job have `permissions: \
id-token: write`?)",
                e,
            )
        })?;
    Ok(
        IdToken::parse("GitHub Actions' token endpoint", &reply.value)
            .map_err(CredentialsError::from)?,
    )
}

fn gcp(base: &str, audience: Option<&str>, deadline: &Deadline) -> Result<IdToken, MintError> {
    let Some(audience) = audience else {
        return Err(CredentialsError::NoAudience { source_name: "gcp" }.into());
    };
    if !metadata_host_ok(base) || base.contains(['?', '#', '@']) {
        return Err(MintError::TokenSourceUrl {
            url: base.to_owned(),
            problem: "the GCP metadata server is reached over plain http only at a loopback or \
link-local address or metadata.google.internal; check GCE_METADATA_HOST",
        });
    }
    let mut enc = Vec::new();
    encode(audience, &mut enc);
    let path = format!(
        "{GCP_IDENTITY}?audience={}&format=full",
        String::from_utf8_lossy(&enc)
    );
    let mut api = Api::new(base, Policy::default());
    api.extra_header = Some(("Metadata-Flavor", "Google"));
    let endpoint = format!("GET {base}{GCP_IDENTITY}");
    let body = api
        .call(
            Method::GET,
            &path,
            None,
            || Body::Empty,
            deadline,
            |b| {
                std::str::from_utf8(b)
                    .map(|s| Zeroizing::new(s.to_owned()))
                    .map_err(|_| "not UTF-8".to_owned())
            },
        )
        .map_err(|e| {
            source_error(
                endpoint,
                "the GCP metadata server refused the identity token request (is a service \
account attached, and the audience valid?)",
                e,
            )
        })?;
    Ok(IdToken::parse("the GCP metadata server", &body).map_err(CredentialsError::from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_and_metadata_hosts() {
        assert_eq!(
            split_url("https://x.example/a/b?api-version=2.0"),
            Some(("https://x.example", "/a/b?api-version=2.0"))
        );
        assert_eq!(
            split_url("http://127.0.0.1:9"),
            Some(("http://127.0.0.1:9", ""))
        );
        for ok in [
            "http://169.254.169.254",
            "http://metadata.google.internal",
            "http://127.0.0.1:8080",
        ] {
            assert!(metadata_host_ok(ok), "{ok}");
        }
        for bad in [
            "http://evil.example",
            "http://10.0.0.1",
            "http://metadata.google.internal.evil",
        ] {
            assert!(!metadata_host_ok(bad), "{bad}");
        }
    }
}
