//! Which API base URLs credentials may be sent to.
//!
//! Secrets travel only over https. The one exception is plain http to a loopback host
//! (`localhost`, 127.0.0.0/8, `[::1]`), for a local fake or a port-forward during tests; the
//! traffic then never leaves the machine. A URL with a user:password part, a query or a
//! fragment is refused too: the base is a scheme, a host, an optional port and an optional path.
//! Requests to a loopback base never go through an `HTTPS_PROXY` / `HTTP_PROXY` from the
//! environment; others honour it (and `NO_PROXY`).

use std::net::{IpAddr, Ipv6Addr};

use super::error::MintError;

/// Whether `url` (already [`check`]ed) points at a loopback host.
pub fn is_loopback_url(url: &str) -> bool {
    host_of(url).is_some_and(is_loopback)
}

fn host_of(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    Some(host).filter(|h| !h.is_empty())
}

/// Checks `url` and returns it without a trailing `/`.
pub fn check(url: &str) -> Result<String, MintError> {
    let bad = |problem| MintError::BadUrl {
        url: url.to_owned(),
        problem,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("not a URL (expected https://host[:port])"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if let Some((_, host)) = authority.rsplit_once('@') {
        // Never echo the user:password part.
        return Err(MintError::BadUrl {
            url: format!("{scheme}://[credentials hidden]@{host}"),
            problem: "credentials in the URL are not accepted",
        });
    }
    if rest.contains('?') || rest.contains('#') {
        return Err(bad("a base URL has no query or fragment"));
    }
    let host = host_of(url).ok_or_else(|| bad("no host"))?;
    match scheme.to_ascii_lowercase().as_str() {
        "https" => {}
        "http" if is_loopback(host) => {}
        _ => {
            return Err(MintError::InsecureUrl {
                url: url.to_owned(),
            });
        }
    }
    Ok(url.trim_end_matches('/').to_owned())
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for (u, want) in [
            ("https://api.tailscale.com", "https://api.tailscale.com"),
            ("https://api.tailscale.com/", "https://api.tailscale.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://127.3.4.5", "http://127.3.4.5"),
            ("http://localhost:1/", "http://localhost:1"),
            ("http://[::1]:99", "http://[::1]:99"),
            (
                "https://[2001:db8::1]:443/prefix",
                "https://[2001:db8::1]:443/prefix",
            ),
        ] {
            assert_eq!(check(u).unwrap(), want, "{u}");
            assert_eq!(is_loopback_url(u), !u.starts_with("https"), "{u}");
        }
    }

    #[test]
    fn refused() {
        for u in [
            "http://api.tailscale.com",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.evil.com",
            "ftp://127.0.0.1",
        ] {
            assert!(
                matches!(check(u), Err(MintError::InsecureUrl { .. })),
                "{u}"
            );
        }
        for u in [
            "api.tailscale.com",
            "https://",
            "https://u:p@host",
            "https://h/?a=1",
        ] {
            assert!(matches!(check(u), Err(MintError::BadUrl { .. })), "{u}");
        }
    }
}
