//! Accounting for minted keys: revoke a key nobody will hold, settle what an earlier run left
//! (a pending record whose key never reached `--out`, keys of lost create replies), and revoke
//! the previous key once the new one is in place.

use super::Request;
use super::output::holds;
use crate::credentials::Credentials;
use crate::error::Error;
use crate::log;
use crate::mint::Minter;
use crate::state::{Record, RunResult};

/// Writes with `write`; if that fails, revokes the key `id` just minted (nobody holds it) and
/// returns the write's error. The one "write, or revoke the new key" step of `provision` and
/// `mint -o`.
pub fn write_or_revoke<E: Into<Error>>(
    minter: &mut Minter,
    creds: &Credentials,
    id: &str,
    write: impl FnOnce() -> Result<(), E>,
) -> Result<(), Error> {
    write().map_err(|e| {
        revoke_unused(minter, creds, id, "the write failed");
        e.into()
    })
}

/// Revokes a key this run minted but could not deliver or record.
pub(super) fn revoke_unused(minter: &mut Minter, creds: &Credentials, id: &str, why: &str) {
    match minter.revoke_key(creds, id) {
        Ok(_) => log::warn(format!("revoked the unused new key {id} after {why}")),
        Err(r) => log::warn(format!(
            "could not revoke the unused new key {id} after {why}: {r}"
        )),
    }
}

/// A pending record left by a run cut short names a key that may never have reached `--out`:
/// revoke it unless `--out` holds it. Returns whether it was revoked (then it is no previous
/// key to speak of).
pub(super) fn settle_pending(
    req: &Request,
    prev: &Record,
    minter: &mut Minter,
    creds: &Credentials,
) -> bool {
    let Some(id) = prev.live_minted_key() else {
        return false;
    };
    if prev.result != Some(RunResult::Pending) || holds(&req.out, prev.out_sha256.as_deref()) {
        return false;
    }
    match minter.revoke_key(creds, id) {
        Ok(_) => {
            log::warn(format!(
                "revoked key {id}, left pending by an earlier run that did not write it"
            ));
            true
        }
        Err(e) => {
            log::warn(format!(
                "could not revoke key {id}, left pending by an earlier run: {e}"
            ));
            false
        }
    }
}

/// Revokes the keys of the lost replies an earlier run recorded; returns the markers still
/// unsettled (kept in the record for the next run).
pub(super) fn settle_lost(
    prev: Option<&Record>,
    minter: &mut Minter,
    creds: &Credentials,
) -> Vec<String> {
    let mut left = Vec::new();
    for marker in prev.map(|p| p.lost_markers.as_slice()).unwrap_or_default() {
        match minter.revoke_marked(creds, marker) {
            Ok(n) => log::notice(format!(
                "revoked {n} key(s) left by an earlier run's lost reply ({marker})"
            )),
            Err(e) => {
                log::warn(format!(
                    "could not look for keys left by an earlier run's lost reply ({marker}): {e}"
                ));
                left.push(marker.clone());
            }
        }
    }
    left
}

/// Revokes the key `prev` recorded (if tskeyctl minted it, it is not `new_id` and not revoked
/// yet). Returns whether `record` changed.
pub(super) fn revoke_previous(
    minter: &mut Minter,
    creds: &Credentials,
    prev: &Record,
    new_id: &str,
    record: &mut Record,
) -> bool {
    let Some(old) = prev.live_minted_key().filter(|id| *id != new_id) else {
        return false;
    };
    match minter.revoke_key(creds, old) {
        Ok(_) => {
            log::notice(format!("revoked the previous key {old}"));
            record.note_revoked(old);
            true
        }
        // The new key is in place; a failed revoke is reported, not fatal.
        Err(e) => {
            log::warn(format!("could not revoke the previous key {old}: {e}"));
            false
        }
    }
}
