//! Issue 15, "their .sops.yaml" and "their habits": `recipient --add-to` edits `.sops.yaml` as
//! text (new rule first, everything else byte for byte, the real sops picks the rule), the
//! host-keys-only warning, `cat key.pub | tskeyctl recipient` (and `identity`) reading a piped
//! stdin while a terminal or /dev/null still means the host key, and `updatekeys` printing the
//! recipient diff, asking unless -y, and leaving an up-to-date file alone.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::util::{BIN, code, output, peer, repo, s, stderr};

fn tsk(args: &[&str], dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(dir)
        .env("HOME", "/nonexistent-tskeyctl-test-home");
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "SOPS_AGE_SSH_PRIVATE_KEY_FILE",
        "SOPS_AGE_KEY_CMD",
        "SSH_TO_AGE_PASSPHRASE",
    ] {
        c.env_remove(v);
    }
    c
}

fn run(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> Output {
    output(tsk(args, dir), stdin)
}

/// An ssh ed25519 key pair in `dir`: (private key path, its age1 recipient).
fn keypair(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", s(&key)])
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
    let o = run(&["recipient", s(&key.with_extension("pub"))], dir, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (
        key,
        String::from_utf8(o.stdout)
            .expect("utf8")
            .trim()
            .to_string(),
    )
}

/// The age recipients a sops file's metadata names, in order.
fn recipients_of(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .expect("read")
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("- recipient: ")
                .or(l.trim().strip_prefix("recipient: "))
        })
        .map(str::to_string)
        .collect()
}

fn rule(regex: &str, recipients: &[&str]) -> String {
    let mut s = format!("  - path_regex: {regex}\n    key_groups:\n      - age:\n");
    for r in recipients {
        s.push_str(&format!("          - {r}\n"));
    }
    s
}

#[test]
fn add_to_creates_then_extends_and_sops_picks_the_rule() {
    let Some(sops) = peer("SOPS_BIN", "sops") else {
        return;
    };
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let (host, host_r) = keypair(d, "host");
    let (_me, me_r) = keypair(d, "me");
    let (_other, other_r) = keypair(d, "other");
    let cfg = d.join(".sops.yaml");
    let host_pub = host.with_extension("pub");

    // Missing: created, with both recipients; no warning since --also is there.
    let o = run(
        &[
            "recipient",
            "--add-to",
            ".sops.yaml",
            "--path-regex",
            "^web1/.*",
            "--also",
            &me_r,
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    assert_eq!(
        fs::read_to_string(&cfg).expect("read"),
        format!("creation_rules:\n{}", rule("'^web1/.*'", &[&host_r, &me_r]))
    );

    // The same path_regex again with another key: appended to that rule.
    let o = run(
        &[
            "recipient",
            "--add-to",
            ".sops.yaml",
            "--path-regex",
            "^web1/.*",
            "--also",
            &other_r,
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let extended = format!(
        "creation_rules:\n{}",
        rule("'^web1/.*'", &[&host_r, &me_r, &other_r])
    );
    assert_eq!(fs::read_to_string(&cfg).expect("read"), extended);
    // And once more: nothing to add, the file is not rewritten.
    let mtime = fs::metadata(&cfg).expect("meta").modified().expect("mtime");
    let o = run(
        &[
            "recipient",
            "--add-to",
            ".sops.yaml",
            "--path-regex",
            "^web1/.*",
            "--also",
            &other_r,
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read_to_string(&cfg).expect("read"), extended);
    assert_eq!(
        fs::metadata(&cfg).expect("meta").modified().expect("mtime"),
        mtime
    );

    // A catch-all existing rule (the repo's own example) stays below the new one, comments
    // and all; the real sops picks the new rule for web2/ and the old one elsewhere.
    let example = fs::read_to_string(repo().join("secrets.example/.sops.yaml")).expect("read");
    fs::write(&cfg, &example).expect("write");
    let o = run(
        &[
            "recipient",
            "--add-to",
            ".sops.yaml",
            "--path-regex",
            "^web2/.*",
            "--also",
            &me_r,
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (head, tail) = example.split_at(example.find("creation_rules:\n").expect("rules") + 16);
    assert_eq!(
        fs::read_to_string(&cfg).expect("read"),
        format!("{head}{}{tail}", rule("'^web2/.*'", &[&host_r, &me_r]))
    );
    fs::create_dir(d.join("web2")).expect("mkdir");
    fs::write(d.join("web2/s.yaml"), "a: b\n").expect("write");
    fs::write(d.join("else.yaml"), "a: b\n").expect("write");
    for (file, want) in [
        ("web2/s.yaml", vec![host_r.clone(), me_r.clone()]),
        (
            "else.yaml",
            vec!["age1p03njzql5qqtqy0wc73u0s88f2cprd3z0rr03g2ghhw5vjpe8fqslx6yns".to_string()],
        ),
    ] {
        let o = Command::new(&sops)
            .args(["encrypt", "--output", "out.yaml", file])
            .current_dir(d)
            .env("HOME", "/nonexistent-tskeyctl-test-home")
            .stdin(Stdio::null())
            .output()
            .expect("sops");
        assert_eq!(code(&o), 0, "sops encrypt {file}: {}", stderr(&o));
        assert_eq!(recipients_of(&d.join("out.yaml")), want, "{file}");
    }
}

#[test]
fn add_to_warns_about_host_keys_only_and_refuses_flow_style() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let (host, host_r) = keypair(d, "host");
    let host_pub = host.with_extension("pub");
    let o = run(
        &[
            "recipient",
            "--add-to",
            "c.yaml",
            "--path-regex",
            "x",
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "tskeyctl: warning: the rule for 'x' holds only host keys: you will not be able to open these files yourself; add your own key with --also\n"
        ),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        fs::read_to_string(d.join("c.yaml")).expect("read"),
        format!("creation_rules:\n{}", rule("x", &[&host_r]))
    );
    let flow = "creation_rules: [{age: age1x}]\n";
    fs::write(d.join("f.yaml"), flow).expect("write");
    let o = run(
        &[
            "recipient",
            "--add-to",
            "f.yaml",
            "--path-regex",
            "x",
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(stderr(&o).contains("flow style"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(d.join("f.yaml")).expect("read"), flow);
    // A bad --also: 78, nothing written.
    let o = run(
        &[
            "recipient",
            "--add-to",
            "n.yaml",
            "--path-regex",
            "x",
            "--also",
            "nope",
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 78, "{}", stderr(&o));
    assert!(!d.join("n.yaml").exists());
    // A private key where the recipient belongs: refused before anything (2), never echoed.
    let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
    let o = run(
        &[
            "recipient",
            "--add-to",
            "n.yaml",
            "--path-regex",
            "x",
            "--also",
            secret,
            s(&host_pub),
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("--also"), "{}", stderr(&o));
    assert!(!stderr(&o).contains(secret), "{}", stderr(&o));
    assert!(!d.join("n.yaml").exists());
}

#[test]
fn the_append_advice_is_gone() {
    for f in [
        "README.md",
        "docs/contract.md",
        "src/cli/keys.rs",
        "secrets.example/README.md",
        "nixos-module/example/README.md",
    ] {
        let text = fs::read_to_string(repo().join(f)).expect("read");
        assert!(!text.contains(">> .sops.yaml"), "{f}");
    }
}

#[test]
fn recipient_and_identity_read_a_piped_stdin() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let (key, r) = keypair(d, "k");
    let public = fs::read(key.with_extension("pub")).expect("read");
    let o = run(&["recipient"], d, Some(&public));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{r}\n"));
    let private = fs::read(&key).expect("read");
    let o = run(&["identity"], d, Some(&private));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let want = run(&["identity", s(&key)], d, None);
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("AGE-SECRET-KEY-1"));
    assert_eq!(o.stdout, want.stdout);
    // A regular file as stdin counts too.
    let o = tsk(&["recipient"], d)
        .stdin(fs::File::open(key.with_extension("pub")).expect("open"))
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{r}\n"));
}

/// What `recipient` with no FILE means when stdin is not data: the host key.
fn host_default_expected(out: &str, exit: &str) {
    let host = Path::new("/etc/ssh/ssh_host_ed25519_key.pub");
    if host.exists() {
        assert!(out.contains("age1"), "{out}");
        assert!(exit.contains("EXIT=0"), "{out}");
    } else {
        assert!(out.contains("/etc/ssh/ssh_host_ed25519_key.pub"), "{out}");
        assert!(exit.contains("EXIT=66"), "{out}");
    }
}

#[test]
fn recipient_on_a_terminal_or_dev_null_still_means_the_host_key() {
    let t = tempfile::tempdir().expect("tempdir");
    let o = run(&["recipient"], t.path(), None);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
    host_default_expected(&text, &format!("EXIT={}", code(&o)));
    let Some(script) = peer("SCRIPT_BIN", "script") else {
        return;
    };
    let log = t.path().join("typescript");
    let cmd = format!("{BIN} recipient; echo EXIT=$?");
    let o = Command::new(&script)
        .args(["-qec", &cmd, s(&log)])
        .stdin(Stdio::null())
        .output()
        .expect("script");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    host_default_expected(&out, &out);
}

#[test]
fn updatekeys_shows_the_diff_asks_and_skips_an_up_to_date_file() {
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let (a, a_r) = keypair(d, "a");
    let (_b, b_r) = keypair(d, "b");
    fs::write(
        d.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {a_r}\n"),
    )
    .expect("write");
    fs::write(d.join("p.yaml"), "k: v\n").expect("write");
    let o = run(&["encrypt", "-o", "s.yaml", "p.yaml"], d, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let file = d.join("s.yaml");
    // Up to date: not rewritten.
    let before = fs::read(&file).expect("read");
    let mtime = fs::metadata(&file)
        .expect("meta")
        .modified()
        .expect("mtime");
    let o = run(&["updatekeys", "-i", s(&a), "s.yaml"], d, None);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o), "tskeyctl: s.yaml: already up to date\n");
    assert_eq!(fs::read(&file).expect("read"), before);
    assert_eq!(
        fs::metadata(&file)
            .expect("meta")
            .modified()
            .expect("mtime"),
        mtime
    );

    fs::write(
        d.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {b_r}\n"),
    )
    .expect("write");
    let diff = format!(
        "The following changes will be made to the file's groups:\nGroup 1\n+++ {b_r}\n--- {a_r}\n"
    );
    // No answer (stdin closed): refused, nothing written.
    let o = run(&["updatekeys", "-i", s(&a), "s.yaml"], d, None);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with(&format!("{diff}Is this okay? (y/n):")),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("pass -y"), "{}", stderr(&o));
    assert_eq!(fs::read(&file).expect("read"), before);
    // "n": left unchanged, exit 0.
    let o = run(&["updatekeys", "-i", s(&a), "s.yaml"], d, Some(b"n\n"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("tskeyctl: s.yaml: left unchanged\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read(&file).expect("read"), before);
    // "y" (after a stray answer, asked again): rewritten for b.
    let o = run(
        &["updatekeys", "-i", s(&a), "s.yaml"],
        d,
        Some(b"maybe\ny\n"),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stderr(&o).matches("Is this okay? (y/n):").count(), 2);
    assert_eq!(recipients_of(&file), vec![b_r.clone()]);
    // -y: no question; the diff still shown.
    fs::write(
        d.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {a_r},{b_r}\n"),
    )
    .expect("write");
    let o = run(
        &[
            "updatekeys",
            "-y",
            "-i",
            d.join("b").to_str().expect("utf8"),
            "s.yaml",
        ],
        d,
        None,
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stderr(&o).contains("Is this okay"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("Group 1\n    {b_r}\n+++ {a_r}\n")),
        "{}",
        stderr(&o)
    );
    assert_eq!(recipients_of(&file), vec![a_r, b_r]);
}
