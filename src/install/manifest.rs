//! The manifest `tskeyctl install` reads: the JSON that sops-nix's `manifest-for.nix` writes
//! (`builtins.toJSON` of the `sops.secrets` submodules plus the global options), so a sops-nix
//! user can point tskeyctl at the same data. Field names and meanings follow sops-nix's
//! `pkgs/sops-install-secrets/main.go` (`type manifest`, `type secret`); see
//! `docs/nixos.md`, "sops-nix compatibility".
//!
//! Parsing is lenient where sops-nix is (unknown fields are accepted, but each is reported as a
//! warning so a typo does not go unnoticed) and strict where sops-nix is silently wrong (an
//! unknown `format` is an error here, not a quiet fallback to yaml).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The whole manifest.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The secrets to install.
    #[serde(default)]
    pub secrets: Vec<Secret>,
    /// sops-nix templates; tskeyctl does not render templates, so only an empty list is accepted.
    #[serde(default)]
    pub templates: Vec<Value>,
    /// Placeholder map for templates (ignored; meaningful only with templates).
    #[serde(default)]
    pub placeholder_by_secret_name: Option<BTreeMap<String, String>>,
    /// The ramfs mount that holds the numbered generations.
    #[serde(default = "default_mount_point")]
    pub secrets_mount_point: String,
    /// The symlink that points at the current generation.
    #[serde(default = "default_symlink_path")]
    pub symlink_path: String,
    /// How many generations to keep (0 = never prune). The NixOS module's default is 1.
    #[serde(default = "default_keep")]
    pub keep_generations: u64,
    /// RSA ssh keys for GnuPG (refused: tskeyctl has no PGP support).
    #[serde(default)]
    pub ssh_key_paths: Option<Vec<String>>,
    /// An existing GNUPGHOME (refused: tskeyctl has no PGP support).
    #[serde(default)]
    pub gnupg_home: Option<String>,
    /// An age identity file.
    #[serde(default)]
    pub age_key_file: Option<String>,
    /// ssh ed25519 keys to use as age identities (converted and native).
    #[serde(default)]
    pub age_ssh_key_paths: Option<Vec<String>>,
    /// Mount tmpfs with `noswap` instead of ramfs.
    #[serde(default)]
    pub use_tmpfs: bool,
    /// home-manager mode (refused: tskeyctl installs system secrets only).
    #[serde(default)]
    pub user_mode: bool,
    /// What to log.
    #[serde(default)]
    pub logging: Logging,
    /// Anything else: reported as a warning.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// `sops.log`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Logging {
    /// Log each imported key's recipient.
    #[serde(default = "yes")]
    pub key_import: bool,
    /// Print `adding secret: …` lines.
    #[serde(default = "yes")]
    pub secret_changes: bool,
    /// Anything else: reported as a warning.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            key_import: true,
            secret_changes: true,
            unknown: BTreeMap::new(),
        }
    }
}

/// One `sops.secrets.<name>` entry.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Secret {
    /// File name below the generation directory; may contain `/`.
    pub name: String,
    /// Lookup path in the decrypted document (`a/b`); empty = the whole file.
    #[serde(default)]
    pub key: String,
    /// Final path; a symlink to `<symlinkPath>/<name>` is made when it differs from that.
    #[serde(default)]
    pub path: Option<String>,
    /// Owner by name (wins over `uid`).
    #[serde(default)]
    pub owner: Option<String>,
    /// Owner by number when `owner` is null (range-checked in validation).
    #[serde(default)]
    pub uid: u64,
    /// Group by name (wins over `gid`).
    #[serde(default)]
    pub group: Option<String>,
    /// Group by number when `group` is null (range-checked in validation).
    #[serde(default)]
    pub gid: u64,
    /// The sops file.
    pub sops_file: String,
    /// `yaml` (also for `""`), `json`, `binary`, `dotenv` or `ini`.
    #[serde(default)]
    pub format: String,
    /// Octal permission string, e.g. `"0400"`.
    #[serde(default = "default_mode")]
    pub mode: String,
    /// Units to `try-restart` when this secret is new or changed.
    #[serde(default)]
    pub restart_units: Vec<String>,
    /// Units to `try-reload-or-restart` when this secret is new or changed.
    #[serde(default)]
    pub reload_units: Vec<String>,
    /// Anything else: reported as a warning, except the module options sops-nix itself ignores.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// Secret options the NixOS module writes that have no effect on installing (sops-nix ignores
/// them too), so they are not worth a warning.
const KNOWN_IGNORED_SECRET_FIELDS: &[&str] = &["sopsFileHash", "neededForUsers"];

fn default_mount_point() -> String {
    "/run/secrets.d".into()
}
fn default_symlink_path() -> String {
    "/run/secrets".into()
}
fn default_keep() -> u64 {
    1
}
fn default_mode() -> String {
    "0400".into()
}
fn yes() -> bool {
    true
}

impl Manifest {
    /// Parses manifest JSON. The error is serde's message (line and column, never values).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// Field names this tool does not know, as dotted paths (`secrets[3].foo`), for warnings.
    pub fn unknown_fields(&self) -> Vec<String> {
        let mut out: Vec<String> = self.unknown.keys().cloned().collect();
        out.extend(self.logging.unknown.keys().map(|k| format!("logging.{k}")));
        for (i, s) in self.secrets.iter().enumerate() {
            out.extend(
                s.unknown
                    .keys()
                    .filter(|k| !KNOWN_IGNORED_SECRET_FIELDS.contains(&k.as_str()))
                    .map(|k| format!("secrets[{i}].{k}")),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sops_nix_sample() {
        let json = br#"{"secrets":[{"name":"tailscale/authkey","key":"tailscale/authkey","path":"/run/secrets/tailscale/authkey",
  "format":"yaml","mode":"0400","owner":null,"uid":0,"group":null,"gid":0,"neededForUsers":false,"sopsFileHash":"x",
  "sopsFile":"/nix/store/x-secrets.yaml","restartUnits":["tailscaled-autoconnect.service"],"reloadUnits":[]}],
 "templates":[],"placeholderBySecretName":{},"secretsMountPoint":"/run/secrets.d","symlinkPath":"/run/secrets",
 "keepGenerations":1,"sshKeyPaths":[],"gnupgHome":null,"ageKeyFile":null,
 "ageSshKeyPaths":["/etc/ssh/ssh_host_ed25519_key"],"useTmpfs":false,"userMode":false,
 "logging":{"keyImport":true,"secretChanges":true}}"#;
        let m = Manifest::parse(json).unwrap();
        assert_eq!(m.secrets.len(), 1);
        let s = &m.secrets[0];
        assert_eq!(s.name, "tailscale/authkey");
        assert_eq!(s.owner, None);
        assert_eq!(s.restart_units, vec!["tailscaled-autoconnect.service"]);
        assert_eq!(m.keep_generations, 1);
        assert_eq!(
            m.age_ssh_key_paths.as_deref(),
            Some(&["/etc/ssh/ssh_host_ed25519_key".to_string()][..])
        );
        assert!(m.unknown_fields().is_empty(), "{:?}", m.unknown_fields());
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let m = Manifest::parse(
            br#"{"secrets":[{"name":"a","sopsFile":"/f","colour":1}],"extra":true,"logging":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!(m.secrets_mount_point, "/run/secrets.d");
        assert_eq!(m.symlink_path, "/run/secrets");
        assert_eq!(m.secrets[0].mode, "0400");
        assert_eq!(m.secrets[0].format, "");
        assert!(m.logging.secret_changes);
        assert_eq!(
            m.unknown_fields(),
            vec!["extra", "logging.x", "secrets[0].colour"]
        );
    }

    #[test]
    fn wrong_types_are_errors() {
        assert!(
            Manifest::parse(br#"{"secrets":[{"name":"a","sopsFile":"/f","uid":"x"}]}"#).is_err()
        );
        assert!(Manifest::parse(br#"{"secrets":{}}"#).is_err());
        assert!(Manifest::parse(b"[]").is_err());
    }
}
