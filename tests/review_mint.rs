//! Review regression: `mint -o FILE` whose write fails revokes the key it just minted, so no
//! valid key is left behind that nobody holds (as `provision` already did).

mod fake_tailscale;
mod mint_common;

use fake_tailscale::FakeTailscale;
use mint_common::tskeyctl;

#[test]
fn mint_revokes_the_new_key_when_the_output_cannot_be_written() {
    let fake = FakeTailscale::start();
    let secret = fake.add_oauth_client(&["auth_keys"], &["tag:ci"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // A missing or unsafe directory is refused before minting now; make the write itself fail:
    // a 250-byte name is fine, but the temp name beside it is longer than NAME_MAX.
    let out = dir.path().join("k".repeat(250));
    let url = fake.url();
    let run = tskeyctl(
        &fake,
        &[
            "mint",
            "--tags",
            "tag:ci",
            "--api-url",
            &url,
            "-o",
            out.to_str().expect("utf-8"),
        ],
        &[("TS_API_CLIENT_SECRET", &secret)],
    );
    assert_eq!(run.code, 73, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("create a temporary file"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
    let created: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/tailnet/-/keys")
        .collect();
    assert_eq!(created.len(), 1);
    let deletes: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.path.starts_with("/api/v2/tailnet/-/keys/"))
        .collect();
    assert_eq!(deletes.len(), 1, "stderr: {}", run.stderr);
    let id = deletes[0].path.rsplit('/').next().expect("id");
    let key = fake.key_json(id).expect("key known to the fake");
    assert_eq!(key["invalid"], true, "{key}");
}
