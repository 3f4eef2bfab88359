//! The systemd units of this repository judged by systemd itself: `systemd-analyze verify` on
//! contrib/systemd/ (the template and the podman drop-in on a stand-in container unit) and on the
//! units the NixOS module generates for nixos-module/example.nix, rendered as NixOS renders them.
//! Store paths and /usr/local/bin/tskeyctl are replaced by programs that exist on this machine.
//!
//! Locally a missing systemd-analyze (or nix-instantiate / NIXPKGS_LIB for the generated units)
//! prints "skipped: …"; with `CI=true` a missing tool fails.

use std::process::Command;

use crate::nix_support::units::{render_service, render_trigger};
use crate::nix_support::{EXE, eval, require, run};
use crate::util::repo;

/// A temp directory holding `files`, each with /usr/local/bin/tskeyctl and the stub store paths
/// replaced by programs that exist here, verified together by systemd-analyze.
pub fn verify_units(files: &[(String, String)], units: &[&str]) -> Option<()> {
    let analyze = require("SYSTEMD_ANALYZE_BIN", "systemd-analyze", "systemd")?;
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write unit");
    }
    let mut cmd = Command::new(analyze);
    cmd.args(["verify", "--man=no"]);
    for unit in units {
        cmd.arg(dir.path().join(unit));
    }
    let (code, out, err) = run(&mut cmd);
    let dir_str = dir.path().display().to_string();
    let complaints: Vec<&str> = err
        .lines()
        .chain(out.lines())
        .filter(|l| l.contains(&dir_str) || units.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        code == 0 && complaints.is_empty(),
        "systemd-analyze verify (exit {code}) complains:\n{err}{out}"
    );
    Some(())
}

pub fn local_binaries(text: &str) -> String {
    text.replace("/usr/local/bin/tskeyctl", env!("CARGO_BIN_EXE_tskeyctl"))
        .replace(EXE, env!("CARGO_BIN_EXE_tskeyctl"))
        .replace(
            "/nix/store/00000000000000000000000000000000-coreutils-9.7/bin/mkdir",
            "/bin/mkdir",
        )
}

#[test]
fn contrib_units_pass_systemd_analyze_verify() {
    let contrib = repo().join("contrib/systemd");
    let read = |name: &str| {
        local_binaries(
            &std::fs::read_to_string(contrib.join(name))
                .unwrap_or_else(|e| panic!("contrib/systemd/{name}: {e}")),
        )
    };
    let files = vec![
        (
            "tskeyctl-provision@.service".to_string(),
            read("tskeyctl-provision@.service"),
        ),
        (
            "web-ts.service".to_string(),
            "[Unit]\nDescription=a podman container\n\n[Service]\nExecStart=/bin/sleep infinity\n"
                .to_string(),
        ),
        (
            "web-ts.service.d/tskeyctl.conf".to_string(),
            read("podman-sidecar.conf"),
        ),
    ];
    verify_units(
        &files,
        &["tskeyctl-provision@tailscale.service", "web-ts.service"],
    );
}

#[test]
fn generated_units_pass_systemd_analyze_verify() {
    let Some(e) = eval() else { return };
    let example = &e["example"];
    let mut files = Vec::new();
    let mut units = Vec::new();
    for (name, svc) in example["services"].as_object().expect("services") {
        if name.starts_with("tskeyctl-") {
            files.push((
                format!("{name}.service"),
                render_service(svc, &local_binaries),
            ));
            units.push(format!("{name}.service"));
        }
    }
    for (kind, section, key) in [
        ("timers", "Timer", "timerConfig"),
        ("paths", "Path", "pathConfig"),
    ] {
        for (name, t) in example[kind].as_object().expect(kind) {
            let suffix = if kind == "timers" { "timer" } else { "path" };
            files.push((
                format!("{name}.{suffix}"),
                render_trigger(section, &t[key], &t["wantedBy"]),
            ));
            units.push(format!("{name}.{suffix}"));
        }
    }
    assert_eq!(units.len(), 7, "{units:?}");
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    verify_units(&files, &units);
}
