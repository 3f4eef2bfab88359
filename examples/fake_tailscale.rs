//! The test suite's fake Tailscale API as a standalone server, for `bench/` and manual trials.
//!
//! `cargo run --release --example fake_tailscale -- [--port N] [--info FILE]` serves on
//! 127.0.0.1 with one OAuth client (scopes `auth_keys devices:core`, tag `tag:bench`) and one
//! API key, and writes `{"url", "oauth_secret", "api_key"}` as JSON to FILE (default stdout) so
//! a script can pick them up. These are throwaway credentials of a local fake.
//!
//! For `bench/boot_storm.sh`: `--clients N` registers N more OAuth clients (one per host; their
//! secrets are the info's `clients`), `--storm BURST,RETRY_AFTER,EVERY,UNAVAILABLE` refuses the
//! first BURST requests with 429 `Retry-After: RETRY_AFTER` and then every EVERY-th with 503
//! (UNAVAILABLE in all), and `--report FILE` makes the server, once its stdin is closed, write
//! every request it saw (client id, method, path, status, milliseconds since start) and the ids
//! of the live keys to FILE as JSON, then exit.

#[path = "../tests/it/fake_tailscale/mod.rs"]
mod fake_tailscale;

fn main() {
    let mut port = 0u16;
    let mut info: Option<String> = None;
    let mut known_secrets: Vec<String> = Vec::new();
    let mut clients = 0usize;
    let mut storm: Option<fake_tailscale::Storm> = None;
    let mut report: Option<String> = None;
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
            "--clients" => clients = args.next().and_then(|n| n.parse().ok()).unwrap_or(0),
            "--storm" => storm = args.next().as_deref().and_then(parse_storm),
            "--report" => report = args.next(),
            _ => usage(),
        }
    }
    let started = std::time::Instant::now();
    let fake = fake_tailscale::FakeTailscale::start_on(port);
    if let Some(s) = storm {
        fake.storm(s);
    }
    let per_host: Vec<String> = (0..clients)
        .map(|_| fake.add_oauth_client(&["auth_keys"], &["tag:bench"]))
        .collect();
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
        "clients": per_host,
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
    let Some(report) = report else {
        loop {
            std::thread::park();
        }
    };
    // Serve until stdin closes, then report.
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    let requests: Vec<serde_json::Value> = fake
        .requests()
        .iter()
        .map(|r| {
            serde_json::json!({
                "client": fake.client_of(r),
                "method": r.method,
                "path": r.path,
                "status": r.status,
                "ms": r.at.duration_since(started).as_secs_f64() * 1000.0,
            })
        })
        .collect();
    let live: Vec<String> = fake.live_keys().into_iter().map(|(id, _)| id).collect();
    let json = serde_json::json!({ "requests": requests, "live_key_ids": live }).to_string();
    if let Err(e) = std::fs::write(&report, json + "\n") {
        eprintln!("fake_tailscale: cannot write {report}: {e}");
        std::process::exit(1);
    }
}

fn usage() -> ! {
    eprintln!(
        "usage: fake_tailscale [--port N] [--info FILE] [--accept-secret-file FILE] \
         [--clients N] [--storm BURST,RETRY_AFTER,EVERY,UNAVAILABLE] [--report FILE]"
    );
    std::process::exit(2);
}

/// `BURST,RETRY_AFTER,EVERY,UNAVAILABLE`.
fn parse_storm(v: &str) -> Option<fake_tailscale::Storm> {
    let p: Vec<&str> = v.split(',').collect();
    let [burst, retry_after, every, unavailable] = p.as_slice() else {
        usage()
    };
    match (burst.parse(), every.parse(), unavailable.parse()) {
        (Ok(burst), Ok(every), Ok(unavailable)) => Some(fake_tailscale::Storm {
            burst,
            retry_after: retry_after.to_string(),
            every,
            unavailable,
        }),
        _ => usage(),
    }
}
