//! Shared helpers of the mint tests: run the built binary with a clean environment, and audit
//! every run's stdout and stderr for secrets.
//!
//! The audit is the point: each run is checked against every secret the fake knows (OAuth
//! client secrets, API keys, access tokens it issued) and minted auth keys may appear on stdout
//! only (that is the product) — never on stderr. A failing audit fails the test that made the run.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fake_tailscale::FakeTailscale;

/// One finished run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Asserts that `text` contains none of `secrets`.
pub fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "{what} contains a secret (…{}):\n{text}",
            &s[s.len().saturating_sub(6)..]
        );
        // Also the random part alone (in case a prefix was cut or re-encoded).
        if let Some(tail) = s.rsplit('-').next().filter(|t| t.len() >= 16) {
            assert!(
                !text.contains(tail),
                "{what} contains the tail of a secret:\n{text}"
            );
        }
    }
}

/// Runs `tskeyctl ARGS` with only `envs` in the environment (plus PATH), then audits the
/// output against the fake's secrets.
pub fn tskeyctl(fake: &FakeTailscale, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tskeyctl"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    // Secrets never in argv: no argument may contain a known secret.
    let secrets = fake.secrets();
    assert_no_secret("argv", &args.join(" "), &secrets);
    let started = Instant::now();
    let out = cmd.output().expect("run tskeyctl");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        elapsed: started.elapsed(),
    };
    // Re-read: the run may have made the fake issue tokens and keys.
    let secrets = fake.secrets();
    assert_no_secret("stdout", &run.stdout, &secrets);
    assert_no_secret("stderr", &run.stderr, &secrets);
    assert_no_secret("stderr", &run.stderr, &fake.minted_keys());
    run
}

/// A temp dir with files.
pub fn temp_files(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    dir
}
