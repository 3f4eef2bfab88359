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

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::decode::{self, IfPlain, OpenOptions, Opened};
use crate::error::Error;
use crate::log;
use crate::material::{self, Material, MaterialError, Want};
use crate::mint::{ApiSettings, Credentials, KeyOverrides, MintError, MintedKey, Minter};
use crate::sink::{self, WriteOptions};
use crate::sops::{Format, Identities};
use crate::source::{self, Origin};
pub use crate::state::OutputFormat;
use crate::state::{self, Flags, Locked, MaterialKind, Record, RunResult, Timestamp};

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
    Reused,
    /// A ready auth key from the source was written.
    WroteAuthKey,
    /// A key was minted and written.
    Minted { id: String },
}

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
fn revoke_unused(minter: &mut Minter, creds: &Credentials, id: &str, why: &str) {
    match minter.revoke_key(creds, id) {
        Ok(_) => log::warn(format!("revoked the unused new key {id} after {why}")),
        Err(r) => log::warn(format!(
            "could not revoke the unused new key {id} after {why}: {r}"
        )),
    }
}

/// `out` absolute, with its directory resolved (symlinks, `..`): what two spellings of one file
/// have in common. A directory that does not exist yet (`--mkdir`) is taken as written.
pub fn canonical_out(out: &Path) -> PathBuf {
    let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    match (abs.parent(), abs.file_name()) {
        (Some(dir), Some(name)) => dir
            .canonicalize()
            .map(|d| d.join(name))
            .unwrap_or_else(|_| abs.clone()),
        _ => abs,
    }
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
            r.error = Some(e.to_string());
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

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Largest `--out` file the reuse check reads (a JSON key file is a few hundred bytes).
const REUSE_READ_LIMIT: u64 = 64 << 10;

/// The file at `out` as it is now: absent, a regular file's bytes and (mode, uid, gid), or
/// something else.
enum Previous {
    Absent,
    Bytes(Zeroizing<Vec<u8>>, (u32, u32, u32)),
    Unknown,
}

/// Reads a regular file at `out` (never through a symlink), up to [`REUSE_READ_LIMIT`].
fn read_out(out: &Path) -> Previous {
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Previous::Absent,
        Ok(m) if m.is_file() && m.len() <= REUSE_READ_LIMIT => {
            use std::os::unix::fs::MetadataExt;
            let origin = Origin::File(out.to_path_buf());
            match source::read_limited(&origin, REUSE_READ_LIMIT, "a provisioned key") {
                Ok(b) => Previous::Bytes(b, (m.mode() & 0o7777, m.uid(), m.gid())),
                Err(_) => Previous::Unknown,
            }
        }
        _ => Previous::Unknown,
    }
}

/// Whether the file at `out` holds exactly what hashes to `sha256`.
fn holds(out: &Path, sha256: Option<&str>) -> bool {
    match (read_out(out), sha256) {
        (Previous::Bytes(b, _), Some(want)) => sha256_hex(&b) == want,
        _ => false,
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
            log::info(format!(
                "{}: key {} is valid until {}; reusing it",
                req.out.display(),
                prev.key_id.as_deref().unwrap_or("?"),
                prev.expires
                    .map(|t| t.to_string())
                    .as_deref()
                    .unwrap_or("?")
            ));
            let mut r = prev.clone();
            r.result = Some(RunResult::Reused);
            r.exit_code = Some(0);
            r.error = None;
            return Ok((Outcome::Reused, Some(r)));
        }
    }
    let material = load()?;
    let mut record = base_record(req);
    record.material = Some(match &material {
        Material::AuthKey(_) => MaterialKind::AuthKey,
        Material::OAuth(_) => MaterialKind::OAuth,
        Material::ApiKey(_) => MaterialKind::ApiKey,
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
            log::info(format!(
                "{}: wrote the auth key from the source",
                req.out.display()
            ));
            return Ok((Outcome::WroteAuthKey, None));
        }
        Material::OAuth(client) => Credentials::OAuth(client),
        Material::ApiKey(key) => Credentials::ApiKey(key),
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
    Ok((Outcome::Minted { id: minted.id }, None))
}

/// A pending record left by a run cut short names a key that may never have reached `--out`:
/// revoke it unless `--out` holds it. Returns whether it was revoked (then it is no previous
/// key to speak of).
fn settle_pending(req: &Request, prev: &Record, minter: &mut Minter, creds: &Credentials) -> bool {
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
fn settle_lost(prev: Option<&Record>, minter: &mut Minter, creds: &Credentials) -> Vec<String> {
    let mut left = Vec::new();
    for marker in prev.map(|p| p.lost_markers.as_slice()).unwrap_or_default() {
        match minter.revoke_marked(creds, marker) {
            Ok(n) => log::info(format!(
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

/// Puts back the file that was at `--out` before this run wrote `record`'s key there (a
/// minted one is revoked by now): its bytes, mode and owner, or no file.
fn put_back(req: &Request, before: Previous, record: &Record) {
    let restored = match before {
        Previous::Bytes(b, (mode, uid, gid)) => {
            let as_before = WriteOptions {
                mode,
                uid: Some(uid),
                gid: Some(gid),
                ..req.write.clone()
            };
            sink::write_atomic(&req.out, &b, &as_before).map(|()| true)
        }
        Previous::Absent if holds(&req.out, record.out_sha256.as_deref()) => sink::remove(&req.out),
        Previous::Absent => Ok(false),
        Previous::Unknown => Ok(false),
    };
    match restored {
        Ok(_) => log::warn(format!(
            "{}: put back what was there before this run",
            req.out.display()
        )),
        Err(e) => log::warn(format!(
            "{}: could not put back what was there before (it holds this run's key): {e}",
            req.out.display()
        )),
    }
}

/// Revokes the key `prev` recorded (if tskeyctl minted it, it is not `new_id` and not revoked
/// yet). Returns whether `record` changed.
fn revoke_previous(
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
            log::info(format!("revoked the previous key {old}"));
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

/// `tskey-auth-<id>-<secret>` → `<id>` (ids are not secret; they name keys in the admin console).
fn auth_key_id(key: &str) -> Option<String> {
    let rest = key.strip_prefix("tskey-auth-")?;
    let (id, secret) = rest.split_once('-')?;
    (!id.is_empty() && !secret.is_empty()).then(|| id.to_string())
}

fn render(
    req: &Request,
    key: &str,
    minted: Option<&MintedKey>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    let text = match req.format {
        OutputFormat::Raw => Zeroizing::new(format!("{key}\n")),
        OutputFormat::Env => Zeroizing::new(format!("{}={key}\n", req.env_name)),
        OutputFormat::Json => {
            let mut v = serde_json::json!({ "authkey": key });
            if let Some(m) = minted {
                v["id"] = m.id.clone().into();
                v["created"] = m.created.clone().into();
                v["expires"] = m.expires.clone().into();
                v["tags"] = m.tags.clone().into();
                v["reusable"] = m.reusable.into();
                v["ephemeral"] = m.ephemeral.into();
                v["preauthorized"] = m.preauthorized.into();
            } else if let Some(id) = auth_key_id(key) {
                v["id"] = id.into();
            }
            let s = Zeroizing::new(format!("{v:#}\n"));
            if let Some(obj) = v.as_object_mut() {
                if let Some(serde_json::Value::String(k)) = obj.get_mut("authkey") {
                    zeroize::Zeroize::zeroize(k);
                }
            }
            s
        }
    };
    Ok(Zeroizing::new(text.as_bytes().to_vec()))
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
    ids: &dyn Fn() -> Identities,
) -> Result<Material, Error> {
    let origin = Origin::from_arg(source);
    let name = origin.to_string();
    let data = source::read_limited(&origin, SOURCE_LIMIT, "a secret source")?;
    let opts = OpenOptions {
        input_type,
        if_plain: IfPlain::Keep,
        ignore_mac: false,
    };
    let text = match decode::open(&origin, data, &opts, &mut || ids())? {
        Opened::Sops(doc) => {
            let format = doc.format();
            if let Some(k) = key {
                let leaf = doc.get(k)?;
                return classify_text(&format!("{name} (key {k})"), &leaf, None);
            }
            if format != Format::Binary {
                let entries = doc
                    .top_level()
                    .into_iter()
                    .map(|(k, v)| (k, Zeroizing::new(String::from_utf8_lossy(&v).into_owned())))
                    .collect::<Vec<_>>();
                return Ok(material::classify_map(&name, &entries, Want::Any)?);
            }
            doc.get("data")?
        }
        Opened::Age(text) | Opened::Plain(text) => text,
    };
    classify_text(&name, &text, key)
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
            let (_, v) =
                entries
                    .iter()
                    .find(|(n, _)| n == k)
                    .ok_or_else(|| MaterialError::NoMaterial {
                        origin: origin.into(),
                        keys: format!("no variable {k}"),
                    })?;
            Ok(material::classify_str(origin, v)?)
        }
        None => Ok(material::classify_map(origin, &entries, Want::Any)?),
    }
}
