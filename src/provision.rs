//! The main job, stage by stage: lock the name → reuse a still-valid key → load the material →
//! write an auth key as found, or mint one → write atomically → revoke the previous key → record.
//!
//! This module only orchestrates; each stage lives in its own module. Loading the material
//! (source → decode → material) is passed in as a closure so this flow does not care whether the
//! source was sops, age, an env file or plain text. Every failure path leaves the file at `--out`
//! byte-for-byte as it was (the sink writes by rename) and records the error in the state — the
//! message, never a secret. A key minted in a run whose write then fails is revoked at once, so
//! no valid key is left behind unused.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::decode::{self, IfPlain, OpenOptions, Opened};
use crate::error::Error;
use crate::log;
use crate::material::{self, Material, MaterialError, Want};
use crate::mint::{Credentials, KeyOptions, MintedKey, Minter};
use crate::sink::{self, WriteOptions};
use crate::sops::{Format, Identities};
use crate::source::{self, Origin};
use crate::state::{self, Flags, Record};

/// How the key is laid out in the output file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// The bare key and a newline (`services.tailscale.authKeyFile`).
    Raw,
    /// `TS_AUTHKEY=<key>` and a newline (a sidecar's `EnvironmentFile=`).
    Env,
    /// A JSON object with the key and what is known about it.
    Json,
}

impl OutputFormat {
    /// The name used in state records.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Raw => "raw",
            OutputFormat::Env => "env",
            OutputFormat::Json => "json",
        }
    }
}

/// Everything `provision` needs, validated by the CLI.
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

/// A client for some credentials and the base URL it talks to.
pub type MinterFor<'a> = dyn Fn(&Credentials) -> Result<(Minter, String), Error> + 'a;

/// How to mint, decided only once the credentials are known (a `tskey-client-…?ephemeral=…`
/// secret changes the defaults; its `?baseURL=` the API).
pub struct MintWith<'a> {
    /// Validated key options for these credentials.
    pub options: &'a dyn Fn(&Credentials) -> Result<KeyOptions, Error>,
    /// A client for these credentials, and the base URL it talks to (recorded for `revoke`).
    pub minter: &'a MinterFor<'a>,
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

/// Runs `provision` for one name. `load` yields the decoded material.
pub fn provision(
    req: &Request,
    load: &mut dyn FnMut() -> Result<Material, Error>,
    mint: &MintWith,
) -> Result<Outcome, Error> {
    let locked = state::lock(&req.state_dir, &req.name)?;
    let prev = locked.load()?;
    // Prove the record can be saved before anything is minted or written (rewriting what is
    // there): a run whose result cannot be recorded fails, and must leave `--out` untouched
    // rather than hold a key that no record knows of (to reuse or revoke).
    locked.save(prev.as_ref().unwrap_or(&base_record(req)))?;
    let now = SystemTime::now();
    let result = run_locked(req, prev.as_ref(), now, load, mint);
    let mut record = match &result {
        Ok((_, rec)) => rec.clone(),
        Err(e) => {
            let mut r = prev.clone().unwrap_or_else(|| base_record(req));
            r.result = Some("error".into());
            r.exit_code = Some(e.exit_code());
            r.error = Some(e.to_string());
            r
        }
    };
    record.last_run = Some(state::rfc3339(now));
    if let Err(save) = locked.save(&record) {
        match result {
            Ok(_) => return Err(save.into()),
            Err(_) => log::warn(format!("could not record the failure: {save}")),
        }
    }
    result.map(|(o, _)| o)
}

fn base_record(req: &Request) -> Record {
    Record {
        name: req.name.clone(),
        out: req.out.clone(),
        format: req.format.as_str().into(),
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

/// The reuse rule: minted by us (per state), same file and format, not revoked, valid for the
/// margin, and the file still holds exactly what we wrote.
fn reusable(req: &Request, prev: &Record, margin: Duration, now: SystemTime) -> bool {
    if !(prev.minted && prev.out == req.out && prev.format == req.format.as_str()) {
        return false;
    }
    if !prev.valid_for(margin, now) {
        return false;
    }
    // Only a regular file we wrote counts: a symlink planted at --out is never followed, and a
    // file larger than any key we write is not read.
    match std::fs::symlink_metadata(&req.out) {
        Ok(m) if m.is_file() && m.len() <= REUSE_READ_LIMIT => {}
        _ => return false,
    }
    let origin = Origin::File(req.out.clone());
    match (
        source::read_limited(&origin, REUSE_READ_LIMIT, "a provisioned key"),
        &prev.out_sha256,
    ) {
        (Ok(bytes), Some(want)) => sha256_hex(&bytes) == *want,
        _ => false,
    }
}

fn run_locked(
    req: &Request,
    prev: Option<&Record>,
    now: SystemTime,
    load: &mut dyn FnMut() -> Result<Material, Error>,
    mint: &MintWith,
) -> Result<(Outcome, Record), Error> {
    if let (Some(margin), Some(prev)) = (req.reuse_if_valid_for, prev) {
        if reusable(req, prev, margin, now) {
            log::info(format!(
                "{}: key {} is valid until {}; reusing it",
                req.out.display(),
                prev.key_id.as_deref().unwrap_or("?"),
                prev.expires.as_deref().unwrap_or("?")
            ));
            let mut r = prev.clone();
            r.result = Some("reused".into());
            r.exit_code = Some(0);
            r.error = None;
            return Ok((Outcome::Reused, r));
        }
    }
    let material = load()?;
    let mut record = base_record(req);
    record.material = Some(
        match &material {
            Material::AuthKey(_) => "auth-key",
            Material::OAuth(_) => "oauth",
            Material::ApiKey(_) => "api-key",
        }
        .into(),
    );
    let creds = match material {
        Material::AuthKey(key) => {
            let contents = render(req, &key, None)?;
            sink::write_atomic(&req.out, &contents, &req.write)?;
            record.key_id = auth_key_id(&key);
            record.out_sha256 = Some(sha256_hex(&contents));
            record.result = Some("ok".into());
            record.exit_code = Some(0);
            log::info(format!(
                "{}: wrote the auth key from the source",
                req.out.display()
            ));
            return Ok((Outcome::WroteAuthKey, record));
        }
        Material::OAuth(client) => Credentials::OAuth(client),
        Material::ApiKey(key) => Credentials::ApiKey(key),
    };
    let options = (mint.options)(&creds)?;
    let (mut minter, api_url) = (mint.minter)(&creds)?;
    let minted = minter.mint(&creds, &options)?;
    let contents = render(req, &minted.key, Some(&minted))?;
    if let Err(e) = sink::write_atomic(&req.out, &contents, &req.write) {
        // Never leave a valid key behind that nobody holds.
        match minter.revoke_key(&creds, &minted.id) {
            Ok(_) => log::warn(format!(
                "revoked the unused new key {} after the write failed",
                minted.id
            )),
            Err(r) => log::warn(format!(
                "could not revoke the unused new key {}: {r}",
                minted.id
            )),
        }
        return Err(e.into());
    }
    record.api_url = Some(api_url);
    record.tailnet = Some(creds.tailnet().to_string());
    record.minted = true;
    record.key_id = Some(minted.id.clone());
    record.created = minted.created.clone();
    record.expires = minted.expires.clone();
    record.tags = minted.tags.clone();
    record.flags = Some(Flags {
        reusable: minted.reusable,
        ephemeral: minted.ephemeral,
        preauthorized: minted.preauthorized,
    });
    record.out_sha256 = Some(sha256_hex(&contents));
    record.result = Some("ok".into());
    record.exit_code = Some(0);
    if let Some(prev) = prev {
        record.revoked_ids = prev.revoked_ids.clone();
        if req.revoke_previous {
            revoke_previous(&mut minter, &creds, prev, &minted.id, &mut record);
        }
    }
    Ok((Outcome::Minted { id: minted.id }, record))
}

fn revoke_previous(
    minter: &mut Minter,
    creds: &Credentials,
    prev: &Record,
    new_id: &str,
    record: &mut Record,
) {
    let Some(old) = prev
        .key_id
        .as_deref()
        .filter(|id| prev.minted && *id != new_id)
    else {
        return;
    };
    if prev.revoked.is_some() {
        return;
    }
    match minter.revoke_key(creds, old) {
        Ok(_) => {
            log::info(format!("revoked the previous key {old}"));
            record.revoked_ids.push(old.to_string());
            let excess = record.revoked_ids.len().saturating_sub(20);
            record.revoked_ids.drain(..excess);
        }
        // The new key is in place; a failed revoke is reported, not fatal.
        Err(e) => log::warn(format!("could not revoke the previous key {old}: {e}")),
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
