//! `revoke`, the undo of `provision` (for `ExecStopPost=`): revoke the key a name's record
//! holds, optionally delete the devices that joined with it and remove the file, and record
//! what happened — the failure too.
//!
//! Credentials come from a source given now, else from credentials given now (flags or
//! environment), else from the source the record names. The API is always the configured one
//! (flag, environment, default, or the credentials' own `?baseURL=`): never a URL read from the
//! record, so a credential cannot be sent to an address a record (or whoever wrote it) chose.

use std::path::PathBuf;
use std::time::Duration;

use crate::credentials::{Credentials, CredentialsError, Federated, Material};
use crate::error::Error;
use crate::log;
use crate::mint::{ApiSettings, Deleted, Minter};
use crate::provision::material_from_source;
use crate::sink;
use crate::sops::{Format, Identities};
use crate::state::{self, MaterialKind, Record, RunResult, Timestamp};

/// What to revoke, and what else to undo.
#[derive(Debug)]
pub struct Request {
    /// The record's name.
    pub name: String,
    /// The state directory.
    pub state_dir: PathBuf,
    /// Also delete the devices that joined with the key.
    pub delete_device: bool,
    /// Also remove the provisioned file.
    pub remove_file: bool,
}

/// Where the credentials may come from, in order.
pub struct CredentialsFrom<'a> {
    /// A source given for this run (`--source`, `--key`), decrypted like `provision` does.
    pub source: Option<(PathBuf, Option<String>)>,
    /// The sops format of a source, if forced.
    pub input_type: Option<Format>,
    /// Credentials given for this run (flags, environment), or why there are none.
    pub given: Result<Credentials, CredentialsError>,
    /// Identities for a source.
    pub identities: &'a dyn Fn() -> Result<Identities, Error>,
    /// Completes a federated identity a source names (its ID token and audience from the
    /// command's flags and environment).
    pub complete: &'a dyn Fn(&mut Federated) -> Result<(), CredentialsError>,
}

/// What `revoke` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The key was revoked now (`gone`: the API no longer knew it).
    Revoked {
        name: String,
        id: String,
        gone: bool,
    },
    /// The key had been revoked before.
    AlreadyRevoked {
        name: String,
        id: String,
        when: Timestamp,
    },
    /// The current key was not minted by tskeyctl; there is nothing to revoke.
    NotMinted { name: String },
}

impl std::fmt::Display for Outcome {
    /// The line `revoke` says about a run.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Revoked {
                name,
                id,
                gone: false,
            } => write!(f, "{name}: revoked key {id}"),
            Outcome::Revoked {
                name,
                id,
                gone: true,
            } => {
                write!(
                    f,
                    "{name}: key {id} was already gone from the tailnet; recorded as revoked"
                )
            }
            Outcome::AlreadyRevoked { name, id, when } => {
                write!(
                    f,
                    "{name}: key {id} was already revoked at {when}; nothing to do"
                )
            }
            Outcome::NotMinted { name } => write!(
                f,
                "{name}: the current key was not minted by tskeyctl; nothing to revoke"
            ),
        }
    }
}

/// The name's record, locked (exit 66 when nothing was provisioned under that name). `revoke
/// --after-join` asks first, so a wrong name fails at once instead of after the wait.
pub fn recorded(req: &Request) -> Result<(state::Locked, Record), Error> {
    let locked = state::lock(&req.state_dir, &req.name)?;
    let rec = locked.load()?.ok_or_else(|| {
        Error::NoState(format!(
            "{}: no state recorded for {:?} (nothing was provisioned under that name)",
            req.state_dir.display(),
            req.name
        ))
    })?;
    Ok((locked, rec))
}

/// Records that the key was kept because `why` (`revoke --after-join` gave up waiting): the
/// record's key stays live and the run is marked [`RunResult::Kept`] with `why` and its exit
/// code. Returns `why`.
pub fn keep(req: &Request, why: Error) -> Error {
    let record = || -> Result<(), Error> {
        let (locked, mut rec) = recorded(req)?;
        rec.result = Some(RunResult::Kept);
        rec.exit_code = Some(why.exit_code());
        rec.error = Some(log::bounded::cap(&format!("revoke --after-join: {why}")));
        rec.last_run = Some(Timestamp::now());
        Ok(locked.save(&rec)?)
    };
    if let Err(e) = record() {
        log::warn(format!("could not record that the key was kept: {e}"));
    }
    why
}

/// Runs `revoke` for one name, under its lock. A failure is recorded in the state too.
pub fn revoke(req: &Request, creds: CredentialsFrom, api: &ApiSettings) -> Result<Outcome, Error> {
    let (locked, mut rec) = recorded(req)?;
    let result = revoke_recorded(req, &mut rec, creds, api);
    if let Err(e) = &result {
        rec.result = Some(RunResult::Error);
        rec.exit_code = Some(e.exit_code());
        rec.error = Some(log::bounded::cap(&format!("revoke: {e}")));
        rec.last_run = Some(Timestamp::now());
    }
    match (locked.save(&rec), result) {
        (Ok(()), r) => r,
        (Err(save), Ok(_)) => Err(save.into()),
        (Err(save), Err(e)) => {
            log::warn(format!("could not record the failure: {save}"));
            Err(e)
        }
    }
}

fn revoke_recorded(
    req: &Request,
    rec: &mut Record,
    creds: CredentialsFrom,
    api: &ApiSettings,
) -> Result<Outcome, Error> {
    let live = rec.live_minted_key().map(str::to_owned);
    // The API is needed for the live key, and for the keys of lost create replies an earlier
    // run recorded by marker.
    let mut api_with = match (&live, rec.lost_markers.is_empty()) {
        (None, true) => None,
        _ => {
            let creds = credentials_for(rec, creds)?;
            let url = api.url_for(Some(&creds));
            if let Some(recorded) = rec.api_url.as_deref().filter(|u| *u != url) {
                log::info(format!(
                    "{} was minted through {recorded}; revoking through the configured API {url}",
                    live.as_deref()
                        .map_or("a key".into(), |id| format!("key {id}"))
                ));
            }
            let minter = api.minter(Some(&creds))?;
            Some((minter, creds))
        }
    };
    if let Some((minter, creds)) = &mut api_with {
        for marker in rec.lost_markers.clone() {
            let n = minter.revoke_marked(creds, &marker)?;
            log::notice(format!(
                "revoked {n} key(s) left by a lost create reply ({marker})"
            ));
            rec.lost_markers.retain(|m| *m != marker);
        }
    }
    let outcome = match (rec.minted, rec.key_id.clone(), rec.revoked, &mut api_with) {
        (true, Some(id), None, Some((minter, creds))) => {
            let (minter, creds) = (minter, &*creds);
            let gone = matches!(minter.revoke_key(creds, &id)?, Deleted::AlreadyGone);
            if req.delete_device {
                delete_devices(minter, creds, rec)?;
            }
            rec.revoked = Some(Timestamp::now());
            rec.note_revoked(&id);
            Outcome::Revoked {
                name: req.name.clone(),
                id,
                gone,
            }
        }
        (true, Some(id), Some(when), _) => Outcome::AlreadyRevoked {
            name: req.name.clone(),
            id,
            when,
        },
        _ => Outcome::NotMinted {
            name: req.name.clone(),
        },
    };
    if req.remove_file && sink::remove(&rec.out)? {
        log::notice(format!("removed {}", rec.out.display()));
    }
    Ok(outcome)
}

/// The credentials, in the order of [`CredentialsFrom`].
fn credentials_for(rec: &Record, from: CredentialsFrom) -> Result<Credentials, Error> {
    let from_source = |src: &PathBuf, key: Option<&str>| -> Result<Credentials, Error> {
        let mut m = material_from_source(src, key, from.input_type, from.identities)?;
        if let Material::Federated(f) = &mut m {
            (from.complete)(f)?;
        }
        Credentials::from_material(m).ok_or_else(|| {
            Error::Config(format!(
                "{}: holds an auth key, not API credentials; give --oauth-secret-file, \
--credentials-file or --api-key-file to revoke",
                src.display()
            ))
        })
    };
    if let Some((src, key)) = &from.source {
        return from_source(src, key.as_deref());
    }
    match from.given {
        Ok(c) => Ok(c),
        Err(e) => match &rec.source {
            Some(src) if rec.material != Some(MaterialKind::AuthKey) => {
                from_source(src, rec.source_key.as_deref())
            }
            _ => Err(e.into()),
        },
    }
}

/// Deletes the devices that joined with the record's key: same tags and ephemeral flag,
/// created after the key.
fn delete_devices(minter: &mut Minter, creds: &Credentials, rec: &Record) -> Result<(), Error> {
    let ephemeral = rec.flags.map(|f| f.ephemeral);
    let mut want_tags = rec.tags.clone();
    want_tags.sort();
    for d in minter.list_devices(creds)? {
        let mut tags = d.tags.clone();
        tags.sort();
        let joined = d.created.as_deref().and_then(Timestamp::parse);
        let after_key = match (rec.created, joined) {
            (Some(k), Some(j)) => j.0 + Duration::from_secs(1) >= k.0,
            _ => false,
        };
        if after_key && tags == want_tags && ephemeral.is_none_or(|e| e == d.is_ephemeral) {
            let id = if d.node_id.is_empty() {
                &d.id
            } else {
                &d.node_id
            };
            minter.delete_device(creds, id)?;
            log::notice(format!("deleted device {id} ({})", d.hostname));
        }
    }
    Ok(())
}
