//! Material: what a decrypted secret *is*, decided by its content, never by a file name.
//!
//! A source yields either one string (`tskey-…`) or a flat mapping (YAML/JSON keys, env-file
//! lines). This stage turns it into one of three things the rest of the flow understands: a
//! ready auth key (written as is), an OAuth client (mint with client credentials), or an API key
//! (mint with Bearer). The tailscale CLI's `tskey-client-…?ephemeral=…&preauthorized=…` form is
//! honoured for those two flags. When nothing usable is found the error names the *types* of the
//! values and the key names that were present, never a value (exit 65).
//!
//! Strict by design (issue 13): a key must have the Tailscale grammar ([`grammar`]), a client id
//! or tailnet may hold no control character, quote or blank, a mapping may not give a key twice,
//! and env files are read as [`env`] describes — so whatever is written to `--out` is one
//! well-formed key.

mod env;
pub mod federated;
pub mod grammar;

use zeroize::Zeroizing;

pub use env::{is_var_name, parse_env};
pub use federated::{Federated, IdToken, IdTokenFrom};
pub use grammar::{KeyKind, is_api_key, is_auth_key};

/// Largest env file accepted as credentials (tailscale-manager's files are a few lines).
pub const ENV_FILE_LIMIT: u64 = 64 << 10;

/// What a secret turned out to be. `Debug` shows the kind and public parts, never a secret.
pub enum Material {
    /// A ready `tskey-auth-…` key.
    AuthKey(Zeroizing<String>),
    /// An OAuth client secret, with what came with it.
    OAuth(OAuthClient),
    /// A personal API key (`tskey-api-…`) and the tailnet it acts on.
    ApiKey(ApiKey),
    /// A federated identity (workload identity federation): no secret, an ID token instead.
    Federated(Federated),
}

impl Material {
    /// A name for logs and errors ("auth key", "OAuth client", "API key").
    pub fn kind(&self) -> &'static str {
        match self {
            Material::AuthKey(_) => "auth key",
            Material::OAuth(_) => "OAuth client",
            Material::ApiKey(_) => "API key",
            Material::Federated(_) => "federated identity",
        }
    }
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Material::AuthKey(_) => f.write_str("AuthKey([REDACTED])"),
            Material::OAuth(c) => f.debug_tuple("OAuth").field(c).finish(),
            Material::ApiKey(k) => f.debug_tuple("ApiKey").field(k).finish(),
            Material::Federated(c) => f.debug_tuple("Federated").field(c).finish(),
        }
    }
}

/// An OAuth client: the secret embeds the client id; the rest is optional.
#[derive(Clone)]
pub struct OAuthClient {
    /// Client id, given or derived from the secret (`tskey-client-<id>-<secret>`).
    pub client_id: Option<String>,
    /// The `tskey-client-…` secret without any `?query`.
    pub secret: Zeroizing<String>,
    /// `?ephemeral=` from the tailscale CLI form, if present.
    pub ephemeral: Option<bool>,
    /// `?preauthorized=` from the tailscale CLI form, if present.
    pub preauthorized: Option<bool>,
    /// `?baseURL=` from the tailscale CLI form, if present.
    pub base_url: Option<String>,
}

impl std::fmt::Debug for OAuthClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthClient")
            .field("client_id", &self.client_id)
            .field("secret", &"[REDACTED]")
            .field("ephemeral", &self.ephemeral)
            .field("preauthorized", &self.preauthorized)
            .field("base_url", &self.base_url)
            .finish()
    }
}

/// A personal API key and its tailnet (`-` = the key's default tailnet).
#[derive(Clone)]
pub struct ApiKey {
    /// The `tskey-api-…` key.
    pub key: Zeroizing<String>,
    /// Tailnet name or `-`.
    pub tailnet: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"[REDACTED]")
            .field("tailnet", &self.tailnet)
            .finish()
    }
}

/// Why the material is unusable. Every variant maps to exit 65. Messages name types and key
/// names, never values.
#[derive(Debug, thiserror::Error)]
pub enum MaterialError {
    /// A single value that is not a known Tailscale secret.
    #[error(
        "{origin}: found {found}, not a Tailscale auth key (tskey-auth-…), OAuth client secret \
(tskey-client-…) or API key (tskey-api-…)"
    )]
    Unrecognised { origin: String, found: String },
    /// A mapping with no usable key.
    #[error(
        "{origin}: no Tailscale material among the keys [{keys}]; expected auth_key / TS_AUTHKEY, \
client_secret / TS_API_CLIENT_SECRET / TAILSCALE_OAUTH_CLIENT_SECRET, api_key / TAILSCALE_API_KEY, or TS_CLIENT_ID (with TS_ID_TOKEN) for a federated identity"
    )]
    NoMaterial { origin: String, keys: String },
    /// `--key` names no key of the source; `known` lists the keys there are (names only).
    #[error("{origin}: there is no key {key}; the keys are: {known} (pass one of them to --key)")]
    NoSuchKey {
        origin: String,
        key: String,
        known: String,
    },
    /// Without `--key`, more than one nested mapping holds material.
    #[error("{origin}: several mappings hold Tailscale material ({paths}); choose one with --key")]
    Ambiguous { origin: String, paths: String },
    /// A known key whose value has the wrong type; `hint` says where the value found belongs
    /// (empty when it belongs nowhere).
    #[error("{origin}: {key} holds {found}, expected {expected}{hint}")]
    WrongType {
        origin: String,
        key: String,
        found: String,
        expected: &'static str,
        hint: &'static str,
    },
    /// The `?query` of a `tskey-client-…?…` value is malformed.
    #[error("{origin}: OAuth client secret: {problem}")]
    BadQuery { origin: String, problem: String },
    /// A line of an env file is not `KEY=VALUE`.
    #[error("{origin}:{line}: not a KEY=VALUE line")]
    BadEnvLine { origin: String, line: usize },
    /// A line of an env file that a shell or systemd would read differently (duplicate
    /// variable, unbalanced quotes, escapes, control characters).
    #[error("{origin}:{line}: {problem}")]
    EnvLine {
        origin: String,
        line: usize,
        problem: String,
    },
    /// The env file is not UTF-8.
    #[error("{origin}: not UTF-8 text")]
    NotText { origin: String },
    /// A credential that does not have the Tailscale key grammar (or holds a character no
    /// credential may hold). The problem names a class and position, never the value.
    #[error(
        "{origin}: the {what} {problem}; Tailscale keys are tskey-<kind>-<id>-<secret> with \
ASCII letters and digits between the dashes"
    )]
    BadKey {
        origin: String,
        what: &'static str,
        problem: String,
    },
    /// A credential without a fixed grammar (client id, tailnet) holding what no credential may.
    #[error("{origin}: {what} {problem}")]
    BadValue {
        origin: String,
        what: String,
        problem: String,
    },
    /// An ID token that is not a compact JWT with a JSON payload (the problem names a class
    /// and position, never the value).
    #[error("{origin}: the ID token {problem}")]
    BadIdToken { origin: String, problem: String },
    /// A mapping with the same key twice (compared case-insensitively).
    #[error("{origin}: the key {key} is given more than once (keys compare case-insensitively)")]
    Duplicate { origin: String, key: String },
}

/// Describes a value by its shape only: "an empty value", "a tskey-webhook key", "a 37-byte
/// string".
fn describe(value: &str) -> String {
    let v = value.trim();
    if v.is_empty() {
        return "an empty value".into();
    }
    for p in [
        "tskey-auth-",
        "tskey-client-",
        "tskey-api-",
        "tskey-scim-",
        "tskey-webhook-",
        "tskey-",
    ] {
        if v.starts_with(p) {
            return format!("a {} key", p.trim_end_matches('-'));
        }
    }
    if v.starts_with("AGE-SECRET-KEY-") {
        return "an age identity".into();
    }
    if v.contains("ENC[") || v.starts_with("-----BEGIN") || v.starts_with("age-encryption.org") {
        return "encrypted or armored data (decrypt it first)".into();
    }
    format!(
        "a {}-byte string{}",
        v.len(),
        if v.lines().count() > 1 {
            " of several lines"
        } else {
            ""
        }
    )
}

/// Where a credential of the kind `value` has belongs, for a message about a value in the
/// wrong place: `flags` for the command line and environment, else for a mapping (a sops file's
/// keys, env-file variables). Empty when `value` is no Tailscale credential.
pub fn where_it_fits(value: &str, flags: bool) -> &'static str {
    match (KeyKind::of(value.trim()), flags) {
        (Some(KeyKind::Api), true) => {
            "; an API key goes in --api-key-file or the TAILSCALE_API_KEY variable"
        }
        (Some(KeyKind::Client), true) => {
            "; an OAuth client secret goes in --oauth-secret-file or the TS_API_CLIENT_SECRET \
(or TAILSCALE_OAUTH_CLIENT_SECRET) variable"
        }
        (Some(KeyKind::Auth), true) => {
            "; an auth key needs no minting: give its file to `tskeyctl provision --source`"
        }
        (Some(KeyKind::Api), false) => "; an API key goes under api_key or TAILSCALE_API_KEY",
        (Some(KeyKind::Client), false) => {
            "; an OAuth client secret goes under client_secret, TS_API_CLIENT_SECRET or \
TAILSCALE_OAUTH_CLIENT_SECRET"
        }
        (Some(KeyKind::Auth), false) => "; an auth key goes under auth_key or TS_AUTHKEY",
        (None, _) => "",
    }
}

/// Classifies one string (surrounding whitespace ignored). A `tskey-auth-`, `tskey-client-` or
/// `tskey-api-` value must have the key grammar ([`grammar::check_key`]), else exit 65.
pub fn classify_str(origin: &str, value: &str) -> Result<Material, MaterialError> {
    let v = value.trim_matches([' ', '\t', '\r', '\n']);
    let Some(kind) = KeyKind::of(v) else {
        return Err(MaterialError::Unrecognised {
            origin: origin.into(),
            found: describe(v),
        });
    };
    let bad = |problem: String| MaterialError::BadKey {
        origin: origin.into(),
        what: kind.name(),
        problem,
    };
    match kind {
        KeyKind::Auth => {
            grammar::check_key(kind, v).map_err(bad)?;
            Ok(Material::AuthKey(Zeroizing::new(v.to_owned())))
        }
        KeyKind::Client => {
            let secret = v.split_once('?').map_or(v, |(s, _)| s);
            grammar::check_key(kind, secret).map_err(bad)?;
            parse_client(origin, v).map(Material::OAuth)
        }
        KeyKind::Api => {
            grammar::check_key(kind, v).map_err(bad)?;
            Ok(Material::ApiKey(ApiKey {
                key: Zeroizing::new(v.to_owned()),
                tailnet: "-".into(),
            }))
        }
    }
}

/// Checks a key about to be written (pre-made or minted): the auth-key grammar, so the output
/// is one line whatever a source or an API returned.
pub fn check_auth_key(origin: &str, key: &str) -> Result<(), MaterialError> {
    grammar::check_key(KeyKind::Auth, key)
        .map(|_| ())
        .map_err(|problem| MaterialError::BadKey {
            origin: origin.into(),
            what: KeyKind::Auth.name(),
            problem,
        })
}

/// Checks a client id or tailnet given apart from the secret (no control characters, quotes
/// or blanks; not empty).
pub fn check_plain(origin: &str, what: &str, value: &str) -> Result<(), MaterialError> {
    grammar::check_plain(value).map_err(|problem| MaterialError::BadValue {
        origin: origin.into(),
        what: what.into(),
        problem,
    })
}

/// The client id embedded in `tskey-client-<id>-<secret>` (the third `-` field).
pub fn client_id_of(secret: &str) -> Option<String> {
    let parts: Vec<&str> = secret.split('-').collect();
    match parts.as_slice() {
        ["tskey", "client", id, rest @ ..] if !id.is_empty() && !rest.is_empty() => {
            Some((*id).to_owned())
        }
        _ => None,
    }
}

/// Go's `strconv.ParseBool`.
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses `tskey-client-…[?ephemeral=…&preauthorized=…&baseURL=…]` like the tailscale CLI:
/// unknown attributes and bad booleans are errors, an empty value means "not given".
fn parse_client(origin: &str, v: &str) -> Result<OAuthClient, MaterialError> {
    let (secret, query) = match v.split_once('?') {
        Some((s, q)) => (s, Some(q)),
        None => (v, None),
    };
    let mut client = OAuthClient {
        client_id: client_id_of(secret),
        secret: Zeroizing::new(secret.to_owned()),
        ephemeral: None,
        preauthorized: None,
        base_url: None,
    };
    let bad = |problem: String| MaterialError::BadQuery {
        origin: origin.into(),
        problem,
    };
    if let Some(q) = query {
        grammar::check_query(q).map_err(bad)?;
    }
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, val) = pair.split_once('=').unwrap_or((pair, ""));
        let val = percent_decode(val)
            .filter(|v| grammar::forbidden_char(v).is_none())
            .ok_or_else(|| {
                let name: String = k.chars().take(32).collect();
                bad(format!("bad escape in {name:?}"))
            })?;
        match k {
            "ephemeral" | "preauthorized" => {
                let b = if val.is_empty() {
                    None
                } else {
                    Some(parse_bool(&val).ok_or_else(|| {
                        bad(format!(
                            "invalid boolean for attribute {k:?} (use true or false)"
                        ))
                    })?)
                };
                if k == "ephemeral" {
                    client.ephemeral = b;
                } else {
                    client.preauthorized = b;
                }
            }
            "baseURL" => client.base_url = Some(val).filter(|s| !s.is_empty()),
            other => {
                let name: String = other.chars().take(32).collect();
                return Err(bad(format!(
                    "unknown attribute {name:?} (known: ephemeral, preauthorized, baseURL)"
                )));
            }
        }
    }
    Ok(client)
}

/// Decodes `%XX` and `+` in a query value; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    // The crate passes a malformed escape through as text; here it is an error.
    let malformed = s.split('%').skip(1).any(|rest| {
        !rest
            .get(..2)
            .is_some_and(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
    });
    if malformed {
        return None;
    }
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8()
        .ok()
        .map(|v| v.into_owned())
}

/// What a caller can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Anything: an auth key first, then credentials to mint one (`provision`).
    Any,
    /// Only credentials that can call the API (`mint`, `revoke`): OAuth first, then API key.
    ApiCredentials,
}

const AUTH_KEYS: &[&str] = &["auth_key", "authkey", "ts_authkey"];
const SECRET_KEYS: &[(&str, &str)] = &[
    ("client_secret", "client_id"),
    ("ts_api_client_secret", "ts_api_client_id"),
    ("tailscale_oauth_client_secret", "tailscale_oauth_client_id"),
];
const API_KEYS: &[(&str, &str)] = &[
    ("api_key", "tailnet"),
    ("tailscale_api_key", "tailscale_tailnet"),
];

/// Classifies a flat mapping of string keys to string values (a decrypted YAML/JSON mapping, or
/// env-file lines). Keys compare case-insensitively.
pub fn classify_map(
    origin: &str,
    entries: &[(String, Zeroizing<String>)],
    want: Want,
) -> Result<Material, MaterialError> {
    for (i, (k, _)) in entries.iter().enumerate() {
        if entries[..i].iter().any(|(o, _)| o.eq_ignore_ascii_case(k)) {
            return Err(MaterialError::Duplicate {
                origin: origin.into(),
                key: k.chars().take(64).collect(),
            });
        }
    }
    let get = |name: &str| {
        entries
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(k, v)| (k.as_str(), v.trim()))
    };
    let wrong = |key: &str, value: &str, expected: &'static str| MaterialError::WrongType {
        origin: origin.into(),
        key: key.into(),
        found: describe(value),
        expected,
        hint: where_it_fits(value, false),
    };
    if want == Want::Any {
        if let Some((k, v)) = AUTH_KEYS.iter().find_map(|n| get(n)) {
            // Like the tailscale CLI, an auth-key slot may also hold an OAuth client secret.
            return match classify_str(&format!("{origin}: {k}"), v) {
                Ok(m @ (Material::AuthKey(_) | Material::OAuth(_))) => Ok(m),
                Err(e @ (MaterialError::BadKey { .. } | MaterialError::BadQuery { .. })) => Err(e),
                _ => Err(wrong(k, v, "a tskey-auth-… or tskey-client-… value")),
            };
        }
    }
    for (secret_key, id_key) in SECRET_KEYS {
        if let Some((k, v)) = get(secret_key) {
            let client = match classify_str(&format!("{origin}: {k}"), v) {
                Ok(Material::OAuth(client)) => client,
                Err(e @ (MaterialError::BadKey { .. } | MaterialError::BadQuery { .. })) => {
                    return Err(e);
                }
                _ => return Err(wrong(k, v, "a tskey-client-… OAuth client secret")),
            };
            let mut client = client;
            if let Some((ik, id)) = get(id_key).filter(|(_, id)| !id.is_empty()) {
                check_plain(origin, ik, id)?;
                client.client_id = Some(id.to_owned());
            }
            return Ok(Material::OAuth(client));
        }
    }
    for (api_key, tailnet_key) in API_KEYS {
        if let Some((k, v)) = get(api_key) {
            let mut key = match classify_str(&format!("{origin}: {k}"), v) {
                Ok(Material::ApiKey(key)) => key,
                Err(e @ MaterialError::BadKey { .. }) => return Err(e),
                _ => return Err(wrong(k, v, "a tskey-api-… API key")),
            };
            if let Some((tk, t)) = get(tailnet_key).filter(|(_, t)| !t.is_empty()) {
                check_plain(origin, tk, t)?;
                key.tailnet = t.to_owned();
            }
            return Ok(Material::ApiKey(key));
        }
    }
    if let Some((k, id)) = get("ts_client_id").filter(|(_, id)| !id.is_empty()) {
        let (client_id, ephemeral, preauthorized) =
            federated::parse_client_id(&format!("{origin}: {k}"), id)?;
        let id_token = match get("ts_id_token").filter(|(_, t)| !t.is_empty()) {
            Some((tk, t)) => Some(federated::id_token_ref(&format!("{origin}: {tk}"), t)?),
            None => None,
        };
        let audience = match get("ts_audience").filter(|(_, a)| !a.is_empty()) {
            Some((ak, a)) => {
                check_plain(origin, ak, a)?;
                Some(a.to_owned())
            }
            None => None,
        };
        return Ok(Material::Federated(Federated {
            client_id,
            ephemeral,
            preauthorized,
            audience,
            id_token,
        }));
    }
    let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
    Err(MaterialError::NoMaterial {
        origin: origin.into(),
        keys: crate::log::bounded::list(&keys, ", "),
    })
}

#[cfg(test)]
mod tests;
