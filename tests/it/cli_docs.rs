//! `--help` of every command carries an example, and the man page and completions are generated
//! from the same definitions (so they list every command and flag `--help` does).

use std::process::Command;

use crate::util::BIN;

const COMMANDS: [&str; 11] = [
    "provision",
    "doctor",
    "revoke",
    "status",
    "mint",
    "decrypt",
    "encrypt",
    "updatekeys",
    "install",
    "recipient",
    "identity",
];

fn out(args: &[&str]) -> String {
    let o = Command::new(BIN).args(args).output().expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

#[test]
fn every_command_has_help_with_an_example_and_the_exit_codes_are_documented() {
    let top = out(&["--help"]);
    assert!(
        top.contains("temporary failure") && top.contains("77 permission"),
        "{top}"
    );
    for c in COMMANDS {
        assert!(top.contains(&format!("  {c} ")), "{c} listed in --help");
        let help = out(&[c, "--help"]);
        assert!(
            help.contains("Example"),
            "{c} --help has an example:\n{help}"
        );
        assert!(
            help.contains(&format!("tskeyctl {c}")),
            "{c} example runs {c}"
        );
    }
    assert!(!top.contains("generate"), "generate is hidden");
}

#[test]
fn man_page_and_completions_cover_every_command() {
    let man = out(&["generate", "man"]);
    assert!(man.starts_with(".ie \\n(.g .ds Aq"), "roff output");
    let bash = out(&["generate", "completions", "bash"]);
    let zsh = out(&["generate", "completions", "zsh"]);
    for c in COMMANDS {
        assert!(man.contains(c), "man page lists {c}");
        assert!(bash.contains(c) && zsh.contains(c), "completions list {c}");
    }
    for flag in [
        "--reuse-if-valid-for",
        "--revoke-previous",
        "--oauth-secret-file",
    ] {
        assert!(bash.contains(flag), "completions know {flag}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    out(&[
        "generate",
        "man",
        "--dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    for page in ["tskeyctl.1", "tskeyctl-provision.1", "tskeyctl-install.1"] {
        assert!(dir.path().join(page).is_file(), "{page}");
    }
}
