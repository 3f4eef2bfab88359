//! The JSON shapes of the Tailscale API v2 that tskeyctl sends and reads.
//!
//! Field names follow the API's camelCase; request fields are in wire order (the tests pin the
//! exact bytes). Replies are read leniently: unknown fields are ignored, `tags: null` reads as
//! no tags (the Go SDK sends it), and only what tskeyctl uses is required.

use serde::{Deserialize, Serialize};

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
