//! `tskeyctl doctor`: provision's flags, every check as a ✓/✗ line (or `--json`), exit 0 only
//! when all pass — and nothing minted or written: the fake API sees no key request and the
//! temp dir is byte-for-byte as before. Failures carry hints: an expired ID token (no exchange
//! is attempted), a token without the `auth_keys` scope, an untrusted output directory.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::fake_tailscale::{FakeTailscale, FederatedIdentity, KEYS, TOKEN_EXCHANGE};
use crate::mint_common::{Run, tskeyctl};
use crate::util::{s, snapshot};

fn doctor(fake: &FakeTailscale, dir: &std::path::Path, extra: &[&str]) -> Run {
    let url = fake.url();
    let out = dir.join("run/ts_authkey");
    let state = dir.join("state");
    let mut args = vec!["-vvv", "doctor", "--out", s(&out), "--state-dir", s(&state)];
    args.extend(["--api-url", &url, "--deadline", "5s"]);
    args.extend_from_slice(extra);
    tskeyctl(fake, &args, &[])
}

fn lines(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| !l.starts_with("    hint:"))
        .map(|l| l.split(':').next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn every_check_passes_and_nothing_is_minted_or_written() {
    let fake = FakeTailscale::start();
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:server"]);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let source = dir.path().join("oauth.env");
    fs::write(&source, format!("TS_API_CLIENT_SECRET={secret}\n")).unwrap();
    let before = snapshot(dir.path());
    let r = doctor(
        &fake,
        dir.path(),
        &["--source", s(&source), "--tags", "tag:server"],
    );
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        lines(&r),
        [
            "✓ options",
            "✓ identities",
            "✓ source",
            "✓ tags",
            "✓ api",
            "✓ scopes",
            "✓ output",
            "✓ state"
        ]
    );
    assert!(r.stdout.contains("holds an OAuth client k"), "{}", r.stdout);
    assert!(
        r.stdout.contains("the access token carries [auth_keys]"),
        "{}",
        r.stdout
    );
    assert!(fake.minted_keys().is_empty());
    assert!(fake.requests_to(KEYS).iter().all(|q| q.method == "GET"));
    assert_eq!(snapshot(dir.path()), before, "doctor wrote something");

    // --json says the same.
    let r = doctor(
        &fake,
        dir.path(),
        &["--source", s(&source), "--tags", "tag:server", "--json"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), 8);
    assert_eq!(v["checks"][4]["check"], "api");
    assert!(v["checks"][4].get("hint").is_none());
}

#[test]
fn failures_are_crosses_with_hints_and_exit_1() {
    let fake = FakeTailscale::start();
    // An OAuth client that can read keys but not create them.
    let secret = fake.add_oauth_client(&["auth_keys:read"], &["tag:server"]);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    fs::create_dir(&run_dir).unwrap();
    fs::set_permissions(&run_dir, fs::Permissions::from_mode(0o777)).unwrap();
    let source = dir.path().join("oauth.env");
    fs::write(&source, format!("TS_API_CLIENT_SECRET={secret}\n")).unwrap();
    let r = doctor(
        &fake,
        dir.path(),
        &["--source", s(&source), "--tags", "tag:server", "--json"],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    let check = |name: &str| {
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} check: {v}"))
    };
    let scopes = check("scopes");
    assert_eq!(scopes["ok"], false);
    assert_eq!(
        scopes["detail"],
        "the access token carries [auth_keys:read], not auth_keys"
    );
    assert!(scopes["hint"].as_str().unwrap().contains("auth_keys scope"));
    let out = check("output");
    assert_eq!(out["ok"], false, "{out}");
    assert!(
        out["hint"]
            .as_str()
            .unwrap()
            .contains("not group/other-writable"),
        "{out}"
    );
    assert_eq!(check("api")["ok"], true);
    assert!(fake.minted_keys().is_empty());
}

#[test]
fn an_expired_id_token_fails_the_clock_check_before_any_exchange() {
    use base64::Engine;
    let fake = FakeTailscale::start();
    fake.add_federated_identity(FederatedIdentity {
        client_id: "TzDoc1CNTRL-kDoc2CNTRL".into(),
        issuer: "https://issuer.example".into(),
        subject: "*".into(),
        audience: "aud".into(),
        public_key: [0u8; 32],
        scopes: vec!["auth_keys".into()],
        tags: vec!["tag:ci".into()],
    });
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwt = format!(
        "{}.{}.{}",
        b.encode(br#"{"alg":"EdDSA"}"#),
        b.encode(
            br#"{"iss":"https://issuer.example","sub":"x","aud":"aud","iat":1000,"exp":2000}"#
        ),
        b.encode([7u8; 64])
    );
    let token = dir.path().join("token");
    fs::write(&token, &jwt).unwrap();
    let r = doctor(
        &fake,
        dir.path(),
        &[
            "--client-id",
            "TzDoc1CNTRL-kDoc2CNTRL",
            "--id-token-file",
            s(&token),
            "--tags",
            "tag:ci",
        ],
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        lines(&r),
        [
            "✓ options",
            "✓ source",
            "✗ clock",
            "✓ tags",
            "✗ api",
            "✓ output",
            "✓ state"
        ]
    );
    assert!(
        r.stdout
            .contains("the ID token expired at 1970-01-01T00:33:20Z"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("hint: the credentials were rejected"),
        "{}",
        r.stdout
    );
    assert!(fake.requests_to(TOKEN_EXCHANGE).is_empty());
    assert!(!r.stdout.contains(&jwt) && !r.stderr.contains(&jwt));
}

#[test]
fn with_skip_if_logged_in_tailscaled_is_checked() {
    use crate::tailscaled::{Answer, FakeLocalApi};
    let fake = FakeTailscale::start();
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:server"]);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let source = dir.path().join("oauth.env");
    fs::write(&source, format!("TS_API_CLIENT_SECRET={secret}\n")).unwrap();
    let socket = dir.path().join("tailscaled.sock");
    let base = [
        "--source",
        s(&source),
        "--tags",
        "tag:server",
        "--skip-if-logged-in",
    ];
    let mut args = base.to_vec();
    args.extend(["--tailscaled-socket", s(&socket)]);
    let r = doctor(&fake, dir.path(), &args);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "    hint: tailscaled is not answering on --tailscaled-socket: provision would mint"
        ),
        "{}",
        r.stdout
    );
    let _api = FakeLocalApi::start(&socket, &[Answer::State("Running")]);
    let r = doctor(&fake, dir.path(), &args);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "✓ tailscaled: {} answers: BackendState Running (logged in: provision would skip)",
            s(&socket)
        )),
        "{}",
        r.stdout
    );
    assert!(fake.minted_keys().is_empty());
}

#[test]
fn a_source_for_another_host_names_both_recipient_sets_and_opens_with_its_key() {
    use crate::util::example;
    let fake = FakeTailscale::start();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let source = example("authkey.yaml");
    let r = doctor(&fake, dir.path(), &["--source", &source]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(&format!(
            "✗ source: {source}: no identity can decrypt this file"
        )) && r.stdout.contains(
            "file recipients: age1p03njzql5qqtqy0wc73u0s88f2cprd3z0rr03g2ghhw5vjpe8fqslx6yns"
        ),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("    hint: no identity here opens the source: compare the file's recipients"),
        "{}",
        r.stdout
    );
    // With the host key it was encrypted to: an auth key, written as is — no API check.
    let key = example("host/ssh_host_ed25519_key");
    let r = doctor(
        &fake,
        dir.path(),
        &[
            "--source",
            &source,
            "--key",
            "tailscale_authkey",
            "-i",
            &key,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("✓ identities: 2 found, recipients age1p03nj"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("holds an auth key (written as is; no API call)"),
        "{}",
        r.stdout
    );
    assert!(fake.requests().is_empty());
}

/// doctor loaded the identities for its report, dropped them, and loaded them again to open the
/// source: SOPS_AGE_KEY_CMD ran twice and key files were read twice. Once is enough.
#[test]
fn identities_are_loaded_once() {
    let fake = FakeTailscale::start();
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let counter = dir.path().join("key-cmd-runs");
    let cmd = format!("sh -c 'echo run >> {}'", s(&counter));
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = repo.join("secrets.example/oauth.env");
    let host = repo.join("secrets.example/host/ssh_host_ed25519_key");
    let url = fake.url();
    let out = dir.path().join("run/ts_authkey");
    let state = dir.path().join("state");
    let args = [
        "doctor",
        "--out",
        s(&out),
        "--state-dir",
        s(&state),
        "--api-url",
        &url,
        "--deadline",
        "5s",
        "--source",
        s(&source),
        "-i",
        s(&host),
        "--tags",
        "tag:server",
    ];
    let r = tskeyctl(&fake, &args, &[("SOPS_AGE_KEY_CMD", cmd.as_str())]);
    assert!(r.stdout.contains("✓ source"), "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        fs::read_to_string(&counter).unwrap(),
        "run\n",
        "{}",
        r.stderr
    );
}

/// doctor checked a copy of provision's option rules that had drifted: `--owner`, `--group`,
/// `--reuse-if-valid-for` and `--env-name` passed doctor and failed provision. One check now.
#[test]
fn options_provision_refuses_are_crosses() {
    let fake = FakeTailscale::start();
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:server"]);
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("run")).unwrap();
    let source = dir.path().join("oauth.env");
    fs::write(&source, format!("TS_API_CLIENT_SECRET={secret}\n")).unwrap();
    for bad in [
        ["--owner", "4294967295"],
        ["--env-name", "1X"],
        ["--reuse-if-valid-for", "soon"],
    ] {
        let mut extra = vec!["--source", s(&source), "--tags", "tag:server"];
        extra.extend(bad);
        let r = doctor(&fake, dir.path(), &extra);
        assert_eq!(r.code, 1, "{bad:?}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.starts_with("✗ options"), "{bad:?}: {}", r.stdout);
    }
}
