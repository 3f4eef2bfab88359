//! Runs of the built binary for the tests that talk to the fake API (`util::run`, a clean
//! environment), each audited for secrets: argv, stdout and stderr.
//!
//! The audit is the point: each run is checked against every secret the fake knows (OAuth
//! client secrets, API keys, access tokens it issued) and minted auth keys may appear on stdout
//! only (that is the product) — never on stderr. A failing audit fails the test that made the run.
#![allow(dead_code)]

use crate::fake_tailscale::FakeTailscale;
pub use crate::util::{Run, assert_no_secret};

/// A fake with one OAuth client (scope auth_keys, tag:ci) and its secret.
pub fn oauth_fake() -> (FakeTailscale, String) {
    let fake = FakeTailscale::start();
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:ci"]);
    (fake, secret)
}

/// Asserts success and that stdout is exactly the one key the fake minted, plus a newline.
pub fn assert_minted(fake: &FakeTailscale, run: &Run) -> String {
    assert_eq!(run.code, 0, "stderr: {}", run.stderr);
    let keys = fake.minted_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(run.stdout, format!("{}\n", keys[0]));
    keys[0].clone()
}

/// Runs `tskeyctl ARGS` with only `envs` in the environment (plus PATH), then audits the
/// output against the fake's secrets.
pub fn tskeyctl(fake: &FakeTailscale, args: &[&str], envs: &[(&str, &str)]) -> Run {
    // Secrets never in argv: no argument may contain a known secret.
    let secrets = fake.secrets();
    assert_no_secret("argv", &args.join(" "), &secrets);
    let run = crate::util::run(args, envs);
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
