//! Inputs found by fuzzing (`fuzz/`, see `fuzz/README.md`) that crashed, hung or blew up memory
//! before a fix, replayed through the built binary: each must now end with the exact exit code
//! and error of the contract. Inputs are generated inline (never copied conformance files).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::BIN;

/// The fuzz-only age identity the targets decrypt with (public on purpose).
fn fuzz_identity() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/keys/age.txt")
}

/// Writes `data` as `name` in a fresh directory and runs `tskeyctl decrypt` on it.
fn decrypt(name: &str, data: &[u8]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(name);
    std::fs::write(&file, data).expect("write input");
    let out = Command::new(BIN)
        .arg("decrypt")
        .arg("-i")
        .arg(fuzz_identity())
        .arg(&file)
        .env_remove("SOPS_AGE_KEY")
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_SSH_PRIVATE_KEY_FILE")
        .output()
        .expect("run tskeyctl");
    drop(dir);
    out
}

fn assert_data_error(out: &Output, name: &str, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(65),
        "{name}: expected exit 65 (bad input), got {:?}; stderr: {stderr}",
        out.status
    );
    assert!(out.stdout.is_empty(), "{name}: printed output");
    assert!(
        stderr.contains(&format!("{name}: {needle}")),
        "{name}: stderr lacks {needle:?}: {stderr}"
    );
}

const FLAT_TOO_LARGE: &str =
    "sops metadata keys nest deeper than 16 levels or expand to more than 10000 entries";

/// 2026-11-25, found by review while writing `sops_dotenv`/`sops_ini` (the inputs are too big
/// for libFuzzer's ~4 KB): a flattened metadata key with 200 000 `__map_` levels took ~80 s
/// (the separator search was quadratic), then aborted with a stack overflow (SIGABRT) in the
/// recursive insert.
#[test]
fn deep_flattened_metadata_key_is_rejected() {
    let chain = "__map_b".repeat(200_000);
    let env = format!("sops_a{chain}=x\nsops_version=3.11.0\n");
    assert_data_error(
        &decrypt("deep.env", env.as_bytes()),
        "deep.env",
        FLAT_TOO_LARGE,
    );
    let ini = format!("[sops]\na{chain} = x\nversion = 3.11.0\n");
    assert_data_error(
        &decrypt("deep.ini", ini.as_bytes()),
        "deep.ini",
        FLAT_TOO_LARGE,
    );
}

/// 2026-11-25 (review, `sops_dotenv` scope): list indexes pad with empty nodes, up to 10 000
/// per level, so an 80 KB dotenv file of `__list_9999` chains grew to 2.3 GB RSS in 42 s. Now
/// expansion is budgeted and such a file fails at once.
#[test]
fn flattened_metadata_list_bomb_is_rejected() {
    let mut env = String::new();
    for i in 0..2_000 {
        // Six levels: within the depth limit, ~60 000 padding nodes per 80-byte line.
        env.push_str(&format!("sops_k{i}{}=x\n", "__list_9999".repeat(6)));
    }
    env.push_str("sops_version=3.11.0\n");
    assert_data_error(
        &decrypt("bomb.env", env.as_bytes()),
        "bomb.env",
        FLAT_TOO_LARGE,
    );
    let mut ini = String::from("[sops]\n");
    for i in 0..20 {
        ini.push_str(&format!("k{i}{} = x\n", "__list_9999".repeat(6)));
    }
    assert_data_error(
        &decrypt("bomb.ini", ini.as_bytes()),
        "bomb.ini",
        FLAT_TOO_LARGE,
    );
}

/// The limits leave real flattened metadata alone: sops's deepest key (5 levels) and list
/// indexes still rebuild, so the file gets as far as the data key (no identity opens it: 77).
#[test]
fn flattened_metadata_within_limits_still_parses() {
    let env = "secret=ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n\
sops_key_groups__list_0__map_age__list_0__map_recipient=age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n\
sops_key_groups__list_0__map_age__list_0__map_enc=-----BEGIN AGE ENCRYPTED FILE-----\\nYWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBCkFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEKLS0tIEFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUEKAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\n-----END AGE ENCRYPTED FILE-----\\n\n\
sops_lastmodified=2026-11-25T00:00:00Z\n\
sops_mac=ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]\n\
sops_unencrypted_suffix=_unencrypted\n\
sops_version=3.11.0\n";
    let out = decrypt("ok.env", env.as_bytes());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(77), "stderr: {stderr}");
    assert!(
        stderr.contains(
            "file recipients: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"
        ),
        "{stderr}"
    );
}

/// 2026-11-25 (review, `sops_dotenv` scope): each flattened key was
/// looked up by a linear scan, so 10⁵ distinct `sops_…` lines cost 10¹⁰ comparisons. The key
/// count now shares the expansion budget.
#[test]
fn many_flattened_metadata_keys_are_rejected() {
    let mut env = String::new();
    for i in 0..50_000 {
        env.push_str(&format!("sops_k{i}=x\n"));
    }
    assert_data_error(
        &decrypt("keys.env", env.as_bytes()),
        "keys.env",
        FLAT_TOO_LARGE,
    );
}
