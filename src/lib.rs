//! tskeyctl turns long-lived Tailscale material, kept in git encrypted with sops or age to a host's
//! own SSH host key, into a fresh short-lived auth key written atomically with mode 0600.
//!
//! The flow runs one way (see `ARCHITECTURE.md`, whose import rules `tests/it/architecture.rs`
//! enforces):
//!
//! ```text
//! source ──► decode ──► material ──► mint ──► sink (+ state)
//!              │
//!            sops (the engine: formats, values, MAC, Shamir, age keys, encryption)
//!              │
//!           hostkey (ssh ed25519 → age identities / recipients)
//! ```
//!
//! Each stage is a module with its own error type; [`error::Error`] gathers them and maps each
//! to the exit code of the contract in exactly one place.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod cli;
pub mod credentials;
pub mod decode;
pub mod error;
pub mod harden;
pub mod hostkey;
pub mod install;
pub mod log;
pub mod material;
pub mod mint;
pub mod perm;
pub mod provision;
pub mod revoke;
pub mod sink;
pub mod sops;
pub mod source;
pub mod state;
pub mod tailscaled;
