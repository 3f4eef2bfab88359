//! Helpers of the `nixos_module` and `systemd_units` tests: the external programs they drive
//! (nix-instantiate, systemd-analyze; absent is a skip locally and a failure under `CI=true`,
//! see `util::missing`), and evaluating tests/nix/eval.nix once per test run. Rendering
//! evaluated units as files lives in `units`.

#![allow(dead_code)]

pub mod units;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::util::{find_program as program, missing, repo};

/// The stub package's executable, as the harness's `pkgs.tskeyctl` yields it.
pub const EXE: &str = "/nix/store/00000000000000000000000000000000-tskeyctl-0.1.0/bin/tskeyctl";
/// The stub coreutils' mkdir, with the `+` (privileged) prefix the module gives it.
pub const MKDIR: &str = "+/nix/store/00000000000000000000000000000000-coreutils-9.7/bin/mkdir";
/// The default host key (ed25519 entry of the openssh stub's hostKeys).
pub const HOST_KEY: &str = "/etc/ssh/ssh_host_ed25519_key";

/// `program`, or skip/fail with a notice naming the package that provides it.
pub fn require(env_var: &str, name: &str, package: &str) -> Option<PathBuf> {
    match program(env_var, name) {
        Some(p) => Some(p),
        None => missing(&format!(
            "{name} not found (set {env_var} or `apt-get install {package}`)"
        )),
    }
}

/// Runs a command, returning (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every `.nix` file of the repository (outside target/ and hidden directories).
pub fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                nix_files(&path, out);
            }
        } else if name.ends_with(".nix") {
            out.push(path);
        }
    }
}

pub fn nix_instantiate() -> Option<std::path::PathBuf> {
    require("NIX_INSTANTIATE_BIN", "nix-instantiate", "nix-bin")
}

/// The JSON of tests/nix/eval.nix, evaluated once; `None` = skipped.
pub fn eval() -> Option<&'static Value> {
    static EVAL: OnceLock<Option<Value>> = OnceLock::new();
    EVAL.get_or_init(|| {
        let nix = nix_instantiate()?;
        let Some(lib) = std::env::var_os("NIXPKGS_LIB").filter(|v| !v.is_empty()) else {
            eprintln!(
                "skipped: NIXPKGS_LIB is unset (point it at a nixpkgs lib/, e.g. ../shared/nixpkgs-lib/lib)"
            );
            return None;
        };
        let lib = std::path::absolute(lib).expect("absolute NIXPKGS_LIB");
        let (code, out, err) = run(Command::new(nix)
            .current_dir(repo())
            .env("NIXPKGS_LIB", &lib)
            .args(["--readonly-mode", "--eval", "--strict", "--json", "tests/nix/eval.nix"]));
        assert_eq!(code, 0, "nix-instantiate failed:\n{err}");
        Some(serde_json::from_str(&out).expect("eval.nix prints JSON"))
    })
    .as_ref()
}
