//! All-or-nothing validation: turns a manifest into a [`Plan`] or into the full list of what is
//! wrong with it, before anything on disk is touched.
//!
//! Checked here, in this order, collecting every problem: unsupported options (PGP, templates,
//! user mode); each secret's name (relative, no `.`/`..`, no clashes such as `a` and `a/b`),
//! mode (octal permission bits, at most 0777), format, `path` (plain, inside the root, no target
//! shared with another secret: see [`super::paths`]), owner and group (ids in range; names looked up unless in
//! `--check` or dry-activate mode, where — as in sops-nix — the build sandbox or a pre-user
//! activation has no passwd); then each sops file once: read, one format per file, parsed in its
//! format, and every `key` present. Decryption comes later (see `super`).

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use crate::perm::{self, PermError};
use crate::source::{self, Origin};

use super::error::InstallError;
use super::files::{Format, SecretFiles};
use super::manifest::{Manifest, Secret};
use super::paths;

/// Largest sops file read (sops-nix has no limit; 64 MiB bounds memory).
pub const SOPS_FILE_LIMIT: u64 = 64 << 20;

/// A validated secret.
#[derive(Debug, Clone)]
pub struct PlannedSecret {
    /// The manifest name (relative path below the generation).
    pub name: String,
    /// Lookup key (yaml/json only; empty = whole file).
    pub key: String,
    /// Index into [`Plan::files`].
    pub file: usize,
    /// Exact permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Extra symlink `path → <symlinkPath>/<name>` when `path` is elsewhere.
    pub link: Option<PathBuf>,
    /// Units to try-restart on change.
    pub restart_units: Vec<String>,
    /// Units to try-reload-or-restart on change.
    pub reload_units: Vec<String>,
}

/// A sops file, read once (its bytes are ciphertext plus plaintext key names, not secrets).
#[derive(Debug)]
pub struct SopsFile {
    /// Path after `--root`.
    pub path: PathBuf,
    /// Its one format.
    pub format: Format,
    /// The encrypted bytes.
    pub bytes: Vec<u8>,
}

/// Everything the install needs, validated and with `--root` applied.
#[derive(Debug)]
pub struct Plan {
    /// Where the generations live.
    pub mount_point: PathBuf,
    /// The symlink to the current generation.
    pub symlink_path: PathBuf,
    /// Generations to keep (0 = all).
    pub keep: u64,
    /// tmpfs+noswap instead of ramfs.
    pub use_tmpfs: bool,
    /// Log imported keys.
    pub log_key_import: bool,
    /// Print `adding secret: …` lines.
    pub log_changes: bool,
    /// The sops files, each once.
    pub files: Vec<SopsFile>,
    /// The secrets, in manifest order.
    pub secrets: Vec<PlannedSecret>,
    /// `ageKeyFile`, rooted.
    pub age_key_file: Option<PathBuf>,
    /// `ageSshKeyPaths`, rooted.
    pub age_ssh_key_paths: Vec<PathBuf>,
}

/// How to validate.
pub struct Context<'a> {
    /// The manifest file (for messages).
    pub manifest_path: &'a Path,
    /// `--root`: prefix for every absolute path.
    pub root: Option<&'a Path>,
    /// Look owners and groups up by name (off in `--check` and dry-activate).
    pub resolve_owners: bool,
}

/// `p` with `root` prefixed when `p` is absolute.
pub fn rooted(root: Option<&Path>, p: &str) -> PathBuf {
    match root {
        Some(r) if p.starts_with('/') => r.join(p.trim_start_matches('/')),
        _ => PathBuf::from(p),
    }
}

/// Validates `m` and reads and inspects its sops files through `files`.
pub fn validate(
    m: &Manifest,
    ctx: &Context<'_>,
    files: &mut dyn SecretFiles,
) -> Result<Plan, InstallError> {
    let mut problems = Vec::new();
    let unsupported = |what: &str| InstallError::Unsupported {
        path: ctx.manifest_path.to_path_buf(),
        what: what.to_string(),
    };
    if m.ssh_key_paths.as_ref().is_some_and(|v| !v.is_empty()) {
        problems.push(unsupported(
            "sshKeyPaths (RSA ssh keys as PGP keys) is not supported: tskeyctl has no PGP; \
             re-encrypt the files to the host's age recipient (`tskeyctl recipient`) and use ageSshKeyPaths",
        ));
    }
    if m.gnupg_home.as_ref().is_some_and(|s| !s.is_empty()) {
        problems.push(unsupported(
            "gnupgHome is not supported: tskeyctl has no PGP; use age recipients (ageKeyFile / ageSshKeyPaths)",
        ));
    }
    if !m.templates.is_empty() {
        problems.push(unsupported(
            "templates are not supported by tskeyctl install; keep sops-install-secrets for them",
        ));
    }
    if m.user_mode {
        problems.push(unsupported(
            "userMode (home-manager) is not supported: tskeyctl install sets up system secrets",
        ));
    }
    for (field, v) in [
        ("secretsMountPoint", &m.secrets_mount_point),
        ("symlinkPath", &m.symlink_path),
    ] {
        if let Err(why) = paths::check_abs(field, v) {
            problems.push(unsupported(&why));
        }
    }
    for (field, v) in m
        .age_key_file
        .iter()
        .filter(|s| !s.is_empty())
        .map(|s| ("ageKeyFile", s))
        .chain(
            m.age_ssh_key_paths
                .iter()
                .flatten()
                .map(|s| ("ageSshKeyPaths", s)),
        )
    {
        if let Err(why) = paths::check_abs(field, v) {
            problems.push(unsupported(&why));
        }
    }

    let mut secrets = Vec::new();
    let mut by_file: HashMap<PathBuf, usize> = HashMap::new();
    let mut file_list: Vec<(PathBuf, Format, String)> = Vec::new();
    let mut names = HashSet::new();
    let mut links = HashSet::new();
    for s in &m.secrets {
        match plan_secret(s, m, ctx) {
            Ok((mut p, format, sops_path)) => {
                if !names.insert(p.name.clone()) {
                    problems.push(secret_err(&p.name, "the name is used by another secret"));
                    continue;
                }
                if let Some(l) = &p.link {
                    if !links.insert(l.clone()) {
                        problems.push(secret_err(
                            &p.name,
                            format!("path {} is used by another secret", l.display()),
                        ));
                        continue;
                    }
                }
                let idx = *by_file.entry(sops_path.clone()).or_insert_with(|| {
                    file_list.push((sops_path.clone(), format, p.name.clone()));
                    file_list.len() - 1
                });
                let (_, first_format, first_name) = &file_list[idx];
                if *first_format != format {
                    problems.push(secret_err(
                        &p.name,
                        format!(
                            "{} is declared as {} here but as {} by secret '{}'; one file has one format",
                            sops_path.display(),
                            format.name(),
                            first_format.name(),
                            first_name
                        ),
                    ));
                    continue;
                }
                p.file = idx;
                secrets.push(p);
            }
            Err(e) => problems.push(e),
        }
    }
    // `a` and `a/b` cannot both be files.
    for n in &names {
        let mut prefix = String::new();
        for comp in n.split('/').take(n.split('/').count() - 1) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            if names.contains(&prefix) {
                problems.push(secret_err(
                    n,
                    format!("secret '{prefix}' is a file, so it cannot also be a directory"),
                ));
            }
        }
    }

    problems.extend(shared_targets(m));

    // Each sops file once: read, parse, check the keys of its secrets.
    let mut sops_files = Vec::new();
    for (idx, (path, format, _)) in file_list.into_iter().enumerate() {
        let bytes =
            match source::read_limited(&Origin::File(path.clone()), SOPS_FILE_LIMIT, "a sops file")
            {
                Ok(b) => b.to_vec(),
                Err(e) => {
                    problems.push(e.into());
                    continue;
                }
            };
        match files.inspect(&path, &bytes, format) {
            Ok(index) => {
                for s in secrets.iter().filter(|s| s.file == idx) {
                    if format.keyed() && !s.key.is_empty() {
                        if let Err(e) = index.check(&s.key) {
                            problems.push(InstallError::Key {
                                name: s.name.clone(),
                                file: path.clone(),
                                source: e,
                            });
                        }
                    }
                }
            }
            Err(e) => problems.push(InstallError::File {
                file: path.clone(),
                source: e,
            }),
        }
        sops_files.push(SopsFile {
            path,
            format,
            bytes,
        });
    }
    if let Some(e) = InstallError::from_list(problems) {
        return Err(e);
    }
    Ok(Plan {
        mount_point: rooted(ctx.root, &m.secrets_mount_point),
        symlink_path: rooted(ctx.root, &m.symlink_path),
        keep: m.keep_generations,
        use_tmpfs: m.use_tmpfs,
        log_key_import: m.logging.key_import,
        log_changes: m.logging.secret_changes,
        files: sops_files,
        secrets,
        age_key_file: m
            .age_key_file
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| rooted(ctx.root, s)),
        age_ssh_key_paths: m
            .age_ssh_key_paths
            .iter()
            .flatten()
            .map(|s| rooted(ctx.root, s))
            .collect(),
    })
}

fn secret_err(name: &str, reason: impl Into<String>) -> InstallError {
    InstallError::Secret {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn plan_secret(
    s: &Secret,
    m: &Manifest,
    ctx: &Context<'_>,
) -> Result<(PlannedSecret, Format, PathBuf), InstallError> {
    check_name(&s.name).map_err(|r| secret_err(&s.name, r))?;
    for u in s.restart_units.iter().chain(&s.reload_units) {
        check_unit(u).map_err(|r| secret_err(&s.name, format!("unit {u:?} {r}")))?;
    }
    let mode = perm::parse_mode(&s.mode).map_err(|e| secret_err(&s.name, format!("mode {e}")))?;
    let format = Format::from_manifest(&s.format).ok_or_else(|| {
        secret_err(
            &s.name,
            format!(
                "format {:?} is not one of yaml, json, binary, dotenv, ini",
                s.format
            ),
        )
    })?;
    paths::check_abs("sopsFile", &s.sops_file).map_err(|r| secret_err(&s.name, r))?;
    let default_path = format!("{}/{}", m.symlink_path.trim_end_matches('/'), s.name);
    let link = match s.path.as_deref() {
        None | Some("") => None,
        Some(p) if p == default_path => None,
        Some(p) => {
            paths::check_abs("path", p).map_err(|r| secret_err(&s.name, r))?;
            let r = rooted(ctx.root, p);
            if !paths::inside(ctx.root, &r) {
                return Err(secret_err(
                    &s.name,
                    format!("path {p:?} lies outside the root"),
                ));
            }
            Some(r)
        }
    };
    // Ids are checked even where names are not looked up: (uid_t)-1 would mean "no change".
    let ids = |what: &str, e: PermError| secret_err(&s.name, format!("{what} {e}"));
    let uid = perm::check_id(s.uid).map_err(|e| ids("uid", e))?;
    let gid = perm::check_id(s.gid).map_err(|e| ids("gid", e))?;
    let (uid, gid) = if ctx.resolve_owners {
        (resolve_user(s, uid)?, resolve_group(s, gid)?)
    } else {
        (0, 0)
    };
    Ok((
        PlannedSecret {
            name: s.name.clone(),
            key: s.key.clone(),
            file: 0,
            mode,
            uid,
            gid,
            link,
            restart_units: s.restart_units.clone(),
            reload_units: s.reload_units.clone(),
        },
        format,
        rooted(ctx.root, &s.sops_file),
    ))
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains control characters".into());
    }
    if name.starts_with('/') {
        return Err("the name must be relative (it is a path below the secrets directory)".into());
    }
    let bad = name
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
        || Path::new(name)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)));
    if bad {
        return Err("the name must not contain empty, '.' or '..' components".into());
    }
    Ok(())
}

/// A unit name goes on systemctl's command line and into line-based lists: no option lookalikes,
/// no blanks or control characters.
fn check_unit(u: &str) -> Result<(), &'static str> {
    if u.is_empty() {
        Err("is empty")
    } else if u.starts_with('-') {
        Err("must not start with '-'")
    } else if u.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("must not contain blanks or control characters")
    } else {
        Ok(())
    }
}

/// Secrets whose targets (`<symlinkPath>/<name>`, and `path` when given) are equal or nested, or
/// a `path` at the symlink itself or among the generations.
fn shared_targets(m: &Manifest) -> Vec<InstallError> {
    let base = m.symlink_path.trim_end_matches('/');
    let default_of = |s: &Secret| format!("{base}/{}", s.name);
    let mut problems = Vec::new();
    for (i, s) in m.secrets.iter().enumerate() {
        let Some(p) = s
            .path
            .as_deref()
            .filter(|p| !p.is_empty() && *p != default_of(s))
        else {
            continue;
        };
        if paths::overlaps(p, &m.secrets_mount_point) || p == base {
            problems.push(secret_err(
                &s.name,
                format!("path {p:?} is the secrets symlink or inside the generations directory"),
            ));
            continue;
        }
        for (j, o) in m.secrets.iter().enumerate() {
            if i == j {
                if paths::overlaps(p, &default_of(s)) {
                    problems.push(secret_err(
                        &s.name,
                        format!("path {p:?} overlaps the secret's own file"),
                    ));
                }
                continue;
            }
            let other = default_of(o);
            if paths::overlaps(p, &other) {
                problems.push(secret_err(
                    &s.name,
                    format!(
                        "path {p:?} is also the target of secret '{}' ({other})",
                        o.name
                    ),
                ));
            }
        }
    }
    problems
}

fn owner_err(s: &Secret, what: &str, name: &str, e: PermError) -> InstallError {
    let reason = match e {
        PermError::NoUser(_) | PermError::NoGroup(_) => format!(
            "{what} '{name}' does not exist on this system; create it before installing \
             (or give a numeric {} with {what} = null)",
            if what == "owner" { "uid" } else { "gid" }
        ),
        e => format!("{what} '{name}': {e}"),
    };
    secret_err(&s.name, reason)
}

fn resolve_user(s: &Secret, uid: u32) -> Result<u32, InstallError> {
    match s.owner.as_deref() {
        None => Ok(uid),
        Some(name) => perm::resolve_user(name).map_err(|e| owner_err(s, "owner", name, e)),
    }
}

fn resolve_group(s: &Secret, gid: u32) -> Result<u32, InstallError> {
    match s.group.as_deref() {
        None => Ok(gid),
        Some(name) => perm::resolve_group(name).map_err(|e| owner_err(s, "group", name, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_name("a").is_ok());
        assert!(check_name("a/b/c").is_ok());
        for bad in ["", "/a", "a/../b", "a//b", "./a", "a/", "..", "a\nb", "a\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn units() {
        assert!(check_unit("tailscaled-autoconnect.service").is_ok());
        assert!(check_unit("user@1000.service").is_ok());
        for bad in ["", "--force", "a b", "a\nb"] {
            assert!(check_unit(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rooting() {
        let r = Path::new("/tmp/r");
        assert_eq!(
            rooted(Some(r), "/run/secrets"),
            PathBuf::from("/tmp/r/run/secrets")
        );
        assert_eq!(rooted(None, "/run/secrets"), PathBuf::from("/run/secrets"));
        assert_eq!(rooted(Some(r), "rel"), PathBuf::from("rel"));
    }
}
