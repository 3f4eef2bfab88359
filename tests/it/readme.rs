//! The README's first set-up command, run exactly as written (with the built binary standing in
//! for `cargo run --release --`), in a scratch directory holding the bundled `secrets.example/`.

use std::path::Path;
use std::process::Command;

#[test]
fn readme_main_command_provisions_the_bundled_example() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with("cargo run --release -- provision "))
        .expect("README has the provision set-up command");
    let (command, show) = line.split_once(" && ").expect("command && cat");
    let args: Vec<&str> = command
        .trim_start_matches("cargo run --release -- ")
        .split_whitespace()
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        root.join("secrets.example"),
        dir.path().join("secrets.example"),
    )
    .expect("symlink");
    let o = Command::new(env!("CARGO_BIN_EXE_tskeyctl"))
        .args(&args)
        .current_dir(dir.path())
        .env_remove("SOPS_AGE_KEY_FILE")
        .env_remove("SOPS_AGE_KEY")
        .output()
        .expect("run");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = show.trim_start_matches("cat ");
    let written = std::fs::read_to_string(dir.path().join(out)).expect("output");
    let plain =
        std::fs::read_to_string(root.join("secrets.example/plain/authkey.yaml")).expect("plain");
    let want = plain
        .lines()
        .find_map(|l| l.strip_prefix("tailscale_authkey: "))
        .expect("demo key");
    assert_eq!(written, format!("{want}\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(out))
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// One ```sh block of the README and its mark (`<!-- readme-test: run NAME -->` or
/// `<!-- readme-test: skip WHY -->` on the line before the fence).
struct Block {
    line: usize,
    mark: String,
    text: String,
}

fn sh_blocks() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i] == "```sh" {
            let mark = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| l.strip_prefix("<!-- readme-test: "))
                .and_then(|l| l.strip_suffix(" -->"))
                .unwrap_or_else(|| {
                    panic!("README.md:{}: sh block without a readme-test mark", i + 1)
                })
                .to_string();
            let end = (i + 1..lines.len())
                .find(|&j| lines[j] == "```")
                .expect("closed block");
            blocks.push(Block {
                line: i + 1,
                mark,
                text: lines[i + 1..end].join("\n") + "\n",
            });
            i = end;
        }
        i += 1;
    }
    blocks
}

/// The logical lines of a block (`\` continuations joined).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for l in text.lines() {
        match l.strip_suffix('\\') {
            Some(head) => cur.push_str(head),
            None => {
                cur.push_str(l);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

/// Runs a block with bash (`-euo pipefail`) in `dir`, `tskeyctl` (the built binary) first on
/// PATH and `cargo run --release --` meaning it too.
fn run_block(dir: &Path, text: &str, envs: &[(&str, String)]) -> std::process::Output {
    let bin = dir.join(".bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let link = bin.join("tskeyctl");
    if !link.exists() {
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tskeyctl"), &link).expect("symlink");
    }
    let script = text.replace("cargo run --release -- ", "tskeyctl ");
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", dir);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("bash")
}

/// A scratch directory holding the repository's `secrets.example/`.
fn scratch() -> tempfile::TempDir {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(
        root.join("secrets.example"),
        dir.path().join("secrets.example"),
    )
    .expect("symlink");
    dir
}

fn demo(rel: &str, prefix: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(root.join("secrets.example").join(rel))
        .expect("plain")
        .lines()
        .find_map(|l| l.strip_prefix(prefix).map(str::to_string))
        .expect("demo value")
}

/// Every README shell block is marked; the ones that can run offline run (the tailscale-manager
/// one against the fake API) and their results are checked; the others are counted and every
/// tskeyctl command in them still has to parse.
#[test]
fn readme_shell_blocks_run_offline_or_are_skipped_visibly() {
    use crate::cli_docs::{assert_parses, invocations};
    let blocks = sh_blocks();
    let auth = demo("plain/authkey.yaml", "tailscale_authkey: ");
    let (mut ran, mut skipped) = (Vec::new(), Vec::new());
    for b in &blocks {
        for l in logical_lines(&b.text) {
            let l = l.replace("cargo run --release -- ", "tskeyctl ");
            let code = l.split(" #").next().unwrap_or(&l);
            assert!(
                !code.contains('…'),
                "README.md:{}: a placeholder in {l:?}",
                b.line
            );
            for args in invocations(&l) {
                assert_parses(&format!("README.md:{}", b.line), &args);
            }
        }
        let Some(name) = b.mark.strip_prefix("run") else {
            assert!(
                b.mark.starts_with("skip "),
                "README.md:{}: mark {:?}",
                b.line,
                b.mark
            );
            skipped.push(format!("README.md:{} ({})", b.line, b.mark));
            continue;
        };
        let dir = scratch();
        let mut envs = Vec::new();
        let fake = crate::fake_tailscale::FakeTailscale::start();
        if name.contains("fake API") {
            let secret = demo("plain/oauth.env", "TAILSCALE_OAUTH_CLIENT_SECRET=");
            fake.add_oauth_client_with_secret(&secret, &["auth_keys"], &["tag:server"]);
            envs.push(("TAILSCALE_BASE_URL", fake.url()));
        }
        let o = run_block(dir.path(), &b.text, &envs);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(0), "README.md:{}: {err}", b.line);
        assert!(!err.contains("error"), "README.md:{}: {err}", b.line);
        let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).expect(rel);
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        match name.trim() {
            "" => assert_eq!(read("run/secrets/tailscale_authkey"), format!("{auth}\n")),
            "sops-nix" => {
                let rule = read("secrets.example/.sops.yaml");
                let recipient = stdout.lines().next().expect("recipient");
                assert!(
                    rule.contains(recipient),
                    "{recipient} is the .sops.yaml recipient"
                );
                assert_eq!(read("run/demo-authkey"), auth);
                assert_eq!(read("run/secrets/tailscale_authkey"), format!("{auth}\n"));
                assert!(stdout.contains("✓ tailscale_authkey  "), "{stdout}");
            }
            "agenix" => {
                let pubkey = read("secrets.example/host/ssh_host_ed25519_key.pub");
                assert_eq!(stdout.trim_end(), pubkey.trim_end());
                let age_plain = read("secrets.example/plain/authkey.txt");
                assert_eq!(read("run/secrets/tailscale_authkey"), age_plain);
            }
            "tailscale-manager (fake API)" => {
                let minted = fake.minted_keys();
                assert_eq!(minted.len(), 2, "provision and mint each minted one");
                assert_eq!(
                    read("run/secrets/tailscale_authkey"),
                    format!("{}\n", minted[0])
                );
                assert_eq!(read("run/secrets/one-off"), format!("{}\n", minted[1]));
                let prom = dir.path().join("run/tskeyctl.prom");
                assert_eq!(crate::util::mode(&prom), 0o644);
                assert!(read("run/tskeyctl.prom").contains("tskeyctl_status_exit_code 0\n"));
                assert!(stdout.contains("\"class\":\"ok\""), "{stdout}");
                for k in &minted {
                    assert!(!err.contains(k.as_str()), "a key on stderr");
                }
            }
            other => panic!("README.md:{}: no check for block {other:?}", b.line),
        }
        ran.push(format!("README.md:{}", b.line));
    }
    println!(
        "README shell blocks: {} run ({}), {} skipped: {}",
        ran.len(),
        ran.join(", "),
        skipped.len(),
        skipped.join(", ")
    );
    assert_eq!(ran.len(), 4, "{ran:?}");
    assert_eq!(ran.len() + skipped.len(), blocks.len());
}
