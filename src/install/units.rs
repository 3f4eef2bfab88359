//! Which secrets changed, and who has to hear about it: the `adding/modifying/removing secret`
//! lines and the restart/reload requests of sops-nix's `handleModifications`.
//!
//! A secret is *changed* when it is new or its bytes differ from the current generation (owner
//! or mode alone do not count, as in sops-nix). Nothing is reported on first boot, when there is
//! no current generation yet (services start after secrets anyway). Requests go either to
//! `systemctl --no-block try-restart` / `try-reload-or-restart` (systemd-unit activation, where
//! blocking would deadlock) or are appended to `/run/nixos/activation-{restart,reload}-list` for
//! `switch-to-configuration` (`dry-activation-*` in a dry run). Unlike sops-nix, each unit is
//! requested once even when several of its secrets changed.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use zeroize::Zeroizing;

use super::error::{InstallError, io_err};

/// A secret of the new generation, as far as change detection is concerned.
pub struct NewSecret<'a> {
    /// Manifest name.
    pub name: &'a str,
    /// The bytes to be installed.
    pub value: &'a [u8],
    /// Units to try-restart on change.
    pub restart: &'a [String],
    /// Units to try-reload-or-restart on change.
    pub reload: &'a [String],
}

/// What differs between the current generation and the new one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// New secrets (sorted).
    pub added: Vec<String>,
    /// Secrets whose bytes changed (sorted).
    pub modified: Vec<String>,
    /// Secrets in the current generation but not in the manifest (sorted).
    pub removed: Vec<String>,
    /// Units to try-restart, each once, in manifest order.
    pub restart: Vec<String>,
    /// Units to try-reload-or-restart, each once, in manifest order.
    pub reload: Vec<String>,
}

/// Compares `new` with the generation behind `symlink`. `None` when there is none (first boot).
pub fn diff(
    symlink: &Path,
    new: &[NewSecret<'_>],
    find_removed: bool,
) -> Result<Option<Changes>, InstallError> {
    if fs::metadata(symlink).is_err() {
        return Ok(None);
    }
    let mut c = Changes::default();
    for s in new {
        let old = symlink.join(s.name);
        let changed = match read_old(&old) {
            Ok(bytes) if bytes.as_slice() == s.value => false,
            Ok(_) => {
                c.modified.push(s.name.to_string());
                true
            }
            Err(e) if is_absent(&e) => {
                c.added.push(s.name.to_string());
                true
            }
            Err(e) => return Err(io_err(old, "read the current secret")(e)),
        };
        if changed {
            push_unique(&mut c.restart, s.restart);
            push_unique(&mut c.reload, s.reload);
        }
    }
    if find_removed {
        let names: std::collections::HashSet<&str> = new.iter().map(|s| s.name).collect();
        let mut found = Vec::new();
        walk(symlink, "", &mut found)?;
        c.removed = found
            .into_iter()
            .filter(|n| !names.contains(n.as_str()))
            .collect();
    }
    c.added.sort();
    c.modified.sort();
    c.removed.sort();
    Ok(Some(c))
}

fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn read_old(p: &Path) -> io::Result<Zeroizing<Vec<u8>>> {
    let mut f = fs::File::open(p)?;
    let len = f.metadata()?.len();
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

fn push_unique(list: &mut Vec<String>, units: &[String]) {
    for u in units {
        if !list.contains(u) {
            list.push(u.clone());
        }
    }
}

/// Collects the file names below `dir` (relative, `/`-joined), not following inner symlinks.
fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), InstallError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir, "list the current secrets"))?;
    for e in entries {
        let e = e.map_err(io_err(dir, "list the current secrets"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let ft = e.file_type().map_err(io_err(e.path(), "inspect"))?;
        if ft.is_dir() {
            walk(&e.path(), &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// The sops-nix change lines (stdout), e.g. `adding secrets: a, b` or `would modify secret: x`.
pub fn report(c: &Changes, dry: bool) -> String {
    let mut out = String::new();
    for (list, verb, dry_verb) in [
        (&c.added, "adding", "would add"),
        (&c.modified, "modifying", "would modify"),
        (&c.removed, "removing", "would remove"),
    ] {
        if list.is_empty() {
            continue;
        }
        let plural = if list.len() == 1 { "" } else { "s" };
        let verb = if dry { dry_verb } else { verb };
        out.push_str(&format!("{verb} secret{plural}: {}\n", list.join(", ")));
    }
    out
}

/// Where restart/reload requests go.
pub enum Via {
    /// `systemctl --no-block …`.
    Systemctl,
    /// Append to `<dir>/activation-{restart,reload}-list` if `<dir>` (`/run/nixos`) exists.
    Lists(PathBuf),
}

/// Sends the requests of `c`. In a dry run, systemctl mode prints `would restart X` to stderr
/// and list mode writes the `dry-activation-*` lists.
pub fn request(c: &Changes, dry: bool, via: &Via) -> Result<(), InstallError> {
    match via {
        Via::Systemctl if dry => {
            for u in &c.restart {
                eprintln!("would restart {u}");
            }
            for u in &c.reload {
                eprintln!("would reload {u}");
            }
            Ok(())
        }
        Via::Systemctl => {
            systemctl("try-restart", &c.restart)?;
            systemctl("try-reload-or-restart", &c.reload)
        }
        Via::Lists(dir) => {
            let prefix = if dry { "dry-activation" } else { "activation" };
            append_list(dir, &format!("{prefix}-restart-list"), &c.restart)?;
            append_list(dir, &format!("{prefix}-reload-list"), &c.reload)
        }
    }
}

fn systemctl(verb: &str, units: &[String]) -> Result<(), InstallError> {
    if units.is_empty() {
        return Ok(());
    }
    let status = Command::new("systemctl")
        .arg("--no-block")
        .arg(verb)
        .args(units)
        .stdin(Stdio::null())
        .stdout(Stdio::from(io::stderr()))
        .status()
        .map_err(|e| InstallError::Systemctl(format!("cannot run systemctl: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(InstallError::Systemctl(format!(
            "'systemctl --no-block {verb} {}' failed ({status})",
            units.join(" ")
        )))
    }
}

fn append_list(dir: &Path, file: &str, units: &[String]) -> Result<(), InstallError> {
    if units.is_empty() || !dir.is_dir() {
        return Ok(());
    }
    let path = dir.join(file);
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&path)
        .map_err(io_err(&path, "open the unit list"))?;
    let mut text = String::new();
    for u in units {
        text.push_str(u);
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(io_err(&path, "append to the unit list"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_and_report() {
        let t = tempfile::tempdir().unwrap();
        let link = t.path().join("secrets");
        let no = |n| NewSecret {
            name: n,
            value: b"v",
            restart: &[],
            reload: &[],
        };
        assert_eq!(diff(&link, &[no("a")], true).unwrap(), None);
        fs::create_dir_all(link.join("d")).unwrap();
        fs::write(link.join("same"), b"v").unwrap();
        fs::write(link.join("changed"), b"old").unwrap();
        fs::write(link.join("d/gone"), b"x").unwrap();
        let r1 = vec!["a.service".to_string(), "b.service".to_string()];
        let r2 = vec!["b.service".to_string()];
        let rl = vec!["r.service".to_string()];
        let new = [
            NewSecret {
                name: "same",
                value: b"v",
                restart: &rl,
                reload: &rl,
            },
            NewSecret {
                name: "changed",
                value: b"new",
                restart: &r1,
                reload: &[],
            },
            NewSecret {
                name: "new",
                value: b"n",
                restart: &r2,
                reload: &[],
            },
        ];
        let c = diff(&link, &new, true).unwrap().unwrap();
        assert_eq!(c.added, vec!["new"]);
        assert_eq!(c.modified, vec!["changed"]);
        assert_eq!(c.removed, vec!["d/gone"]);
        assert_eq!(c.restart, vec!["a.service", "b.service"]);
        assert!(c.reload.is_empty());
        assert_eq!(
            report(&c, false),
            "adding secret: new\nmodifying secret: changed\nremoving secret: d/gone\n"
        );
        assert!(report(&c, true).starts_with("would add secret: new\nwould modify"));

        let lists = t.path().join("nixos");
        request(&c, false, &Via::Lists(lists.clone())).unwrap(); // missing dir: nothing
        assert!(!lists.exists());
        fs::create_dir(&lists).unwrap();
        request(&c, false, &Via::Lists(lists.clone())).unwrap();
        request(&c, true, &Via::Lists(lists.clone())).unwrap();
        assert_eq!(
            fs::read_to_string(lists.join("activation-restart-list")).unwrap(),
            "a.service\nb.service\n"
        );
        assert_eq!(
            fs::read_to_string(lists.join("dry-activation-restart-list")).unwrap(),
            "a.service\nb.service\n"
        );
        assert!(!lists.join("activation-reload-list").exists());
    }

    #[test]
    fn plural() {
        let c = Changes {
            added: vec!["a".into(), "b".into()],
            ..Changes::default()
        };
        assert_eq!(report(&c, false), "adding secrets: a, b\n");
    }
}
