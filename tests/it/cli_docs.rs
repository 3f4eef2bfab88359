//! `--help` of every command carries an example, every example is a whole command that parses
//! (one per line, or continued with `\`), and the man pages and completions are generated from
//! the same definitions (so they list every command and flag `--help` does, and every page has
//! the ENVIRONMENT, FILES and EXIT STATUS sections that `--help` prints).

use std::process::Command;

use crate::util::BIN;

const COMMANDS: [&str; 15] = [
    "provision",
    "doctor",
    "revoke",
    "status",
    "mint",
    "decrypt",
    "encrypt",
    "updatekeys",
    "edit",
    "set",
    "unset",
    "install",
    "recipient",
    "identity",
    "generate",
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
    for section in ["Environment:", "Files:", "Exit status:"] {
        assert!(top.contains(section), "{section} in --help:\n{top}");
    }
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
    for c in COMMANDS {
        let page = dir.path().join(format!("tskeyctl-{c}.1"));
        let text = std::fs::read_to_string(&page).expect("page");
        assert_eq!(crate::util::mode(&page), 0o644, "{c}");
        for section in [".SH ENVIRONMENT\n", ".SH FILES\n", ".SH \"EXIT STATUS\"\n"] {
            assert!(text.contains(section), "{c}: {section}");
        }
    }
}

/// The environment variables the code reads: `var("X")`, `var_os("X")`, `env("X")` and the
/// lists handed to `first_env` or looped over in the credentials stage.
fn variables_read() -> std::collections::BTreeSet<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let call = regex::Regex::new(r#"\b(?:var|var_os|env)\(\s*"([A-Z][A-Z0-9_]+)"\s*\)"#).unwrap();
    let list = regex::Regex::new(r#"(?:first_env\(\s*env,\s*&|for name in )\[([^\]]*)\]"#).unwrap();
    let name = regex::Regex::new(r#""([A-Z][A-Z0-9_]+)""#).unwrap();
    let mut found = std::collections::BTreeSet::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("ls").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).expect("read");
                for c in call.captures_iter(&text) {
                    found.insert(c[1].to_string());
                }
                for l in list.captures_iter(&text) {
                    for n in name.captures_iter(&l[1]) {
                        found.insert(n[1].to_string());
                    }
                }
            }
        }
    }
    found
}

#[test]
fn every_environment_variable_read_is_in_the_man_page_and_help() {
    let vars = variables_read();
    // The scan finds what it should (a scan that finds nothing proves nothing).
    for known in [
        "TS_API_CLIENT_SECRET",
        "SOPS_AGE_KEY_FILE",
        "TAILSCALE_BASE_URL",
    ] {
        assert!(
            vars.contains(known),
            "{known} not found by the scan: {vars:?}"
        );
    }
    let man = out(&["generate", "man"]);
    let env_section = man
        .split(".SH ENVIRONMENT\n")
        .nth(1)
        .and_then(|s| s.split(".SH FILES").next())
        .expect("ENVIRONMENT section");
    let help = out(&["--help"]);
    let help_env = help
        .split("Environment:\n")
        .nth(1)
        .and_then(|s| s.split("\nFiles:").next())
        .expect("Environment in --help");
    for v in &vars {
        let roff = v.replace('-', "\\-");
        assert!(
            env_section.contains(&format!("\\fB{roff}\\fR")),
            "{v} in man ENVIRONMENT"
        );
        assert!(help_env.contains(v.as_str()), "{v} in --help Environment");
    }
    let exit = man
        .split(".SH \"EXIT STATUS\"\n")
        .nth(1)
        .expect("EXIT STATUS");
    for c in [0, 1, 2, 65, 66, 73, 75, 77, 78] {
        assert!(
            exit.contains(&format!(".TP\n\\fB{c}\\fR\n")),
            "exit {c} in man"
        );
        assert!(help.contains(&format!("\n  {c} ")), "exit {c} in --help");
    }
    let files = man.split(".SH FILES\n").nth(1).expect("FILES");
    for f in [
        "/etc/ssh/ssh_host_ed25519_key",
        "/var/lib/tskeyctl/NAME/state.json",
    ] {
        assert!(files.contains(&f.replace('-', "\\-")), "{f} in FILES");
    }
}

/// Splits one shell command line into words: single and double quotes, no expansion (a
/// `"$(…)"` stays one word, as the shell would pass it).
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    assert!(quote.is_none(), "unbalanced quotes in {line:?}");
    if any || !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// The tskeyctl invocations of one logical shell line (comments, pipes, redirections and
/// `&&` cut away; `VAR=value` prefixes dropped), as argument lists.
pub fn invocations(line: &str) -> Vec<Vec<String>> {
    if line.trim_start().starts_with('#') {
        return Vec::new();
    }
    let code = line.split(" #").next().unwrap_or(line);
    let words = shell_words(code);
    let mut out = Vec::new();
    let mut cur: Option<Vec<String>> = None;
    let mut skip_next = false;
    for w in words {
        if skip_next {
            skip_next = false;
            continue;
        }
        match w.as_str() {
            "|" | "&&" | "||" | ";" => {
                out.extend(cur.take());
            }
            ">" | ">>" | "<" | "2>" => skip_next = true,
            "tskeyctl" if cur.is_none() => cur = Some(Vec::new()),
            _ => {
                if let Some(c) = &mut cur {
                    c.push(w);
                }
            }
        }
    }
    out.extend(cur);
    out
}

/// Asserts `args` parse: clap stops at a trailing `--help` only after every earlier argument
/// was accepted, so exit 0 means the flags and values exist (nothing is run).
pub fn assert_parses(context: &str, args: &[String]) {
    let o = Command::new(BIN)
        .args(args)
        .arg("--help")
        .env_clear()
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{context}: tskeyctl {args:?} does not parse: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn every_help_example_is_a_whole_command_that_parses() {
    let mut checked = 0;
    for c in COMMANDS {
        let help = out(&[c, "--help"]);
        let block = help
            .split("Examples:\n")
            .nth(1)
            .map(|b| b.split("\n\n").next().unwrap_or(b))
            .unwrap_or("");
        let mut logical = String::new();
        for raw in block.lines() {
            let l = raw.trim();
            logical.push_str(l.strip_suffix('\\').unwrap_or(l));
            if l.ends_with('\\') {
                logical.push(' ');
                continue;
            }
            let line = std::mem::take(&mut logical);
            let code = line.split(" #").next().unwrap_or(&line);
            assert!(!code.contains('…'), "{c}: a placeholder in {line:?}");
            let calls = invocations(&line);
            assert!(
                !calls.is_empty(),
                "{c}: {line:?} runs no tskeyctl (a wrapped line? continue it with \\)"
            );
            for args in calls {
                assert_parses(c, &args);
                checked += 1;
            }
        }
    }
    assert!(checked >= 25, "only {checked} examples checked");
}
