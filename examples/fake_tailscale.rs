//! The test suite's fake Tailscale API as a standalone server, for `bench/` and manual trials.
//!
//! `cargo run --release --example fake_tailscale -- [--port N] [--info FILE]` serves on
//! 127.0.0.1 with one OAuth client (scopes `auth_keys devices:core`, tag `tag:bench`) and one
//! API key, and writes `{"url", "oauth_secret", "api_key"}` as JSON to FILE (default stdout) so
//! a script can pick them up. These are throwaway credentials of a local fake.

#[path = "../tests/fake_tailscale/mod.rs"]
mod fake_tailscale;

fn main() {
    let mut port = 0u16;
    let mut info: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--port" => port = args.next().and_then(|p| p.parse().ok()).unwrap_or(0),
            "--info" => info = args.next(),
            _ => {
                eprintln!("usage: fake_tailscale [--port N] [--info FILE]");
                std::process::exit(2);
            }
        }
    }
    let fake = fake_tailscale::FakeTailscale::start_on(port);
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
