//! End-to-end tests of `tskeyctl install` with sops files made by the real sops at test time:
//! every format, exact bytes/modes/symlinks, generations and pruning, units of changed secrets,
//! all-or-nothing failures with the contract's exit codes, `--check`, dry-activate.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::install_common::{Fixture, secret};
use crate::util::{mode, stderr};

const YAML: &[u8] = b"app:\n  db:\n    password: yaml-nested-secret\ntop: top-value\nnum: 5\n";
const JSON: &[u8] = br#"{"svc": {"token": "json-nested-token"}, "flat": "json-flat"}"#;
const DOTENV: &[u8] = b"# a comment\nTS_AUTHKEY=tskey-auth-abc\nMULTI=x\n";
const INI: &[u8] = b"[oauth]\nclient_id = k123\nclient_secret = tskey-client-k123-s\n";
const BIN: &[u8] = b"binary_value\n\x00\x01 end";

struct Files {
    yaml: String,
    json: String,
    env: String,
    ini: String,
    bin: String,
}

fn files(f: &Fixture) -> Files {
    Files {
        yaml: f.encrypt("secrets.yaml", "yaml", YAML),
        json: f.encrypt("secrets.json", "json", JSON),
        env: f.encrypt("secrets.env", "dotenv", DOTENV),
        ini: f.encrypt("secrets.ini", "ini", INI),
        bin: f.encrypt("secrets.bin", "binary", BIN),
    }
}

fn with_units(mut s: Value, restart: &[&str], reload: &[&str]) -> Value {
    s["restartUnits"] = restart.iter().map(|u| Value::from(*u)).collect();
    s["reloadUnits"] = reload.iter().map(|u| Value::from(*u)).collect();
    s
}

fn all_secrets(fs_: &Files) -> Vec<Value> {
    let mut token = secret("svc/token", &fs_.json, "json", "svc/token", "0440");
    token["path"] = "/etc/svc/token".into();
    vec![
        with_units(
            secret("db/password", &fs_.yaml, "yaml", "app/db/password", "0400"),
            &["db.service"],
            &[],
        ),
        secret("top", &fs_.yaml, "yaml", "top", "0640"),
        secret("whole.yaml", &fs_.yaml, "yaml", "", "0600"),
        with_units(token, &["svc.service"], &["svc-reload.service"]),
        secret("flat", &fs_.json, "json", "flat", "0604"),
        with_units(
            secret("ts.env", &fs_.env, "dotenv", "ignored", "0400"),
            &["ts.service"],
            &[],
        ),
        secret("oauth.ini", &fs_.ini, "ini", "", "0400"),
        // 0000 only as root: an unprivileged owner could not read its own file back.
        secret("blob", &fs_.bin, "binary", "", blob_mode()),
    ]
}

fn blob_mode() -> &'static str {
    if nix::unistd::geteuid().is_root() {
        "0000"
    } else {
        "0400"
    }
}

#[test]
fn installs_every_format_then_generation_two_with_units() {
    let Some(f) = Fixture::new() else { return };
    let fs_ = files(&f);
    let m = f.manifest("m.json", all_secrets(&fs_), 1);
    let out = f.install(&m, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "first install reports nothing");

    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/1")
    );
    let s = |n: &str| fs::read(f.p("/run/secrets").join(n)).unwrap();
    assert_eq!(s("db/password"), b"yaml-nested-secret");
    assert_eq!(s("top"), b"top-value");
    assert_eq!(s("svc/token"), b"json-nested-token");
    assert_eq!(s("flat"), b"json-flat");
    assert_eq!(s("blob"), BIN);
    // Whole files: byte for byte what `sops -d` prints.
    assert_eq!(
        s("whole.yaml"),
        f.sops_decrypt("secrets.yaml", "yaml", None)
    );
    assert_eq!(s("ts.env"), f.sops_decrypt("secrets.env", "dotenv", None));
    assert_eq!(s("oauth.ini"), f.sops_decrypt("secrets.ini", "ini", None));
    assert_eq!(s("ts.env"), DOTENV);
    // Exact modes (umask 077 must not filter them).
    let gen1 = f.p("/run/secrets.d/1");
    for (n, want) in [
        ("db/password", 0o400),
        ("top", 0o640),
        ("whole.yaml", 0o600),
        ("svc/token", 0o440),
        ("flat", 0o604),
        ("blob", u32::from_str_radix(blob_mode(), 8).unwrap()),
    ] {
        assert_eq!(mode(&gen1.join(n)), want, "{n}");
    }
    assert_eq!(mode(&gen1), 0o751);
    assert_eq!(mode(&gen1.join("db")), 0o751);
    // `path` elsewhere: a symlink to the stable /run/secrets/<name>.
    assert_eq!(
        fs::read_link(f.p("/etc/svc/token")).unwrap(),
        f.p("/run/secrets/svc/token")
    );
    assert!(!f.p("/run/secrets/db/password").is_symlink());

    // Second run: the yaml file changes one value; the others stay.
    let changed = String::from_utf8(YAML.to_vec())
        .unwrap()
        .replace("yaml-nested-secret", "rotated");
    f.encrypt("secrets.yaml", "yaml", changed.as_bytes());
    let bin = f.fake_systemctl();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = f.install(
        &m,
        &[
            ("PATH", OsStr::new(&path)),
            ("TSKEYCTL_RESTART_VIA_SYSTEMCTL", OsStr::new("1")),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/2")
    );
    assert!(
        !f.p("/run/secrets.d/1").exists(),
        "keepGenerations=1 prunes generation 1"
    );
    assert_eq!(
        fs::read(f.p("/run/secrets/db/password")).unwrap(),
        b"rotated"
    );
    // whole.yaml changed too (same file); nothing else did.
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "modifying secrets: db/password, whole.yaml\n"
    );
    assert_eq!(f.systemctl_log(), "--no-block try-restart db.service\n");
    assert!(!f.p("/run/nixos/activation-restart-list").exists());

    // Third run without systemctl: nothing changed → nothing queued; a removed secret is reported.
    let mut fewer = all_secrets(&fs_);
    fewer.retain(|s| s["name"] != "blob");
    let m2 = f.manifest("m2.json", fewer, 2);
    let out = f.install(&m2, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "removing secret: blob\n"
    );
    assert!(!f.p("/run/nixos/activation-restart-list").exists());
    assert!(
        f.p("/run/secrets.d/2").exists(),
        "keepGenerations=2 keeps generation 2"
    );
    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/3")
    );

    // A new secret queues its units in the activation list.
    let mut more = all_secrets(&fs_);
    more.push(with_units(
        secret("new", &fs_.json, "json", "flat", "0400"),
        &["new.service"],
        &["new-reload.service"],
    ));
    let m3 = f.manifest("m3.json", more, 1);
    let out = f.install(&m3, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "adding secrets: blob, new\n"
    );
    assert_eq!(
        fs::read_to_string(f.p("/run/nixos/activation-restart-list")).unwrap(),
        "new.service\n"
    );
    assert_eq!(
        fs::read_to_string(f.p("/run/nixos/activation-reload-list")).unwrap(),
        "new-reload.service\n"
    );
}

/// Installs generation 1 and returns the fixture with its files.
fn installed() -> Option<(Fixture, Files)> {
    let f = Fixture::new()?;
    let fs_ = files(&f);
    let m = f.manifest("ok.json", all_secrets(&fs_), 1);
    let out = f.install(&m, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    Some((f, fs_))
}

fn assert_unchanged(f: &Fixture) {
    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/1")
    );
    assert!(!f.p("/run/secrets.d/2").exists());
    assert_eq!(
        fs::read(f.p("/run/secrets/db/password")).unwrap(),
        b"yaml-nested-secret"
    );
}

#[test]
fn one_bad_secret_changes_nothing() {
    let Some((f, fs_)) = installed() else { return };
    let foreign = f.foreign_recipient();
    let locked = f.encrypt_to("locked.yaml", "yaml", b"k: v\n", &foreign);
    let mut bad_owner = secret("o", &fs_.yaml, "yaml", "top", "0400");
    bad_owner["owner"] = "no-such-user-tskeyctl".into();
    let mut bad_group = secret("g", &fs_.yaml, "yaml", "top", "0400");
    bad_group["group"] = "no-such-group-tskeyctl".into();
    let cases: Vec<(&str, Value, i32, &str)> = vec![
        (
            "missing key",
            secret("x", &fs_.yaml, "yaml", "app/nope", "0400"),
            78,
            "the key 'app/nope' cannot be found",
        ),
        (
            "not a string",
            secret("x", &fs_.yaml, "yaml", "app/db", "0400"),
            78,
            "is not a string",
        ),
        (
            "bad mode",
            secret("x", &fs_.yaml, "yaml", "top", "0999"),
            78,
            "mode \"0999\"",
        ),
        (
            "unknown owner",
            bad_owner,
            78,
            "owner 'no-such-user-tskeyctl' does not exist",
        ),
        (
            "unknown group",
            bad_group,
            78,
            "group 'no-such-group-tskeyctl' does not exist",
        ),
        (
            "undecryptable",
            secret("x", &locked, "yaml", "k", "0400"),
            77,
            "locked.yaml",
        ),
        (
            "missing file",
            secret("x", "/src/none.yaml", "yaml", "k", "0400"),
            66,
            "none.yaml",
        ),
    ];
    for (what, bad, code, msg) in cases {
        let mut secrets = all_secrets(&fs_);
        secrets.push(bad);
        let m = f.manifest("bad.json", secrets, 1);
        let out = f.install(&m, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{what}: {err}");
        assert!(err.contains(msg), "{what}: {err}");
        assert!(
            !err.contains("yaml-nested-secret") && !err.contains("top-value"),
            "{err}"
        );
        assert_unchanged(&f);
    }
}

#[test]
fn malformed_sops_file_is_65_and_check_finds_it_without_keys() {
    let Some((f, fs_)) = installed() else { return };
    fs::write(f.p("/src/broken.yaml"), b"a: [unclosed\n").unwrap();
    let mut secrets = all_secrets(&fs_);
    secrets.push(secret("x", "/src/broken.yaml", "yaml", "a", "0400"));
    let m = f.manifest("bad.json", secrets, 1);
    let out = f.install(&m, &[]);
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    assert_unchanged(&f);

    // --check: no key file needed; a good manifest passes, missing keys and bad files fail.
    fs::remove_file(f.p("/var/lib/sops-nix/key.txt")).unwrap();
    let root = f.root.as_os_str();
    let good = f.manifest("good.json", all_secrets(&fs_), 1);
    let out = f.run(
        &[
            "--check".as_ref(),
            "--root".as_ref(),
            root,
            good.as_os_str(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = f.run(
        &["--check".as_ref(), "--root".as_ref(), root, m.as_os_str()],
        &[],
    );
    assert_eq!(out.status.code(), Some(65), "{}", stderr(&out));
    let mut missing = all_secrets(&fs_);
    missing.push(secret("x", &fs_.json, "json", "svc/nope", "0400"));
    let mk = f.manifest("missing.json", missing, 1);
    let out = f.run(
        &["--check".as_ref(), "--root".as_ref(), root, mk.as_os_str()],
        &[],
    );
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the key 'svc/nope' cannot be found"),
        "{}",
        stderr(&out)
    );
    assert_unchanged(&f);
}

#[test]
fn dry_activate_reports_and_changes_nothing() {
    let Some((f, fs_)) = installed() else { return };
    let changed = String::from_utf8(YAML.to_vec())
        .unwrap()
        .replace("top-value", "new-top");
    f.encrypt("secrets.yaml", "yaml", changed.as_bytes());
    let mut secrets = all_secrets(&fs_);
    secrets.retain(|s| s["name"] != "flat");
    let m = f.manifest("dry.json", secrets, 1);
    let out = f.install(&m, &[("NIXOS_ACTION", OsStr::new("dry-activate"))]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "would modify secrets: top, whole.yaml\nwould remove secret: flat\n"
    );
    assert!(!f.p("/run/nixos/activation-restart-list").exists());
    assert_unchanged(&f);
}

#[test]
fn manifest_problems_have_their_codes() {
    let Some(f) = Fixture::new() else { return };
    let p = f.scratch.join("x.json");
    fs::write(&p, b"{not json").unwrap();
    assert_eq!(f.install(&p, &[]).status.code(), Some(65));
    assert_eq!(
        f.install(&f.scratch.join("absent.json"), &[]).status.code(),
        Some(66)
    );
    fs::write(
        &p,
        br#"{"secrets":[],"sshKeyPaths":["/etc/ssh/ssh_host_rsa_key"]}"#,
    )
    .unwrap();
    let out = f.install(&p, &[]);
    assert_eq!(out.status.code(), Some(78));
    assert!(stderr(&out).contains("no PGP"), "{}", stderr(&out));
    fs::write(&p, br#"{"secrets":[],"futureOption":1}"#).unwrap();
    let out = f.install(&p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("unknown field 'futureOption' ignored"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn relative_root_still_makes_working_links() {
    let Some(f) = Fixture::new() else { return };
    let y = f.encrypt("s.yaml", "yaml", b"top: rel\n");
    let mut s = secret("top", &y, "yaml", "top", "0400");
    s["path"] = "/etc/top".into();
    let m = f.manifest("m.json", vec![s], 1);
    let parent = f.root.parent().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tskeyctl"))
        .current_dir(parent)
        .args(["install", "--root", "root", "--no-mount"])
        .arg(&m)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/1")
    );
    assert!(fs::read_link(f.p("/run/secrets")).unwrap().is_absolute());
    assert_eq!(fs::read(f.p("/etc/top")).unwrap(), b"rel");
}

#[test]
fn owners_by_name_as_root() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: owner/group by name needs root");
        return;
    }
    let Some(f) = Fixture::new() else { return };
    let (Some(user), Some(group)) = (
        nix::unistd::User::from_name("nobody").unwrap(),
        nix::unistd::Group::from_name("nogroup").unwrap(),
    ) else {
        eprintln!("skipped: no nobody/nogroup on this system");
        return;
    };
    let y = f.encrypt("s.yaml", "yaml", b"a: owned\n");
    let mut s = secret("owned", &y, "yaml", "a", "0440");
    s["owner"] = "nobody".into();
    s["group"] = "nogroup".into();
    s["path"] = "/var/lib/app/owned".into();
    let m = f.manifest("m.json", vec![s], 1);
    let out = f.install(&m, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::metadata(f.p("/run/secrets/owned")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (user.uid.as_raw(), group.gid.as_raw())
    );
    assert_eq!(meta.mode() & 0o7777, 0o440);
    // The `path` link itself is lchown'd to the secret's owner, like sops-nix.
    let link = fs::symlink_metadata(f.p("/var/lib/app/owned")).unwrap();
    assert!(link.file_type().is_symlink());
    assert_eq!(
        (link.uid(), link.gid()),
        (user.uid.as_raw(), group.gid.as_raw())
    );
    // Generation directories are root:keys (or root:nogroup where there is no keys group).
    let keys = nix::unistd::Group::from_name("keys")
        .unwrap()
        .map_or(group.gid.as_raw(), |g| g.gid.as_raw());
    let gen_dir = fs::metadata(f.p("/run/secrets.d/1")).unwrap();
    assert_eq!((gen_dir.uid(), gen_dir.gid()), (0, keys));
}

#[test]
fn ignore_passwd_makes_everything_root_owned() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: --ignore-passwd installs root-owned files, which needs root");
        return;
    }
    let Some(f) = Fixture::new() else { return };
    let y = f.encrypt("s.yaml", "yaml", b"pw: hash\n");
    let mut s = secret("pw", &y, "yaml", "pw", "0400");
    s["owner"] = "user-created-later".into();
    s["uid"] = 1234.into();
    let m = f.manifest("m.json", vec![s], 1);
    let out = f.run(
        &[
            "--ignore-passwd".as_ref(),
            "--no-mount".as_ref(),
            "--root".as_ref(),
            f.root.as_os_str(),
            m.as_os_str(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let meta = fs::metadata(f.p("/run/secrets/pw")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    let gen_dir = fs::metadata(f.p("/run/secrets.d/1")).unwrap();
    assert_eq!((gen_dir.uid(), gen_dir.gid()), (0, 0));
    // Without the flag the unknown owner is refused before anything changes.
    let out = f.install(&m, &[]);
    assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
    assert_eq!(
        fs::read_link(f.p("/run/secrets")).unwrap(),
        f.p("/run/secrets.d/1")
    );
}
