//! `tskeyctl install`: NixOS activation of many secrets at once, at parity with sops-nix's
//! `sops-install-secrets` (see `docs/nixos.md`, "sops-nix compatibility"), reading the same manifest.
//!
//! The flow, all-or-nothing up to the switch:
//! 1. read and validate the manifest and every sops file (parse, keys present) — `--check`
//!    stops here, without keys, root or passwd;
//! 2. decrypt each sops file once (MAC checked) and pick every secret's bytes, in memory;
//! 3. dry-activate: report `would add/modify/remove` and the units, change nothing;
//! 4. mount the ramfs, write generation N+1 with exact modes and owners, compare it with the
//!    current one, switch `/run/secrets` atomically;
//! 5. `path` symlinks, restart/reload requests for changed secrets, `adding secret: …`, prune.
//!
//! Any failure before the switch removes the new generation, so `/run/secrets` still points at
//! the old one with the old bytes.

pub mod error;
pub mod files;
pub mod generation;
pub mod links;
pub mod manifest;
pub mod paths;
pub mod sops;
pub mod units;
pub mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::log;
use crate::source::{self, Origin};

pub use error::InstallError;
pub use files::{FileError, FileProblem, Format, KeyError, KeyIndex, Plaintext, SecretFiles};

use generation::Owners;
use units::{Changes, NewSecret, Via};
use validate::{Context, Plan, rooted};

/// Largest manifest read.
const MANIFEST_LIMIT: u64 = 16 << 20;

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The manifest JSON.
    pub manifest: PathBuf,
    /// Prefix for every absolute path (tests, image builds).
    pub root: Option<PathBuf>,
    /// Validate only: no decryption, no root, no passwd.
    pub check: bool,
    /// Mount ramfs/tmpfs on the mount point (off: use the directory as it is).
    pub mount: bool,
    /// `NIXOS_ACTION=dry-activate`: report, change nothing.
    pub dry: bool,
    /// Queue units with `systemctl --no-block` instead of the activation lists.
    pub via_systemctl: bool,
    /// sops-nix `-ignore-passwd` (the neededForUsers manifest, before users exist): every
    /// owner and group is 0 and names are not looked up.
    pub ignore_passwd: bool,
}

/// Where identities come from (manifest `ageKeyFile`, `ageSshKeyPaths`, after `--root`).
#[derive(Debug, Clone)]
pub struct IdentitySources {
    /// An age identity file.
    pub age_key_file: Option<PathBuf>,
    /// ssh ed25519 private keys (converted X25519 and native ssh-ed25519 identities).
    pub ssh_keys: Vec<PathBuf>,
    /// Log each imported key's recipient.
    pub log_import: bool,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The generation now current (None for `--check` and dry runs).
    pub generation: Option<u64>,
    /// Changes against the previous generation (None on first install).
    pub changes: Option<Changes>,
    /// The `adding secret: …` lines to print on stdout.
    pub report: String,
    /// Generations removed.
    pub pruned: Vec<u64>,
    /// Number of secrets and sops files handled.
    pub counts: (usize, usize),
}

/// A decoder that also knows how to load the manifest's identities.
pub trait Decoder: SecretFiles {
    /// Loads the identities once, before the first `decrypt`.
    fn load_identities(&mut self, sources: &IdentitySources) -> Result<(), InstallError>;
}

/// Runs `install` with `decoder`.
pub fn run(opts: &Options, decoder: &mut dyn Decoder) -> Result<Outcome, InstallError> {
    let origin = Origin::File(opts.manifest.clone());
    let bytes = source::read_limited(&origin, MANIFEST_LIMIT, "a manifest")?;
    let m = manifest::Manifest::parse(&bytes).map_err(|e| InstallError::Syntax {
        path: opts.manifest.clone(),
        reason: e.to_string(),
    })?;
    for f in m.unknown_fields() {
        log::warn(format!(
            "{}: unknown field '{f}' ignored",
            opts.manifest.display()
        ));
    }
    // Symlink targets are absolute paths below the root, so the root must be absolute too.
    let root = match &opts.root {
        Some(r) => Some(std::path::absolute(r).map_err(error::io_err(r, "resolve --root"))?),
        None => None,
    };
    let ctx = Context {
        manifest_path: &opts.manifest,
        root: root.as_deref(),
        resolve_owners: !opts.check && !opts.dry && !opts.ignore_passwd,
    };
    let plan = validate::validate(&m, &ctx, decoder)?;
    let counts = (plan.secrets.len(), plan.files.len());
    if opts.check {
        log::info(format!(
            "{}: valid ({} secrets in {} sops files)",
            opts.manifest.display(),
            counts.0,
            counts.1
        ));
        return Ok(Outcome {
            counts,
            ..Outcome::default()
        });
    }

    decoder.load_identities(&IdentitySources {
        age_key_file: plan.age_key_file.clone(),
        ssh_keys: plan.age_ssh_key_paths.clone(),
        log_import: plan.log_key_import,
    })?;
    let values = decrypt_all(&plan, decoder)?;
    let new: Vec<NewSecret<'_>> = plan
        .secrets
        .iter()
        .zip(&values)
        .map(|(s, v)| NewSecret {
            name: &s.name,
            value: v,
            restart: &s.restart_units,
            reload: &s.reload_units,
        })
        .collect();
    let via = if opts.via_systemctl {
        Via::Systemctl
    } else {
        Via::Lists(rooted(root.as_deref(), "/run/nixos"))
    };

    if opts.dry {
        let changes = units::diff(&plan.symlink_path, &new, plan.log_changes)?;
        let mut report = String::new();
        if let Some(c) = &changes {
            units::request(c, true, &via)?;
            if plan.log_changes {
                report = units::report(c, true);
            }
        }
        return Ok(Outcome {
            changes,
            report,
            counts,
            ..Outcome::default()
        });
    }

    // Everything is written below --root: it must be reached through trusted directories.
    if let Some(r) = root.as_deref().filter(|r| r.exists()) {
        let walk = crate::sink::WalkOptions {
            mkdir: None,
            allow_sticky: true,
        };
        crate::sink::walk::open_dir(r, walk)?;
    }
    // A device, FIFO or socket at any target is refused before anything is written.
    let targets = std::iter::once(&plan.symlink_path)
        .chain(plan.secrets.iter().filter_map(|s| s.link.as_ref()));
    let specials: Vec<InstallError> = targets
        .filter_map(|p| links::check_not_special(p).err())
        .collect();
    if let Some(e) = InstallError::from_list(specials) {
        return Err(e);
    }
    let owners = Owners::detect(opts.ignore_passwd)?;
    generation::ensure_mount(&plan.mount_point, plan.use_tmpfs, opts.mount, &owners)?;
    let _lock = generation::lock(&plan.mount_point)?;
    let current = generation::current(&plan.mount_point, &plan.symlink_path)?;
    let next = current + 1;
    let dir = generation::create(&plan.mount_point, next, &owners)?;
    let prepared = write_all(&plan, &values, &dir, &owners)
        .and_then(|()| units::diff(&plan.symlink_path, &new, plan.log_changes))
        .and_then(|c| links::switch(&dir, &plan.symlink_path).map(|()| c));
    let changes = match prepared {
        Ok(c) => c,
        Err(e) => {
            generation::discard(&dir);
            return Err(e);
        }
    };
    log::info(format!(
        "{} now points at generation {next} ({} secrets)",
        plan.symlink_path.display(),
        counts.0
    ));

    // After the switch: finish every step, then report all that failed.
    let mut problems = Vec::new();
    for s in &plan.secrets {
        if let Some(path) = &s.link {
            let target = plan.symlink_path.join(&s.name);
            if let Err(e) = links::link(path, &target, s.uid, s.gid, owners.privileged) {
                problems.push(e);
            }
        }
    }
    let mut report = String::new();
    if let Some(c) = &changes {
        if let Err(e) = units::request(c, false, &via) {
            problems.push(e);
        }
        if plan.log_changes {
            report = units::report(c, false);
        }
    }
    let pruned = match generation::prune(&plan.mount_point, next, plan.keep) {
        Ok(p) => p,
        Err(e) => {
            problems.push(e);
            Vec::new()
        }
    };
    if let Some(e) = InstallError::from_list(problems) {
        return Err(e);
    }
    Ok(Outcome {
        generation: Some(next),
        changes,
        report,
        pruned,
        counts,
    })
}

/// Decrypts each sops file once and picks every secret's bytes (in manifest order).
fn decrypt_all(
    plan: &Plan,
    decoder: &mut dyn Decoder,
) -> Result<Vec<Zeroizing<Vec<u8>>>, InstallError> {
    let mut problems = Vec::new();
    let mut docs = Vec::with_capacity(plan.files.len());
    for f in &plan.files {
        match decoder.decrypt(&f.path, &f.bytes, f.format) {
            Ok(d) => docs.push(Some(d)),
            Err(e) => {
                problems.push(InstallError::File {
                    file: f.path.clone(),
                    source: e,
                });
                docs.push(None);
            }
        }
    }
    let mut values = Vec::with_capacity(plan.secrets.len());
    for s in &plan.secrets {
        let Some(doc) = &docs[s.file] else { continue };
        let f = &plan.files[s.file];
        let v = if f.format.keyed() && !s.key.is_empty() {
            doc.leaf(&s.key).map_err(|e| InstallError::Key {
                name: s.name.clone(),
                file: f.path.clone(),
                source: e,
            })
        } else {
            doc.whole().map_err(|e| InstallError::File {
                file: f.path.clone(),
                source: e,
            })
        };
        match v {
            Ok(v) => values.push(v),
            Err(e) => problems.push(e),
        }
    }
    match InstallError::from_list(problems) {
        Some(e) => Err(e),
        None => Ok(values),
    }
}

fn write_all(
    plan: &Plan,
    values: &[Zeroizing<Vec<u8>>],
    dir: &Path,
    owners: &Owners,
) -> Result<(), InstallError> {
    for (s, v) in plan.secrets.iter().zip(values) {
        generation::write_secret(dir, &s.name, v, s.mode, s.uid, s.gid, owners)?;
    }
    Ok(())
}
