//! The test suite's fake Tailscale API as a standalone server, for `bench/` and manual trials.
//!
//! `cargo run --release --example fake_tailscale -- [--port N] [--info FILE]` serves on
//! 127.0.0.1 with one OAuth client (scopes `auth_keys devices:core`, tag `tag:bench`) and one
//! API key, and writes `{"url", "oauth_secret", "api_key"}` as JSON to FILE (default stdout) so
//! a script can pick them up. These are throwaway credentials of a local fake.

#[path = "../tests/it/fake_tailscale/mod.rs"]
mod fake_tailscale;

fn main() {
    let mut port = 0u16;
    let mut info: Option<String> = None;
    let mut known_secrets: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--info" => info = args.next(),
            // Also accept this OAuth client secret (read from a file: e.g. the demo credentials
            // of secrets.example/, so `provision` can mint from them).
            "--accept-secret-file" => {
                let path = args.next().unwrap_or_default();
                match std::fs::read_to_string(&path) {
                    Ok(s) => known_secrets.push(s.trim().to_string()),
                    Err(e) => {
                        eprintln!("fake_tailscale: cannot read {path}: {e}");
                        std::process::exit(2);
                    }
                }
            }
            _ => {
                eprintln!(
                    "usage: fake_tailscale [--port N] [--info FILE] [--accept-secret-file FILE]"
                );
                std::process::exit(2);
            }
        }
    }
    let fake = fake_tailscale::FakeTailscale::start_on(port);
    for secret in &known_secrets {
        if secret.starts_with("tskey-api-") {
            fake.add_api_key_with_value(secret, &["tag:bench", "tag:server"]);
        } else {
            fake.add_oauth_client_with_secret(
                secret,
                &["auth_keys", "devices:core"],
                &["tag:bench", "tag:server"],
            );
        }
    }
    let json = serde_json::json!({
        "url": fake.url(),
        "oauth_secret": fake.add_oauth_client(&["auth_keys", "devices:core"], &["tag:bench"]),
        "api_key": fake.add_api_key(&["tag:bench"]),
    })
    .to_string();
    match info {
        Some(path) => std::fs::write(&path, json + "\n").unwrap_or_else(|e| {
            eprintln!("fake_tailscale: cannot write {path}: {e}");
            std::process::exit(1);
        }),
        None => println!("{json}"),
    }
    eprintln!("fake_tailscale: serving on {}", fake.url());
    loop {
        std::thread::park();
    }
}
