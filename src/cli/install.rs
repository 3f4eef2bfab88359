//! `tskeyctl install MANIFEST.json`: the sops-install-secrets replacement (flags and environment
//! here; the flow is `crate::install`).

use std::path::PathBuf;

use clap::Args;

use super::write_stdout;
use crate::error::Error;
use crate::install::{self, Options};

/// Install many secrets into /run/secrets from a sops-nix manifest (NixOS activation).
#[derive(Args, Debug)]
#[command(
    long_about = "Install many secrets into /run/secrets from a sops-nix manifest, like \
sops-install-secrets: ramfs at secretsMountPoint, numbered generations, atomic symlinkPath switch, \
per-secret owner/group/mode, `path` symlinks, keepGenerations, restart/reload units of changed \
secrets. Everything is validated and decrypted before anything changes.\n\n\
Environment: NIXOS_ACTION=dry-activate reports `would add/modify/remove` and changes nothing; \
TSKEYCTL_RESTART_VIA_SYSTEMCTL=1 (or SOPS_RESTART_UNITS_VIA_SYSTEMCTL=1) runs \
`systemctl --no-block try-restart` instead of appending to /run/nixos/activation-*-list.\n\n\
Exit codes: 0 ok, 65 manifest or sops file malformed / MAC mismatch, 66 manifest or sops file \
missing, 73 cannot mount or write, 75 systemctl failed, 77 no identity opens a sops file, 78 invalid \
manifest entry (name, mode, format, owner, group, missing key, PGP/templates).",
    after_help = "Examples:\n  \
tskeyctl install manifest.json                        # activation (as root)\n  \
tskeyctl install --check manifest.json                # build-time check: no keys, no root\n  \
tskeyctl install --root /tmp/t --no-mount m.json       # everything under /tmp/t, no ramfs"
)]
pub struct InstallArgs {
    /// The manifest (sops-nix `manifest.json` shape).
    #[arg(value_name = "MANIFEST.json")]
    manifest: PathBuf,
    /// Only validate the manifest and the encrypted files (formats parse, keys exist); no
    /// decryption, no root, no passwd lookups.
    #[arg(long)]
    check: bool,
    /// Prefix every absolute path of the manifest with DIR (mount point, symlink, paths, sops
    /// files, keys, /run/nixos).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Do not mount ramfs/tmpfs; use the mount point directory as it is.
    #[arg(long)]
    no_mount: bool,
    /// Never consult passwd/group: every owner and group is root (sops-nix `-ignore-passwd`,
    /// for the neededForUsers manifest that runs before users exist).
    #[arg(long)]
    ignore_passwd: bool,
}

fn env_is(name: &str, value: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == value)
}

pub fn install(a: InstallArgs) -> Result<(), Error> {
    let opts = Options {
        manifest: a.manifest,
        root: a.root,
        check: a.check,
        ignore_passwd: a.ignore_passwd,
        mount: !a.no_mount,
        dry: env_is("NIXOS_ACTION", "dry-activate"),
        via_systemctl: env_is("TSKEYCTL_RESTART_VIA_SYSTEMCTL", "1")
            || env_is("SOPS_RESTART_UNITS_VIA_SYSTEMCTL", "1"),
    };
    let mut decoder = install::sops::SopsDecoder::default();
    let out = install::run(&opts, &mut decoder)?;
    // sops-nix's change lines (`adding secret: x`) are what install says it did: -q silences
    // them like every command's one line per action.
    if crate::log::level() < 0 {
        return Ok(());
    }
    write_stdout(out.report.as_bytes())
}
