//! The main job, stage by stage: lock the output and the name → reuse a still-valid key → load
//! the material → write an auth key as found, or mint one → record it as pending → write
//! atomically → record it → revoke the previous key.
//!
//! This module only orchestrates; each stage lives in its own module. Loading the material
//! (source → decode → material) is passed in as a closure so this flow does not care whether the
//! source was sops, age, an env file or plain text; how to mint is passed in as plain data
//! ([`MintWith`]) and merged with the credentials here.
//!
//! Every key a run mints is accounted for: it is recorded (as pending) before `--out` is
//! touched, and if anything after the mint fails — the pending record, the write, the final
//! record — the key is revoked at once and `--out` is left (or put back) byte-for-byte as it
//! was. A pending record left by a run cut short is settled by the next run: its key is revoked
//! unless `--out` holds it. Runs are serialized per name and per output file, and a file that
//! another name's live key occupies is refused, so two names never share one key file.

mod keys;
mod output;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use zeroize::Zeroizing;

use crate::decode::{self, IfPlain, OpenOptions, Opened};
use crate::error::Error;
use crate::log;
use crate::material::{self, Material, MaterialError, Want};
use crate::mint::{ApiSettings, Credentials, KeyOverrides, MintError};
use crate::sink::{self, WriteOptions};
use crate::sops::{Format, Identities};
use crate::source::{self, Origin};
pub use crate::state::OutputFormat;
use crate::state::{self, Flags, Locked, MaterialKind, Record, RunResult, Timestamp, sha256_hex};
pub use keys::write_or_revoke;
use keys::{revoke_previous, revoke_unused, settle_lost, settle_pending};
pub use output::canonical_out;
use output::{auth_key_id, holds, put_back, read_out, render};

/// Everything `provision` needs, validated by the CLI. Paths are absolute.
#[derive(Debug)]
pub struct Request {
    pub name: String,
    pub out: PathBuf,
    pub format: OutputFormat,
    pub env_name: String,
    pub write: WriteOptions,
    pub state_dir: PathBuf,
    pub source: Option<PathBuf>,
    pub source_key: Option<String>,
    pub reuse_if_valid_for: Option<Duration>,
    pub revoke_previous: bool,
}

/// How to mint, as asked; merged with the credentials once they are known (a
/// `tskey-client-…?ephemeral=…` secret changes the defaults, its `?baseURL=` the API).
#[derive(Clone, Debug)]
pub struct MintWith {
    /// The key options asked for.
    pub key: KeyOverrides,
    /// The API configured (flag, environment or default) and the deadline.
    pub api: ApiSettings,
}

/// What a run did.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The existing key is valid long enough; nothing was called or written.
    Reused {
        id: Option<String>,
        expires: Option<Timestamp>,
    },
    /// A ready auth key from the source was written (its id when the key shows one).
    WroteAuthKey { id: Option<String> },
    /// A key was minted and written.
    Minted {
        id: String,
        expires: Option<Timestamp>,
    },
    /// Nothing was needed (tailscaled is logged in); nothing was minted or written.
    Skipped,
}

impl std::fmt::Display for Outcome {
    /// The line `provision` says about a run (never the key itself).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let until =
            |e: &Option<Timestamp>| e.map_or("an unknown time".to_string(), |t| t.to_string());
        match self {
            Outcome::Reused { id, expires } => write!(
                f,
                "kept key {} (valid until {}); nothing minted or written",
                id.as_deref().unwrap_or("?"),
                until(expires)
            ),
            Outcome::WroteAuthKey { id: Some(id) } => {
                write!(f, "copied the pre-made auth key {id} from the source")
            }
            Outcome::WroteAuthKey { id: None } => {
                write!(f, "copied the pre-made auth key from the source")
            }
            Outcome::Minted { id, expires } => {
                write!(f, "minted key {id} (expires {})", until(expires))
            }
            Outcome::Skipped => write!(f, "no key needed; nothing minted or written"),
        }
    }
}

/// Records that a run needed no key (`why`, e.g. "tailscaled is logged in") and does nothing
/// else: no source read, no API call, `--out` untouched. The record keeps what it knew about
/// the current key.
pub fn skip(req: &Request, why: &str) -> Result<Outcome, Error> {
    let canonical = canonical_out(&req.out);
    let _out_lock = state::lock_out(&req.state_dir, &canonical)?;
    let locked = state::lock(&req.state_dir, &req.name)?;
    let mut record = locked.load()?.unwrap_or_else(|| base_record(req));
    if record.result == Some(RunResult::Pending) {
        // The next run that mints, or `revoke`, settles that key; the mark must stay.
        log::warn(format!(
            "{}: a key minted by an interrupted run is still pending; left for the next run \
or `tskeyctl revoke --name {}` to settle",
            req.out.display(),
            req.name
        ));
        return Ok(Outcome::Skipped);
    }
    record.result = Some(RunResult::Skipped);
    record.exit_code = Some(0);
    record.error = Some(log::bounded::cap(&format!("skipped: {why}")));
    record.last_run = Some(Timestamp::now());
    locked.save(&record)?;
    Ok(Outcome::Skipped)
}

/// Runs `provision` for one name. `load` yields the decoded material.
pub fn provision(
    req: &Request,
    load: &mut dyn FnMut() -> Result<Material, Error>,
    mint: &MintWith,
) -> Result<Outcome, Error> {
    let canonical = canonical_out(&req.out);
    let _out_lock = state::lock_out(&req.state_dir, &canonical)?;
    let locked = state::lock(&req.state_dir, &req.name)?;
    let prev = locked.load()?;
    refuse_shared_out(req, &canonical)?;
    // Prove the record can be saved before anything is minted or written (rewriting what is
    // there): a run whose result cannot be recorded fails before it costs an API call.
    locked.save(prev.as_ref().unwrap_or(&base_record(req)))?;
    let now = Timestamp::now();
    let result = run_locked(req, &locked, prev.as_ref(), now, load, mint);
    match result {
        Ok((outcome, None)) => Ok(outcome),
        Ok((outcome, Some(mut record))) => {
            record.last_run = Some(now);
            locked.save(&record)?;
            Ok(outcome)
        }
        Err(e) => {
            let mut r = prev.clone().unwrap_or_else(|| base_record(req));
            if let Error::Mint(MintError::Unsettled { marker, .. }) = &e {
                r.lost_markers.push(marker.clone());
            }
            r.result = Some(RunResult::Error);
            r.exit_code = Some(e.exit_code());
            r.error = Some(log::bounded::cap(&e.to_string()));
            r.last_run = Some(now);
            if let Err(save) = locked.save(&r) {
                log::warn(format!("could not record the failure: {save}"));
            }
            Err(e)
        }
    }
}

/// Refuses an `--out` that another name's live, minted key occupies: writing over it would
/// leave that key valid with no file holding it.
fn refuse_shared_out(req: &Request, canonical: &Path) -> Result<(), Error> {
    let records = match state::list(&req.state_dir) {
        Ok(r) => r,
        Err(e) => {
            log::warn(format!(
                "cannot check which other names write {}: {e}",
                req.out.display()
            ));
            return Ok(());
        }
    };
    let now = SystemTime::now();
    for r in records.iter().filter(|r| r.name != req.name) {
        let live = r.live_minted_key().is_some() && r.expires_at().is_some_and(|t| t > now);
        if live && canonical_out(&r.out) == canonical {
            return Err(Error::Config(format!(
                "--out {}: already provisioned under the name {:?} with key {}, still valid; \
use --name {:?}, or run `tskeyctl revoke --name {:?}` first",
                req.out.display(),
                r.name,
                r.key_id.as_deref().unwrap_or("?"),
                r.name,
                r.name
            )));
        }
    }
    Ok(())
}

fn base_record(req: &Request) -> Record {
    Record {
        name: req.name.clone(),
        out: req.out.clone(),
        format: req.format,
        source: req.source.clone(),
        source_key: req.source_key.clone(),
        ..Record::default()
    }
}

/// The reuse rule: minted by us (per state), same file and format, not revoked, valid for the
/// margin, and the file still holds exactly what we wrote.
fn reusable(req: &Request, prev: &Record, margin: Duration, now: SystemTime) -> bool {
    prev.minted
        && prev.out == req.out
        && prev.format == req.format
        && prev.valid_for(margin, now)
        && holds(&req.out, prev.out_sha256.as_deref())
}

/// Runs the job under the locks. Returns the outcome and the record still to be saved (`None`
/// when the run saved it itself).
fn run_locked(
    req: &Request,
    locked: &Locked,
    prev: Option<&Record>,
    now: Timestamp,
    load: &mut dyn FnMut() -> Result<Material, Error>,
    mint: &MintWith,
) -> Result<(Outcome, Option<Record>), Error> {
    if let (Some(margin), Some(prev)) = (req.reuse_if_valid_for, prev) {
        if reusable(req, prev, margin, now.0) {
            let mut r = prev.clone();
            r.result = Some(RunResult::Reused);
            r.exit_code = Some(0);
            r.error = None;
            let outcome = Outcome::Reused {
                id: prev.key_id.clone(),
                expires: prev.expires,
            };
            return Ok((outcome, Some(r)));
        }
    }
    let material = load()?;
    let mut record = base_record(req);
    record.material = Some(match &material {
        Material::AuthKey(_) => MaterialKind::AuthKey,
        Material::OAuth(_) => MaterialKind::OAuth,
        Material::ApiKey(_) => MaterialKind::ApiKey,
        Material::Federated(_) => MaterialKind::Federated,
    });
    let creds = match material {
        Material::AuthKey(key) => {
            let contents = render(req, &key, None)?;
            let before = read_out(&req.out);
            sink::write_atomic(&req.out, &contents, &req.write)?;
            record.key_id = auth_key_id(&key);
            record.out_sha256 = Some(sha256_hex(&contents));
            record.result = Some(RunResult::Ok);
            record.exit_code = Some(0);
            record.last_run = Some(now);
            if let Err(e) = locked.save(&record) {
                // A failed run leaves --out as it was.
                put_back(req, before, &record);
                return Err(e.into());
            }
            let id = record.key_id.clone();
            return Ok((Outcome::WroteAuthKey { id }, None));
        }
        Material::OAuth(client) => Credentials::OAuth(client),
        Material::ApiKey(key) => Credentials::ApiKey(key),
        Material::Federated(f) => Credentials::Federated(f),
    };
    let options = mint.key.resolve(Some(&creds))?;
    let mut minter = mint.api.minter(Some(&creds))?;
    // What earlier runs left unsettled: keys of lost replies, a key recorded but never written.
    record.lost_markers = settle_lost(prev, &mut minter, &creds);
    record.revoked_ids = prev.map(|p| p.revoked_ids.clone()).unwrap_or_default();
    let prev = match prev {
        Some(p) if settle_pending(req, p, &mut minter, &creds) => {
            if let Some(id) = &p.key_id {
                record.note_revoked(id);
            }
            None
        }
        other => other,
    };
    let minted = minter.mint(&creds, &options)?;
    let contents = render(req, &minted.key, Some(&minted))?;
    record.api_url = Some(mint.api.url_for(Some(&creds)));
    record.tailnet = Some(creds.tailnet().to_string());
    record.minted = true;
    record.key_id = Some(minted.id.clone());
    record.created = minted.created.as_deref().and_then(Timestamp::parse);
    record.expires = minted.expires.as_deref().and_then(Timestamp::parse);
    record.tags = minted.tags.clone();
    record.flags = Some(Flags {
        reusable: minted.reusable,
        ephemeral: minted.ephemeral,
        preauthorized: minted.preauthorized,
    });
    record.out_sha256 = Some(sha256_hex(&contents));
    record.last_run = Some(now);
    // 1. Name the key before it reaches --out.
    record.result = Some(RunResult::Pending);
    if let Err(e) = locked.save(&record) {
        revoke_unused(
            &mut minter,
            &creds,
            &minted.id,
            "the state could not be saved",
        );
        return Err(e.into());
    }
    // 2. Write it, or revoke it.
    let before = read_out(&req.out);
    write_or_revoke(&mut minter, &creds, &minted.id, || {
        sink::write_atomic(&req.out, &contents, &req.write)
    })?;
    // 3. Record it, or revoke it and put the previous file back.
    record.result = Some(RunResult::Ok);
    record.exit_code = Some(0);
    if let Err(e) = locked.save(&record) {
        revoke_unused(
            &mut minter,
            &creds,
            &minted.id,
            "the state could not be saved",
        );
        put_back(req, before, &record);
        return Err(e.into());
    }
    // 4. Only now that the new key is in place and recorded, revoke the previous one.
    if let (Some(prev), true) = (prev, req.revoke_previous) {
        if revoke_previous(&mut minter, &creds, prev, &minted.id, &mut record) {
            if let Err(e) = locked.save(&record) {
                log::warn(format!(
                    "the new key {} is in place and recorded, but the revocation of the \
previous one could not be added to the record: {e}",
                    minted.id
                ));
            }
        }
    }
    let outcome = Outcome::Minted {
        id: minted.id,
        expires: record.expires,
    };
    Ok((outcome, None))
}

/// Largest source file read.
pub const SOURCE_LIMIT: u64 = 64 << 20;

/// Source → decode → material: reads `source`, opens it (sops in any format, age, or plain
/// text), takes `key` (sops-nix `a/b`, or an env-file variable) if given, and classifies what it
/// finds. `input_type` forces the sops format.
pub fn material_from_source(
    source: &Path,
    key: Option<&str>,
    input_type: Option<Format>,
    ids: &dyn Fn() -> Result<Identities, Error>,
) -> Result<Material, Error> {
    let origin = Origin::from_arg(source);
    let name = origin.to_string();
    let data = source::read_limited(&origin, SOURCE_LIMIT, "a secret source")?;
    let opts = OpenOptions {
        input_type,
        if_plain: IfPlain::Keep,
        ignore_mac: false,
    };
    let opened = decode::open(&origin, data, &opts, &mut || ids()).map_err(|e| match e {
        // provision has no --ignore-mac: the MAC error must not suggest it.
        Error::Decode(d) => Error::Decode(d.without_ignore_mac_hint()),
        other => other,
    })?;
    let text = match opened {
        Opened::Sops(doc) => {
            let format = doc.format();
            if let Some(k) = key {
                return from_sops_key(&name, &doc, k);
            }
            if format != Format::Binary {
                let entries = text_entries(doc.top_level());
                return match material::classify_map(&name, &entries, Want::Any) {
                    Err(MaterialError::NoMaterial { .. }) => from_nested(&name, &doc),
                    other => Ok(other?),
                };
            }
            doc.get("data")?
        }
        Opened::Age(text) | Opened::Plain(text) => text,
    };
    classify_text(&name, &text, key)
}

fn text_entries(raw: Vec<(String, Zeroizing<Vec<u8>>)>) -> Vec<(String, Zeroizing<String>)> {
    raw.into_iter()
        .map(|(k, v)| (k, Zeroizing::new(String::from_utf8_lossy(&v).into_owned())))
        .collect()
}

/// `--key` in a sops file: a string leaf (`a/b`), or a mapping holding material (`a`). A key
/// that is not there is answered with the keys that are (names only).
fn from_sops_key(name: &str, doc: &crate::sops::Document, k: &str) -> Result<Material, Error> {
    if let Some(entries) = doc.map_at(k) {
        let origin = format!("{name} (key {k})");
        return Ok(material::classify_map(
            &origin,
            &text_entries(entries),
            Want::Any,
        )?);
    }
    match doc.get(k) {
        Ok(leaf) => classify_text(&format!("{name} (key {k})"), &leaf, None),
        Err(e) => {
            let leaves = doc.leaf_paths();
            let maps: Vec<String> = doc.nested_maps().into_iter().map(|(p, _)| p).collect();
            let exists = leaves.iter().chain(&maps).any(|p| p == k);
            if exists {
                return Err(e.into());
            }
            Err(MaterialError::NoSuchKey {
                origin: name.to_string(),
                key: k.to_string(),
                known: if leaves.is_empty() {
                    "none".into()
                } else {
                    log::bounded::list(&leaves, ", ")
                },
            }
            .into())
        }
    }
}

/// No material at the top level: the one nested mapping that holds some is used; none or
/// several is an error naming them.
fn from_nested(name: &str, doc: &crate::sops::Document) -> Result<Material, Error> {
    let mut found: Vec<(String, Material)> = Vec::new();
    let mut refused: Option<(String, MaterialError)> = None;
    for (path, entries) in doc.nested_maps() {
        let origin = format!("{name} (key {path})");
        match material::classify_map(&origin, &text_entries(entries), Want::Any) {
            Ok(m) => found.push((path, m)),
            Err(MaterialError::NoMaterial { .. }) => {}
            Err(e) => {
                refused.get_or_insert((path, e));
            }
        }
    }
    match (found.len(), refused) {
        (1, None) => {
            let (path, m) = found.remove(0);
            log::info(format!(
                "{name}: using the {} under {path} (pass --key {path} to say so)",
                m.kind()
            ));
            Ok(m)
        }
        (0, Some((_, e))) => Err(e.into()),
        (0, None) => Err(MaterialError::NoMaterial {
            origin: name.to_string(),
            keys: log::bounded::list(&doc.leaf_paths(), ", "),
        }
        .into()),
        (_, refused) => {
            let mut paths: Vec<String> = found.into_iter().map(|(p, _)| p).collect();
            paths.extend(refused.map(|(p, _)| p));
            Err(MaterialError::Ambiguous {
                origin: name.to_string(),
                paths: log::bounded::list(&paths, ", "),
            }
            .into())
        }
    }
}

/// A single `tskey-…` value, or env-file text (`KEY=VALUE` lines), optionally one variable of it.
fn classify_text(origin: &str, text: &[u8], key: Option<&str>) -> Result<Material, Error> {
    let s = std::str::from_utf8(text).map_err(|_| MaterialError::NotText {
        origin: origin.into(),
    })?;
    let t = s.trim();
    if key.is_none() && (t.starts_with("tskey-") || !t.contains('=')) {
        return Ok(material::classify_str(origin, t)?);
    }
    let entries = material::parse_env(origin, text)?;
    match key {
        Some(k) => {
            let (_, v) = entries.iter().find(|(n, _)| n == k).ok_or_else(|| {
                let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
                MaterialError::NoSuchKey {
                    origin: origin.into(),
                    key: k.into(),
                    known: log::bounded::list(&names, ", "),
                }
            })?;
            Ok(material::classify_str(origin, v)?)
        }
        None => Ok(material::classify_map(origin, &entries, Want::Any)?),
    }
}
