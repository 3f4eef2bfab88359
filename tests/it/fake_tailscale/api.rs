//! The API half of the fake: routing, authentication, scopes and tag ownership, and the
//! endpoints, with the rules and messages of `shared/reference/tailscale-api.md`.

use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use serde_json::{Value, json};

use super::{
    FakeTailscale, KeyRec, MAX_EXPIRY_SECS, Recorded, Reply, Token, empty, json_reply, message,
    random_alnum, rfc3339,
};

/// Who is calling, once authenticated.
enum Principal {
    /// An access token of an OAuth client.
    OAuth {
        client: String,
        scopes: Vec<String>,
        tags: Vec<String>,
    },
    /// A user's API key.
    User {
        key: String,
        owned_tags: Vec<String>,
    },
}

/// `tailcfg.CheckTag`.
fn valid_tag(t: &str) -> bool {
    t.strip_prefix("tag:").is_some_and(|n| {
        let mut c = n.chars();
        c.next().is_some_and(|f| f.is_ascii_alphabetic())
            && c.all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(h, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

impl FakeTailscale {
    pub(super) fn handle(&self, req: &mut Recorded) -> Reply {
        let path = req.path.clone();
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), segs.as_slice()) {
            ("POST", ["api", "v2", "oauth", "token"]) => self.token(req),
            ("POST", ["api", "v2", "oauth", "token-exchange"]) => self.token_exchange(req),
            (_, ["api", "v2", "oauth", "token"]) => message(405, "method not allowed"),
            (m, ["api", "v2", "tailnet", tailnet, rest @ ..]) => {
                let principal = match self.authenticate(req) {
                    Ok(p) => p,
                    Err(r) => return r,
                };
                let tn = self.tailnet();
                if *tailnet != "-" && *tailnet != tn {
                    return message(404, "tailnet not found");
                }
                match (m, rest) {
                    ("POST", ["keys"]) => self.create_key(&principal, &req.body),
                    ("GET", ["keys"]) => self.list_keys(&principal, &req.query),
                    ("GET", ["keys", id]) => self.get_key(&principal, id),
                    ("DELETE", ["keys", id]) => self.delete_key(&principal, id),
                    ("GET", ["devices"]) => self.list_devices(&principal),
                    _ => message(404, "not found"),
                }
            }
            ("DELETE", ["api", "v2", "device", id]) => match self.authenticate(req) {
                Ok(p) => self.delete_device(&p, id),
                Err(r) => r,
            },
            _ => message(404, "not found"),
        }
    }

    /// `POST /api/v2/oauth/token`.
    fn token(&self, req: &Recorded) -> Reply {
        let form = parse_form(&req.body);
        let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let mut secret = field("client_secret");
        if secret.is_none() {
            // x/oauth2 tries Basic auth first: base64(urlquery(id):urlquery(secret)).
            if let Some(b) = req
                .header("authorization")
                .and_then(|h| h.strip_prefix("Basic "))
            {
                if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) {
                    let raw = String::from_utf8_lossy(&raw).into_owned();
                    if let Some((_, s)) = raw.split_once(':') {
                        secret = Some(url_decode(s));
                    }
                }
            }
        }
        let mut s = self.lock();
        let Some(client) = secret
            .as_deref()
            .and_then(|sec| s.clients.iter().find(|c| c.secret == sec))
        else {
            return message(401, "API token invalid");
        };
        let mut scopes = client.scopes.clone();
        if let Some(asked) = field("scope").filter(|v| !v.trim().is_empty()) {
            let asked: Vec<String> = asked.split_whitespace().map(str::to_owned).collect();
            let missing: Vec<&str> = asked
                .iter()
                .filter(|a| !client.scopes.iter().any(|c| c == *a || c == "all"))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return message(
                    403,
                    &format!("OAuth client cannot grant scopes \"{}\"", missing.join(" ")),
                );
            }
            scopes = asked;
        }
        let token = format!("tskey-api-k{}CNTRL-{}", random_alnum(7), random_alnum(32));
        let (client_id, tags) = (client.id.clone(), client.tags.clone());
        let life = s.token_lifetime;
        s.tokens.push(Token {
            token: token.clone(),
            client: client_id,
            scopes: scopes.clone(),
            tags,
            // A lifetime no clock can add (a test's `u64::MAX`) never expires.
            expires: Instant::now()
                .checked_add(Duration::from_secs(life))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(u64::from(u32::MAX))),
        });
        json_reply(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": life, "scope": scopes.join(" ")}),
        )
    }

    /// `POST /api/v2/oauth/token-exchange`: `client_id` and `jwt` (an EdDSA-signed ID token)
    /// checked against the federated identity: signature, issuer, subject, audience, expiry.
    fn token_exchange(&self, req: &Recorded) -> Reply {
        use ed25519_dalek::{Signature, Verifier, VerifyingKey};
        let form = parse_form(&req.body);
        let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
        let (Some(client_id), Some(jwt)) = (field("client_id"), field("jwt")) else {
            return message(400, "client_id and jwt are required");
        };
        let mut s = self.lock();
        s.id_tokens.push(jwt.clone());
        let Some(id) = s
            .federated
            .iter()
            .find(|f| f.client_id == client_id)
            .cloned()
        else {
            return message(401, "invalid client_id");
        };
        let parts: Vec<&str> = jwt.split('.').collect();
        if parts.len() != 3 {
            return message(401, "malformed token");
        }
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header: Value = b64
            .decode(parts[0])
            .ok()
            .and_then(|h| serde_json::from_slice(&h).ok())
            .unwrap_or(Value::Null);
        if header["alg"] != "EdDSA" {
            return message(401, "unsupported token algorithm");
        }
        let sig_ok = b64
            .decode(parts[2])
            .ok()
            .and_then(|sig| Signature::from_slice(&sig).ok())
            .zip(VerifyingKey::from_bytes(&id.public_key).ok())
            .is_some_and(|(sig, key)| {
                key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
                    .is_ok()
            });
        if !sig_ok {
            return message(401, "token signature invalid");
        }
        let claims: Value = b64
            .decode(parts[1])
            .ok()
            .and_then(|c| serde_json::from_slice(&c).ok())
            .unwrap_or(Value::Null);
        if claims["iss"] != id.issuer.as_str() {
            return message(401, "token issuer does not match the federated identity");
        }
        let sub = claims["sub"].as_str().unwrap_or("");
        let sub_ok = match id.subject.strip_suffix('*') {
            Some(prefix) => sub.starts_with(prefix),
            None => sub == id.subject,
        };
        if !sub_ok {
            return message(401, "token subject does not match the federated identity");
        }
        let aud_ok = match &claims["aud"] {
            Value::String(a) => *a == id.audience,
            Value::Array(a) => a.iter().any(|v| *v == id.audience.as_str()),
            _ => false,
        };
        if !aud_ok {
            return message(400, "token audience does not match the federated identity");
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if claims["exp"].as_u64().is_none_or(|e| e <= now) {
            return message(401, "token expired");
        }
        let token = format!("tskey-api-k{}CNTRL-{}", random_alnum(7), random_alnum(32));
        let life = s.token_lifetime;
        s.tokens.push(Token {
            token: token.clone(),
            client: id.client_id.clone(),
            scopes: id.scopes.clone(),
            tags: id.tags.clone(),
            expires: Instant::now()
                .checked_add(Duration::from_secs(life))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(u64::from(u32::MAX))),
        });
        json_reply(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": life, "scope": id.scopes.join(" ")}),
        )
    }

    /// Bearer or Basic (token as username) authentication of an API call.
    fn authenticate(&self, req: &Recorded) -> Result<Principal, Reply> {
        let header = req.header("authorization").unwrap_or("");
        let cred = if let Some(t) = header.strip_prefix("Bearer ") {
            t.trim().to_owned()
        } else if let Some(b) = header.strip_prefix("Basic ") {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .unwrap_or_default();
            let raw = String::from_utf8_lossy(&raw).into_owned();
            raw.split_once(':')
                .map(|(u, _)| u.to_owned())
                .unwrap_or(raw)
        } else {
            return Err(message(401, "API token invalid"));
        };
        let s = self.lock();
        if let Some(t) = s.tokens.iter().find(|t| t.token == cred) {
            if t.expires <= Instant::now() {
                return Err(message(401, "API token invalid"));
            }
            return Ok(Principal::OAuth {
                client: t.client.clone(),
                scopes: t.scopes.clone(),
                tags: t.tags.clone(),
            });
        }
        if let Some(u) = s.users.iter().find(|u| u.key == cred) {
            return Ok(Principal::User {
                key: u.key.clone(),
                owned_tags: u.owned_tags.clone(),
            });
        }
        if s.clients.iter().any(|c| c.secret == cred) {
            return Err(message(
                403,
                "calling actor does not have enough permissions to perform this function",
            ));
        }
        Err(message(401, "API token invalid"))
    }

    fn forbidden() -> Reply {
        message(
            403,
            "calling actor does not have enough permissions to perform this function",
        )
    }

    /// `auth_keys` grants `auth_keys:read`; `all` grants everything; users have every right.
    fn has_scope(p: &Principal, needed: &str) -> bool {
        match p {
            Principal::User { .. } => true,
            Principal::OAuth { scopes, .. } => scopes.iter().any(|s| {
                s == "all" || s == needed || needed.strip_suffix(":read") == Some(s.as_str())
            }),
        }
    }

    fn tag_permitted(&self, p: &Principal, tag: &str) -> bool {
        let s = self.lock();
        match p {
            Principal::User { owned_tags, .. } => owned_tags.iter().any(|t| t == tag),
            Principal::OAuth { tags, .. } => {
                tags.iter().any(|t| t == tag)
                    || s.tag_owners
                        .iter()
                        .filter(|(t, _)| t == tag)
                        .any(|(_, owners)| owners.iter().any(|o| tags.contains(o)))
            }
        }
    }

    /// `POST /api/v2/tailnet/{t}/keys`.
    fn create_key(&self, p: &Principal, body: &[u8]) -> Reply {
        if !Self::has_scope(p, "auth_keys") {
            return Self::forbidden();
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return message(400, "invalid JSON request body");
        };
        match v.get("keyType").and_then(Value::as_str) {
            None | Some("auth") => {}
            Some(_) => return message(400, "fake: only keyType auth is implemented"),
        }
        let Some(create) = v.pointer("/capabilities/devices") else {
            return message(400, "capabilities.devices is required for auth keys");
        };
        let create = create.get("create").cloned().unwrap_or(json!({}));
        let flag = |k: &str| create.get(k).and_then(Value::as_bool).unwrap_or(false);
        let tags: Vec<String> = match create.get("tags") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            Some(_) => return message(400, "tags must be a list of strings"),
        };
        let tailnet_owned = matches!(p, Principal::OAuth { .. });
        if tailnet_owned && tags.is_empty() {
            return message(400, "tailnet-owned auth key must have tags set");
        }
        let bad: Vec<&str> = tags
            .iter()
            .filter(|t| !valid_tag(t) || !self.tag_permitted(p, t))
            .map(String::as_str)
            .collect();
        if !bad.is_empty() {
            return message(
                400,
                &format!(
                    "requested tags [{}] are invalid or not permitted",
                    bad.join(" ")
                ),
            );
        }
        let expiry = match v.get("expirySeconds") {
            None | Some(Value::Null) => MAX_EXPIRY_SECS,
            Some(e) => match e.as_i64() {
                Some(0) => MAX_EXPIRY_SECS,
                Some(n) if n < 0 => return message(400, "expirySeconds must not be negative"),
                Some(n) if n > MAX_EXPIRY_SECS => {
                    return message(400, "expirySeconds must be at most 7776000 (90 days)");
                }
                Some(n) => n,
                None => return message(400, "expirySeconds must be an integer"),
            },
        };
        let description = v
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if description.chars().count() > 50 {
            return message(400, "description must be at most 50 characters");
        }
        if !description
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        {
            return message(
                400,
                "description may only contain alphanumeric characters, hyphens and spaces",
            );
        }
        let id = format!("k{}CNTRL", random_alnum(7));
        let rec = KeyRec {
            key: format!("tskey-auth-{id}-{}", random_alnum(32)),
            id,
            creator: match p {
                Principal::OAuth { client, .. } => client.clone(),
                Principal::User { key, .. } => key.clone(),
            },
            created: SystemTime::now(),
            expiry_secs: expiry,
            reusable: flag("reusable"),
            ephemeral: flag("ephemeral"),
            preauthorized: flag("preauthorized"),
            tags,
            description,
            revoked: None,
            tailnet_owned,
        };
        let reply = json_reply(200, key_json(&rec, true));
        self.lock().keys.push(rec);
        reply
    }

    fn list_keys(&self, p: &Principal, query: &str) -> Reply {
        if !Self::has_scope(p, "auth_keys:read") {
            return Self::forbidden();
        }
        let all = parse_form(query.as_bytes())
            .iter()
            .any(|(k, v)| k == "all" && v == "true");
        let me = match p {
            Principal::OAuth { client, .. } => client.clone(),
            Principal::User { key, .. } => key.clone(),
        };
        let s = self.lock();
        let keys: Vec<Value> = s
            .keys
            .iter()
            .filter(|k| {
                all || k.creator == me || (k.tailnet_owned && matches!(p, Principal::OAuth { .. }))
            })
            .map(|k| key_json(k, false))
            .collect();
        json_reply(200, json!({ "keys": keys }))
    }

    fn get_key(&self, p: &Principal, id: &str) -> Reply {
        if !Self::has_scope(p, "auth_keys:read") {
            return Self::forbidden();
        }
        match self.key_json(id) {
            Some(v) => json_reply(200, v),
            None => message(404, "not found"),
        }
    }

    fn delete_key(&self, p: &Principal, id: &str) -> Reply {
        if !Self::has_scope(p, "auth_keys") {
            return Self::forbidden();
        }
        let mut s = self.lock();
        match s.keys.iter_mut().find(|k| k.id == id) {
            Some(k) => {
                k.revoked.get_or_insert_with(SystemTime::now);
                empty(200)
            }
            None => message(404, "not found"),
        }
    }

    fn list_devices(&self, p: &Principal) -> Reply {
        if !Self::has_scope(p, "devices:core:read") {
            return Self::forbidden();
        }
        let s = self.lock();
        let devices: Vec<Value> = s
            .devices
            .iter()
            .map(|d| {
                json!({
                    "id": d.id, "nodeId": d.node_id, "name": format!("{}.tail1234.ts.net", d.hostname),
                    "hostname": d.hostname, "tags": d.tags, "isEphemeral": d.ephemeral,
                    "authorized": true, "created": rfc3339(d.created), "lastSeen": rfc3339(d.created),
                    "addresses": ["100.64.0.1"], "os": "linux", "user": "tagged-devices",
                })
            })
            .collect();
        json_reply(200, json!({ "devices": devices }))
    }

    fn delete_device(&self, p: &Principal, id: &str) -> Reply {
        if !Self::has_scope(p, "devices:core") {
            return Self::forbidden();
        }
        let mut s = self.lock();
        let before = s.devices.len();
        s.devices.retain(|d| d.id != id && d.node_id != id);
        if s.devices.len() < before {
            empty(200)
        } else {
            message(404, "not found")
        }
    }
}

pub(super) fn key_json(k: &KeyRec, with_key: bool) -> Value {
    let expires = k.created + Duration::from_secs(k.expiry_secs as u64);
    let mut v = json!({
        "id": k.id,
        "keyType": "auth",
        "created": rfc3339(k.created),
        "expires": rfc3339(expires),
        "expirySeconds": k.expiry_secs,
        "capabilities": {"devices": {"create": {
            "reusable": k.reusable, "ephemeral": k.ephemeral,
            "preauthorized": k.preauthorized, "tags": k.tags}}},
        "description": k.description,
        "invalid": k.revoked.is_some() || expires <= SystemTime::now(),
        "userId": if k.tailnet_owned { "" } else { "uFakeUser11CNTRL" },
    });
    if let Some(r) = k.revoked {
        v["revoked"] = json!(rfc3339(r));
    }
    if with_key {
        v["key"] = json!(k.key);
    }
    v
}
