//! The real mount: as root, in a private mount namespace (`unshare -m`), `install` mounts ramfs
//! (or tmpfs with `useTmpfs`) on the mount point with `nodev,nosuid,noexec,mode=0751` and the
//! secrets live there. Skipped (with a notice) when not root or the kernel refuses the namespace.

use std::fs;
use std::process::Command;

use crate::install_common::{Fixture, secret};
use crate::util::{BIN, peer};

fn in_namespace(f: &Fixture, manifest: &std::path::Path) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the ramfs mount test needs root");
        return None;
    }
    let unshare = peer("UNSHARE_BIN", "unshare")?;
    let probe = Command::new(&unshare).args(["-m", "true"]).status().ok()?;
    if !probe.success() {
        eprintln!("skipped: unshare -m is not permitted here");
        return None;
    }
    let script = format!(
        "'{bin}' install --root '{root}' '{m}' || exit $?; \
         grep ' {root}/run/secrets.d ' /proc/self/mountinfo; \
         cat '{root}/run/secrets/top'",
        bin = BIN,
        root = f.root.display(),
        m = manifest.display()
    );
    let out = Command::new(&unshare)
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

fn fixture(tmpfs: bool) -> Option<(Fixture, std::path::PathBuf)> {
    let f = Fixture::new()?;
    let y = f.encrypt("s.yaml", "yaml", b"top: in-ramfs\n");
    let m = f.manifest("m.json", vec![secret("top", &y, "yaml", "top", "0400")], 1);
    if tmpfs {
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
        v["useTmpfs"] = true.into();
        fs::write(&m, serde_json::to_vec(&v).unwrap()).unwrap();
    }
    Some((f, m))
}

#[test]
fn mounts_ramfs_in_a_private_namespace() {
    let Some((f, m)) = fixture(false) else { return };
    let Some(out) = in_namespace(&f, &m) else {
        return;
    };
    let (mountinfo, secret) = out.split_once('\n').unwrap();
    assert!(mountinfo.contains(" - ramfs "), "{mountinfo}");
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(mountinfo.contains(opt), "{opt}: {mountinfo}");
    }
    assert!(mountinfo.contains("mode=751"), "{mountinfo}");
    assert_eq!(secret, "in-ramfs");
    // Outside the namespace the ramfs is gone: the generation directory is empty.
    assert!(
        fs::read_dir(f.p("/run/secrets.d"))
            .unwrap()
            .next()
            .is_none(),
        "secrets were written to disk instead of the ramfs"
    );
}

#[test]
fn mounts_tmpfs_when_asked() {
    let Some((f, m)) = fixture(true) else { return };
    let Some(out) = in_namespace(&f, &m) else {
        return;
    };
    let (mountinfo, secret) = out.split_once('\n').unwrap();
    assert!(mountinfo.contains(" - tmpfs "), "{mountinfo}");
    assert!(mountinfo.contains("noexec"), "{mountinfo}");
    assert_eq!(secret, "in-ramfs");
}
