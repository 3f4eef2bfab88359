//! Helpers of `tests/nixos_module.rs`: finding the external programs (nix-instantiate,
//! systemd-analyze) the NixOS-module tests drive, deciding between "skip" and "fail" when they
//! are absent (absent is a failure under `CI=true`), and rendering the unit definitions the
//! module evaluates to as systemd unit files so systemd-analyze can judge them.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The crate root (the repository).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing prerequisite: `None` after printing "skipped: …" locally, a panic in CI.
pub fn missing<T>(what: &str) -> Option<T> {
    assert!(!in_ci(), "CI=true but {what}");
    eprintln!("skipped: {what}");
    None
}

/// A program from `$ENV_VAR` or else from PATH.
pub fn program(env_var: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

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

/// One `Key=value` line per value, as NixOS renders unit options: lists repeat the key, booleans
/// are `true`/`false`, an empty string clears the setting.
fn render_entries(
    section: &str,
    entries: &[(&str, &Value)],
    subst: &dyn Fn(&str) -> String,
) -> String {
    let mut s = format!("[{section}]\n");
    for (key, value) in entries {
        let values: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for v in values {
            let text = match v {
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                Value::String(s) => subst(s),
                other => panic!("unexpected unit value for {key}: {other}"),
            };
            s.push_str(&format!("{key}={text}\n"));
        }
    }
    s
}

fn object_entries(v: &Value) -> Vec<(&str, &Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.as_str(), v)).collect())
        .unwrap_or_default()
}

/// A `.service` file from the eval summary of one service (see tests/nix/eval.nix).
pub fn render_service(svc: &Value, subst: &dyn Fn(&str) -> String) -> String {
    let mut unit: Vec<(&str, &Value)> = vec![("Description", &svc["description"])];
    unit.extend([
        ("After", &svc["after"]),
        ("Wants", &svc["wants"]),
        ("Before", &svc["before"]),
    ]);
    unit.extend(object_entries(&svc["unitConfig"]));
    format!(
        "{}\n{}\n{}",
        render_entries("Unit", &unit, subst),
        render_entries("Service", &object_entries(&svc["serviceConfig"]), subst),
        render_entries("Install", &[("WantedBy", &svc["wantedBy"])], subst)
    )
}

/// A `.timer` or `.path` file: `section` is `Timer` or `Path`, `config` its settings.
pub fn render_trigger(section: &str, config: &Value, wanted_by: &Value) -> String {
    let id = |s: &str| s.to_string();
    format!(
        "{}\n{}",
        render_entries(section, &object_entries(config), &id),
        render_entries("Install", &[("WantedBy", wanted_by)], &id)
    )
}
