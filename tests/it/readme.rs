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
