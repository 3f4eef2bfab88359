//! Every example in `secrets.example/` through `provision`, in every output format: exact bytes,
//! mode, and (as root) owner. The OAuth and API-key examples mint against the local fake, which
//! is told the demo credentials from `secrets.example/plain/`.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::fake_tailscale::FakeTailscale;
use crate::mint_common::tskeyctl;
use crate::util::s;

fn example(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("secrets.example")
        .join(rel)
}

/// `KEY=VALUE` from a demo plaintext file.
fn demo_value(file: &str, key: &str) -> String {
    let text = fs::read_to_string(example(file)).expect("read demo plaintext");
    text.lines()
        .find_map(|l| {
            l.trim().trim_start_matches('"').strip_prefix(key).map(|r| {
                r.trim_start_matches(['"', ':', '=', ' '])
                    .trim_end_matches([',', '"'])
                    .to_string()
            })
        })
        .expect("demo value")
}

#[test]
fn every_example_in_every_format() {
    let fake = FakeTailscale::start();
    let oauth = demo_value("plain/oauth.env", "TAILSCALE_OAUTH_CLIENT_SECRET");
    let api = demo_value("plain/apikey.json", "api_key");
    fake.add_oauth_client_with_secret(&oauth, &["auth_keys"], &["tag:server"]);
    fake.add_api_key_with_value(&api, &["tag:server"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("secrets");
    fs::create_dir(&out_dir).expect("mkdir");
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        println!("skipped: owner checks (chown to nobody) need root");
    }
    let url = fake.url();
    let state = dir.path().join("state");
    let id = example("host/ssh_host_ed25519_key");
    let cases: [(&str, &[&str], Option<String>); 4] = [
        (
            "authkey.yaml",
            &["--key", "tailscale_authkey"],
            Some(demo_value("plain/authkey.yaml", "tailscale_authkey")),
        ),
        (
            "authkey.age",
            &[],
            Some(
                fs::read_to_string(example("plain/authkey.txt"))
                    .expect("r")
                    .trim()
                    .to_string(),
            ),
        ),
        ("oauth.env", &["--tags", "tag:server"], None),
        ("apikey.json", &["--tags", "tag:server"], None),
    ];
    for (file, extra, fixed) in cases {
        for format in ["raw", "env", "json"] {
            let out = out_dir.join(format!("{file}.{format}"));
            let src = example(file);
            let mut args = vec![
                "provision",
                "--source",
                s(&src),
                "-i",
                s(&id),
                "--out",
                s(&out),
                "--format",
                format,
                "--state-dir",
                s(&state),
                "--api-url",
                &url,
                "--mode",
                "0640",
            ];
            args.extend_from_slice(extra);
            if root {
                args.extend(["--owner", "nobody", "--group", "nogroup"]);
            }
            let before = fake.minted_keys().len();
            let r = tskeyctl(&fake, &args, &[]);
            assert_eq!(r.code, 0, "{file} {format}: {}", r.stderr);
            let key = match &fixed {
                Some(k) => {
                    assert_eq!(
                        fake.minted_keys().len(),
                        before,
                        "{file}: no mint for an auth key"
                    );
                    k.clone()
                }
                None => {
                    let keys = fake.minted_keys();
                    assert_eq!(keys.len(), before + 1, "{file}: one mint");
                    keys[before].clone()
                }
            };
            assert!(key.starts_with("tskey-auth-"));
            let text = fs::read_to_string(&out).expect("read");
            match format {
                "raw" => assert_eq!(text, format!("{key}\n")),
                "env" => assert_eq!(text, format!("TS_AUTHKEY={key}\n")),
                _ => {
                    let v: Value = serde_json::from_str(&text).expect("json");
                    assert_eq!(v["authkey"], key.as_str());
                    let kid = key.split('-').nth(2).expect("id");
                    assert_eq!(v["id"], kid);
                    if fixed.is_none() {
                        assert_eq!(v["tags"], serde_json::json!(["tag:server"]));
                    }
                }
            }
            let meta = fs::metadata(&out).expect("meta");
            assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "{file} {format}");
            if root {
                assert_eq!(
                    (meta.uid(), meta.gid()),
                    (65534, 65534),
                    "{file} {format}: nobody:nogroup"
                );
            }
        }
    }
}
