//! The output file of `provision`: what it holds (rendered key), what it held before (read
//! back, never through a symlink), and putting that back when a run fails after writing.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::{OutputFormat, Request};
use crate::error::Error;
use crate::log;
use crate::material;
use crate::mint::MintedKey;
use crate::sink::{self, WriteOptions};
use crate::source::{self, Origin};
use crate::state::{Record, sha256_hex};

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

/// Largest `--out` file the reuse check reads (a JSON key file is a few hundred bytes).
pub(super) const REUSE_READ_LIMIT: u64 = 64 << 10;

/// The file at `out` as it is now: absent, a regular file's bytes and (mode, uid, gid), a
/// symlink (its target), or something that cannot be put back (too large, unreadable).
pub(super) enum Previous {
    Absent,
    Bytes(Zeroizing<Vec<u8>>, (u32, u32, u32)),
    Link(PathBuf),
    Unknown,
}

/// Reads a regular file at `out` (never through a symlink), up to [`REUSE_READ_LIMIT`].
pub(super) fn read_out(out: &Path) -> Previous {
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
        Ok(m) if m.file_type().is_symlink() => match std::fs::read_link(out) {
            Ok(t) => Previous::Link(t),
            Err(_) => Previous::Unknown,
        },
        _ => Previous::Unknown,
    }
}

/// Whether the file at `out` holds exactly what hashes to `sha256`.
pub(super) fn holds(out: &Path, sha256: Option<&str>) -> bool {
    match (read_out(out), sha256) {
        (Previous::Bytes(b, _), Some(want)) => sha256_hex(&b) == want,
        _ => false,
    }
}

/// Puts back the file that was at `--out` before this run wrote `record`'s key there (a
/// minted one is revoked by now): its bytes, mode and owner, or no file.
pub(super) fn put_back(req: &Request, before: Previous, record: &Record) {
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
        Previous::Link(target) => sink::put_symlink(&req.out, &target).map(|()| true),
        Previous::Absent if holds(&req.out, record.out_sha256.as_deref()) => sink::remove(&req.out),
        // Nothing was there and this run's key is not there either: nothing to undo.
        Previous::Absent => Ok(true),
        Previous::Unknown => Ok(false),
    };
    match restored {
        Ok(true) => log::warn(format!(
            "{}: put back what was there before this run",
            req.out.display()
        )),
        Ok(false) => log::warn(format!(
            "{}: could not put back what was there before this run (not a file of at most {} \
KiB that could be read); it holds this run's key, which is revoked",
            req.out.display(),
            REUSE_READ_LIMIT >> 10
        )),
        Err(e) => log::warn(format!(
            "{}: could not put back what was there before (it holds this run's key): {e}",
            req.out.display()
        )),
    }
}

/// `tskey-auth-<id>-<secret>` → `<id>` (ids are not secret; they name keys in the admin console).
pub(super) fn auth_key_id(key: &str) -> Option<String> {
    let rest = key.strip_prefix("tskey-auth-")?;
    let (id, secret) = rest.split_once('-')?;
    (!id.is_empty() && !secret.is_empty()).then(|| id.to_string())
}

pub(super) fn render(
    req: &Request,
    key: &str,
    minted: Option<&MintedKey>,
) -> Result<Zeroizing<Vec<u8>>, Error> {
    // Whatever the source or the API gave: one well-formed key, so every format is one line.
    material::check_auth_key(&req.out.display().to_string(), key)?;
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
