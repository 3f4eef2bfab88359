//! The integration-test harness: one test binary, one `util` module, one fake Tailscale API.
//!
//! `attack_*` modules are the hostile suite: each case plays an unprivileged local user, a
//! hostile or broken API, or a hostile file against one class of defence, and asserts the exit
//! code, that the message names the problem, that any existing output is byte-identical, that no
//! temp file is left, and that no secret reaches stdout, stderr, state or `status`. Cases that
//! need root (devices, other owners) print a notice and skip when not run as root; cases that
//! need the unprivileged attacker account (`tskeyctl-attacker`, made by `.ci/run`) skip without it.

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
#[path = "../fake_tailscale/mod.rs"]
mod fake_tailscale;
mod standalone;
mod util;
