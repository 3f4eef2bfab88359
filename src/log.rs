//! Minimal leveled logging to stderr.
//!
//! Every line goes to stderr so stdout stays byte-exact output (recipients, keys, decrypted
//! documents). Callers pass paths, recipients, key ids and fingerprints — never secret values;
//! there is no API here that takes a secret type. Every line is capped at about 1 KB
//! ([`bounded::cap`]).

pub mod bounded;

use std::sync::atomic::{AtomicI8, Ordering};

static LEVEL: AtomicI8 = AtomicI8::new(0);

/// Sets the verbosity: -1 quiet (errors only), 0 warnings and one line per action, 1 info,
/// 2+ debug.
pub fn set_level(level: i8) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// The current verbosity.
pub fn level() -> i8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Prints a warning unless `-q` was given.
pub fn warn(msg: impl std::fmt::Display) {
    if level() >= 0 {
        eprintln!("tskeyctl: warning: {}", bounded::cap(&msg.to_string()));
    }
}

/// Prints a line worth seeing at the default verbosity (not a warning) unless `-q` was given.
pub fn notice(msg: impl std::fmt::Display) {
    if level() >= 0 {
        eprintln!("tskeyctl: {}", bounded::cap(&msg.to_string()));
    }
}

/// Prints an informational line at `-v`.
pub fn info(msg: impl std::fmt::Display) {
    if level() >= 1 {
        eprintln!("tskeyctl: {}", bounded::cap(&msg.to_string()));
    }
}

/// Prints a debug line at `-vv`.
pub fn debug(msg: impl std::fmt::Display) {
    if level() >= 2 {
        eprintln!("tskeyctl: debug: {}", bounded::cap(&msg.to_string()));
    }
}
