//! The integration-test harness: one test binary, one `util` module, one fake Tailscale API.
//!
//! Every integration test is a module here (run one with `cargo test --test it <module>`), so
//! the crate is linked once. Shared support is declared once: `util` (running the binary, peers,
//! skips, secret audits), `fake_tailscale` (the std-only fake API; `examples/fake_tailscale.rs`
//! includes it by path), `mint_common` (runs audited against the fake's secrets),
//! `install_common` (sops-nix fixtures), `sops_support` (the sops interop matrix),
//! `nix_support` (nix-instantiate and systemd-analyze), `unit_runner` (runs a systemd unit's
//! Exec*= lines from its text where systemd is not PID 1) and `podman_support` (a real podman
//! with a local busybox image; the `podman_*` tests skip with a NOTICE where it cannot run).
//!
//! `attack_*` modules are the hostile suite: each case plays an unprivileged local user, a
//! hostile or broken API, or a hostile file against one class of defence, and asserts the exit
//! code, that the message names the problem, that any existing output is byte-identical, that no
//! temp file is left, and that no secret reaches stdout, stderr, state or `status`. Cases that
//! need root (devices, other owners) print a notice and skip when not run as root; cases that
//! need the unprivileged attacker account (`tskeyctl-attacker`, made by `.ci/run`) skip without it.

// Support.
mod fake_tailscale;
mod install_common;
mod mint_common;
mod nix_support;
mod podman_support;
mod sops_support;
mod unit_runner;
mod util;

// Tests.
mod age_plugins;
mod architecture;
mod attack_dirs;
mod attack_echo;
mod attack_identity;
mod attack_install;
mod attack_keys;
mod attack_material;
mod attack_messages;
mod attack_state;
mod attack_targets;
mod boot_storm;
mod cli_docs;
mod doctor;
mod edit_cli;
mod examples;
mod fake_tailscale_api;
mod first_hour;
mod fuzz_regressions;
mod identity_sources;
mod install_cli;
mod install_conformance;
mod install_ramfs;
mod keys;
mod kubernetes;
mod mint;
mod mint_faults;
mod mint_library;
mod mint_revoke_on_write_failure;
mod nixos_module;
mod podman_after_join;
mod podman_module;
mod podman_sidecar;
mod provision_api;
mod provision_local;
mod readme;
mod regressions;
mod sops_bad_input;
mod sops_cli;
mod sops_conformance;
mod sops_encrypt_interop;
mod sops_fuzz_regressions;
mod sops_interop;
mod sops_peers_js_age;
mod sops_roundtrip;
mod sops_yaml_cli;
mod standalone;
mod systemd_units;
mod tailscaled;
mod wif;
