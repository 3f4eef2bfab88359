//! Workload identity federation material: a federated identity's client id, where its OIDC ID
//! token comes from, and the ID token itself (a JWT), checked strictly.
//!
//! Tailscale exchanges an ID token for an API access token, so a host holds no long-lived
//! secret: only the client id (not secret) and a way to get a fresh ID token (a file a kubelet
//! or another agent refreshes, a value in the environment, GitHub Actions or the GCP metadata
//! server). An ID token must be a compact JWT — three base64url parts, nothing else — and its
//! payload a JSON object; its `exp` and `iat` are read so an expired token is refused before
//! any request. The token itself is never shown: messages name its origin and its claims' times.

use std::path::PathBuf;

use base64::Engine;
use zeroize::Zeroizing;

use super::MaterialError;
use super::grammar;

/// Largest ID token accepted (real ones are 1–2 KiB).
pub const MAX_ID_TOKEN: usize = 16 << 10;

/// Clock skew allowed when judging an ID token's `exp` (a token this much past its expiry is
/// still sent, as a server allows the same).
pub const EXPIRY_SKEW_SECS: u64 = 60;

/// A compact JWT whose shape and time claims were checked. `Debug` shows the times only.
#[derive(Clone)]
pub struct IdToken {
    token: Zeroizing<String>,
    /// `exp` (seconds since the epoch), if the token has one.
    pub exp: Option<u64>,
    /// `iat` (seconds since the epoch), if the token has one.
    pub iat: Option<u64>,
}

impl std::fmt::Debug for IdToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdToken")
            .field("token", &"[REDACTED]")
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .finish()
    }
}

impl IdToken {
    /// Checks `text` (surrounding whitespace ignored) as a compact JWT with a JSON-object
    /// payload; `origin` names where it came from in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, MaterialError> {
        let bad = |problem: String| MaterialError::BadIdToken {
            origin: origin.into(),
            problem,
        };
        let t = text.trim_matches([' ', '\t', '\r', '\n']);
        let payload = grammar::check_jwt(t, MAX_ID_TOKEN).map_err(bad)?;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| bad("has a payload that is not base64url".into()))?;
        let claims: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&raw)
            .map_err(|_| bad("has a payload that is not a JSON object".into()))?;
        let time = |name: &str| -> Result<Option<u64>, MaterialError> {
            match claims.get(name) {
                None => Ok(None),
                Some(v) => v
                    .as_u64()
                    .or_else(|| v.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                    .map(Some)
                    .ok_or_else(|| bad(format!("has a `{name}` claim that is not a time"))),
            }
        };
        Ok(IdToken {
            exp: time("exp")?,
            iat: time("iat")?,
            token: Zeroizing::new(t.to_owned()),
        })
    }

    /// The token, to send (never to log).
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// `Err(exp)` when the token expired more than [`EXPIRY_SKEW_SECS`] before `now` (seconds
    /// since the epoch).
    pub fn check_fresh(&self, now: u64) -> Result<(), u64> {
        match self.exp {
            Some(exp) if exp.saturating_add(EXPIRY_SKEW_SECS) < now => Err(exp),
            _ => Ok(()),
        }
    }
}

/// Where a federated identity's ID token comes from.
#[derive(Clone, Debug)]
pub enum IdTokenFrom {
    /// A value given directly (`TS_ID_TOKEN=<jwt>`).
    Value(IdToken),
    /// A file, read at every run (`--id-token-file`, `TS_ID_TOKEN=file:PATH`, a Kubernetes
    /// projected service-account token).
    File(PathBuf),
    /// GitHub Actions' OIDC endpoint (`ACTIONS_ID_TOKEN_REQUEST_URL` with its bearer token).
    GitHub {
        url: String,
        request_token: Zeroizing<String>,
    },
    /// The GCP metadata server's identity endpoint at this base URL.
    Gcp { base: String },
}

impl IdTokenFrom {
    /// Where it comes from, for logs and errors (never the token).
    pub fn describe(&self) -> String {
        match self {
            IdTokenFrom::Value(_) => "an ID token value".into(),
            IdTokenFrom::File(p) => format!("the ID token file {}", p.display()),
            IdTokenFrom::GitHub { .. } => "GitHub Actions' OIDC token endpoint".into(),
            IdTokenFrom::Gcp { base } => format!("the GCP metadata server at {base}"),
        }
    }
}

/// A federated identity: exchange an ID token for an access token, then mint (tags required).
#[derive(Clone, Debug)]
pub struct Federated {
    /// The federated identity's client id, without any `?…` attributes.
    pub client_id: String,
    /// `?ephemeral=` of the client id, with the tailscale CLI's defaults applied.
    pub ephemeral: Option<bool>,
    /// `?preauthorized=` of the client id, with the tailscale CLI's defaults applied.
    pub preauthorized: Option<bool>,
    /// The audience to ask a token source for.
    pub audience: Option<String>,
    /// Where the ID token comes from; `None` when a source named the client id only (the
    /// command's flags or environment then say).
    pub id_token: Option<IdTokenFrom>,
}

/// Parses `ID[?ephemeral=…&preauthorized=…]` as the tailscale CLI does: with no `?`, keys are
/// ephemeral and not preauthorized; with a `?`, an attribute not given is false.
pub fn parse_client_id(
    origin: &str,
    value: &str,
) -> Result<(String, Option<bool>, Option<bool>), MaterialError> {
    let v = value.trim();
    let (id, query) = match v.split_once('?') {
        Some((i, q)) => (i, Some(q)),
        None => (v, None),
    };
    super::check_plain(origin, "the federated client id", id)?;
    if id.contains(['&', '=', '/', '#']) {
        return Err(MaterialError::BadValue {
            origin: origin.into(),
            what: "the federated client id".into(),
            problem: "holds a character a client id does not (& = / #)".into(),
        });
    }
    let Some(q) = query else {
        return Ok((id.to_owned(), Some(true), Some(false)));
    };
    let bad = |problem: String| MaterialError::BadValue {
        origin: origin.into(),
        what: "the federated client id".into(),
        problem,
    };
    grammar::check_query(q).map_err(bad)?;
    let (mut eph, mut pre) = (false, false);
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        if k != "ephemeral" && k != "preauthorized" {
            return Err(bad(format!(
                "unknown attribute {:?} (known: ephemeral, preauthorized)",
                k.chars().take(32).collect::<String>()
            )));
        }
        let b = if val.is_empty() {
            false
        } else {
            super::parse_bool(val).ok_or_else(|| {
                bad(format!(
                    "invalid boolean for attribute {:?} (use true or false)",
                    k.chars().take(32).collect::<String>()
                ))
            })?
        };
        if k == "ephemeral" {
            eph = b;
        } else {
            pre = b;
        }
    }
    Ok((id.to_owned(), Some(eph), Some(pre)))
}

/// `TS_ID_TOKEN`'s value: `file:PATH` (read at every run) or the token itself.
pub fn id_token_ref(origin: &str, value: &str) -> Result<IdTokenFrom, MaterialError> {
    let v = value.trim_matches([' ', '\t', '\r', '\n']);
    match v.strip_prefix("file:") {
        Some(path) => {
            if path.is_empty() || path.chars().any(char::is_control) {
                return Err(MaterialError::BadValue {
                    origin: origin.into(),
                    what: "the ID token's file:PATH".into(),
                    problem: "names no usable path".into(),
                });
            }
            Ok(IdTokenFrom::File(PathBuf::from(path)))
        }
        None => IdToken::parse(origin, v).map(IdTokenFrom::Value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.c2ln",
            b.encode(br#"{"alg":"EdDSA"}"#),
            b.encode(payload.as_bytes())
        )
    }

    #[test]
    fn id_tokens_are_strict_compact_jwts_and_their_times_are_read() {
        let t = IdToken::parse("f", &format!("  {}\n", jwt(r#"{"exp":1000,"iat":900}"#))).unwrap();
        assert_eq!((t.exp, t.iat), (Some(1000), Some(900)));
        assert_eq!(t.check_fresh(1000 + EXPIRY_SKEW_SECS), Ok(()));
        assert_eq!(t.check_fresh(1001 + EXPIRY_SKEW_SECS), Err(1000));
        assert!(!format!("{t:?}").contains(&jwt(r#"{"exp":1000,"iat":900}"#)));
        let no_exp = IdToken::parse("f", &jwt("{}")).unwrap();
        assert_eq!(no_exp.check_fresh(u64::MAX), Ok(()));
        for (bad, problem) in [
            (
                "a.b",
                "has 2 dot-separated parts, not 3 (header.payload.signature)",
            ),
            ("a..c", "has an empty payload"),
            (
                "a.b=.c",
                "has a character other than base64url in its payload (at byte 2 of the part)",
            ),
            ("a.b c.d", "contains a blank at byte 4"),
            ("a.b.c\u{1b}", "contains an escape sequence at byte 6"),
            (
                "e30.bm90anNvbg.c2ln",
                "has a payload that is not a JSON object",
            ),
        ] {
            let e = IdToken::parse("f", bad).unwrap_err().to_string();
            assert_eq!(e, format!("f: the ID token {problem}"), "{bad:?}");
        }
        let e = IdToken::parse("f", &jwt(r#"{"exp":"soon"}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f: the ID token has a `exp` claim that is not a time"
        );
        assert!(IdToken::parse("f", &"a".repeat(MAX_ID_TOKEN + 1)).is_err());
    }

    #[test]
    fn client_id_attributes_follow_the_tailscale_cli() {
        let p = |v| parse_client_id("o", v).map_err(|e| e.to_string());
        assert_eq!(p("Tz1-k2"), Ok(("Tz1-k2".into(), Some(true), Some(false))));
        assert_eq!(
            p("Tz1?preauthorized=true"),
            Ok(("Tz1".into(), Some(false), Some(true)))
        );
        assert_eq!(
            p("Tz1?ephemeral=1"),
            Ok(("Tz1".into(), Some(true), Some(false)))
        );
        assert_eq!(p("Tz1?"), Ok(("Tz1".into(), Some(false), Some(false))));
        assert!(
            p("Tz1?baseURL=x")
                .unwrap_err()
                .contains("unknown attribute \"baseURL\"")
        );
        assert!(
            p("Tz1?ephemeral=yes")
                .unwrap_err()
                .contains("invalid boolean")
        );
        assert!(p("Tz 1").is_err());
        assert!(p("a/b").is_err());
    }

    #[test]
    fn ts_id_token_is_a_token_or_a_file() {
        assert!(matches!(
            id_token_ref("o", "file:/run/t").unwrap(),
            IdTokenFrom::File(p) if p == std::path::Path::new("/run/t")
        ));
        assert!(matches!(
            id_token_ref("o", &jwt("{}")).unwrap(),
            IdTokenFrom::Value(_)
        ));
        assert!(id_token_ref("o", "file:").is_err());
        assert!(id_token_ref("o", "not-a-jwt").is_err());
    }
}
