//! `tskeyctl doctor`: takes `provision`'s flags and checks, without minting or writing anything,
//! every stage a provision run would go through — the option values, the identities and their
//! recipients, whether the source opens with them and what it holds, a federated identity's ID
//! token and the clock, whether the API answers and accepts the credentials (the OAuth token or
//! the federation token exchange, then a read of the keys) with the `auth_keys` scope, the tags,
//! the output and state directories (sink's trusted walk, no write), and with
//! `--skip-if-logged-in` tailscaled's LocalAPI. One ✓/✗ line per check with a hint for each ✗,
//! or `--json`; exit 0 when all pass, 1 otherwise.

use std::path::Path;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;
use serde::Serialize;

use super::provision::{ProvisionArgs, absolute, name_of};
use super::sops::load_identities;
use super::write_stdout;
use crate::credentials::{Credentials, CredentialsError};
use crate::error::{Error, code};
use crate::material::{Federated, Material};
use crate::mint::{ApiSettings, Deadline, KeyOverrides, idtoken};
use crate::provision;
use crate::sink::{self, WriteOptions};
use crate::tailscaled;

/// Check a provision set-up without minting or writing anything.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl doctor --source /etc/nixos/secrets/ts.yaml --key tailscale/oauth --tags tag:server \\\n      \
--out /run/secrets/tailscale_authkey\n  \
tskeyctl doctor --client-id \"$ID\" --id-token-file /var/run/secrets/tokens/ts --tags tag:k8s \\\n      \
--out /run/secrets/tailscale_authkey --json\n\n\
Takes provision's flags. Exit codes: 0 every check passed, 1 a check failed (each ✗ line has a \
hint), 2 usage error.")]
pub struct DoctorArgs {
    #[command(flatten)]
    p: ProvisionArgs,
    /// Print the checks as one JSON document.
    #[arg(long)]
    json: bool,
}

/// One check's verdict.
#[derive(Serialize)]
struct Check {
    check: &'static str,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
}

#[derive(Default)]
struct Report(Vec<Check>);

impl Report {
    fn pass(&mut self, check: &'static str, detail: String) {
        self.0.push(Check {
            check,
            ok: true,
            detail,
            hint: None,
        });
    }

    fn fail(&mut self, check: &'static str, detail: String, hint: String) {
        self.0.push(Check {
            check,
            ok: false,
            detail,
            hint: Some(hint),
        });
    }

    /// Records `e` as a failure with a hint chosen by its exit code.
    fn error(&mut self, check: &'static str, e: &Error) {
        let hint = match e.exit_code() {
            code::NO_PERM => match check {
                "source" => {
                    "no identity here opens the source: compare the file's recipients with this \
host's (`tskeyctl recipient`) and re-encrypt (`tskeyctl updatekeys`)"
                }
                _ => {
                    "the credentials were rejected: check the client id, secret or ID token and \
its trust settings in the admin console"
                }
            },
            code::NO_INPUT => "a file is missing or unreadable: check the path and permissions",
            code::DATA => "the content is malformed or holds no usable material (see the message)",
            code::TEMP_FAIL => {
                "the API or token source did not answer usefully: check the network and try again"
            }
            code::CANT_CREATE => {
                "fix the directory's owner or mode (root or the caller, not group/other-writable)"
            }
            _ => "fix the option or setting the message names",
        };
        self.fail(check, e.to_string(), hint.into());
    }

    fn ok(&self) -> bool {
        self.0.iter().all(|c| c.ok)
    }
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The options provision would use, checked as provision checks them.
fn options(a: &ProvisionArgs, r: &mut Report) -> Option<(KeyOverrides, ApiSettings)> {
    let checked = a.checked().map(|c| (c.key, c.api));
    match checked {
        Ok((key, api)) => {
            r.pass(
                "options",
                format!(
                    "tags [{}], expiry {}, API {}",
                    key.tags.join(" "),
                    humantime::format_duration(key.expiry),
                    api.url_for(None)
                ),
            );
            Some((key, api))
        }
        Err(e) => {
            r.error("options", &e);
            None
        }
    }
}

/// A federated identity's ID token: where from, when issued and when it expires, against now.
fn clock(f: &Federated, api: &ApiSettings, r: &mut Report) {
    let Some(from) = &f.id_token else {
        return;
    };
    let deadline = Deadline::after(api.deadline);
    match idtoken::obtain(from, f.audience.as_deref(), &deadline) {
        Ok(t) => {
            let now = epoch(SystemTime::now());
            let skew = crate::material::federated::EXPIRY_SKEW_SECS;
            if let Some(iat) = t.iat.filter(|iat| *iat > now + skew) {
                r.fail(
                    "clock",
                    format!(
                        "the ID token from {} was issued {}s in the future",
                        from.describe(),
                        iat - now
                    ),
                    "this host's clock is behind: check NTP (timedatectl)".into(),
                );
                return;
            }
            let exp = match t.exp {
                Some(e) if e >= now => format!("expires in {}s", e - now),
                Some(e) => format!("expired {}s ago (within the allowed skew)", now - e),
                None => "has no expiry".into(),
            };
            let iat = t.iat.map_or("has no issue time".into(), |i| {
                format!("issued {}s ago", now.saturating_sub(i))
            });
            r.pass(
                "clock",
                format!("the ID token from {} {iat}, {exp}", from.describe()),
            );
        }
        Err(e) => r.error("clock", &e.into()),
    }
}

/// The material provision would find: from `--source`, else the federation flags.
fn material(a: &ProvisionArgs, r: &mut Report) -> Option<Material> {
    let loaded = match &a.source {
        Some(src) => {
            let ids = match load_identities(&a.identity) {
                Ok(ids) => {
                    let detail = if ids.is_empty() {
                        "none found (enough for a plain source; an encrypted one needs -i or \
the host key)"
                            .to_owned()
                    } else {
                        format!(
                            "{} found, recipients {}",
                            ids.entries().len(),
                            crate::log::bounded::list(&ids.recipients(), ", ")
                        )
                    };
                    r.pass("identities", detail);
                    ids
                }
                Err(e) => {
                    r.error("identities", &e);
                    return None;
                }
            };
            // Hand the identities just loaded to the source (read key files and run
            // SOPS_AGE_KEY_CMD once, not twice).
            let loaded = std::cell::RefCell::new(Some(ids));
            let ids_once = || {
                loaded
                    .borrow_mut()
                    .take()
                    .map_or_else(|| load_identities(&a.identity), Ok)
            };
            absolute(src).and_then(|src| {
                let mut m = provision::material_from_source(
                    &src,
                    a.key.as_deref(),
                    a.input_type,
                    &ids_once,
                )?;
                if let Material::Federated(f) = &mut m {
                    a.federation.complete(f)?;
                }
                Ok(m)
            })
        }
        None => match a.federation.federated() {
            Ok(Some(f)) => Ok(Material::Federated(f)),
            Ok(None) => Err(CredentialsError::None.into()),
            Err(e) => Err(e.into()),
        },
    };
    match loaded {
        Ok(m) => {
            let what = match &m {
                Material::AuthKey(_) => "an auth key (written as is; no API call)".to_owned(),
                Material::Federated(f) => format!(
                    "a federated identity {} (ID token from {})",
                    f.client_id,
                    f.id_token.as_ref().map_or("?".into(), |t| t.describe())
                ),
                Material::OAuth(c) => format!(
                    "an OAuth client{}",
                    c.client_id
                        .as_deref()
                        .map_or(String::new(), |id| format!(" {id}"))
                ),
                Material::ApiKey(k) => format!("an API key (tailnet {})", k.tailnet),
            };
            let from = a
                .source
                .as_ref()
                .map_or("the federation flags".into(), |s| s.display().to_string());
            r.pass("source", format!("{from} holds {what}"));
            Some(m)
        }
        Err(e) => {
            r.error("source", &e);
            None
        }
    }
}

/// The API: the credentials accepted, the scopes, the tags.
fn api(key: &KeyOverrides, api: &ApiSettings, creds: &Credentials, r: &mut Report) {
    match key.resolve(Some(creds)) {
        Ok(o) => r.pass(
            "tags",
            format!(
                "[{}] well-formed; the API checks that the credentials own them when minting",
                o.tags.join(" ")
            ),
        ),
        Err(e) => r.error("tags", &e.into()),
    }
    let url = api.url_for(Some(creds));
    let checked = api
        .minter(Some(creds))
        .and_then(|mut m| m.check_access(creds));
    match checked {
        Ok((n, scopes)) => {
            r.pass(
                "api",
                format!("{url} accepted {} ({n} key(s) visible)", creds.describe()),
            );
            match scopes {
                None => r.pass(
                    "scopes",
                    "an API key acts with its user's rights (no scopes)".into(),
                ),
                Some(s) if s.iter().any(|s| s == "auth_keys" || s == "all") => r.pass(
                    "scopes",
                    format!("the access token carries [{}]", s.join(" ")),
                ),
                Some(s) => r.fail(
                    "scopes",
                    format!("the access token carries [{}], not auth_keys", s.join(" ")),
                    "give the OAuth client or federated identity the auth_keys scope in the \
admin console"
                        .into(),
                ),
            }
        }
        Err(e) => r.error("api", &e.into()),
    }
}

/// The output and state directories, through sink's trusted walk (nothing is written).
fn directories(a: &ProvisionArgs, r: &mut Report) {
    let write = WriteOptions {
        mkdir: a.mkdir,
        ..WriteOptions::default()
    };
    match sink::preflight(&a.out, &write) {
        Ok(()) => match writable(a.out.parent()) {
            Ok(()) => r.pass(
                "output",
                format!("{} can be written (trusted directory)", a.out.display()),
            ),
            Err(why) => r.fail(
                "output",
                format!("{}: {why}", a.out.display()),
                "run as a user that may write the directory (root for /run/secrets)".into(),
            ),
        },
        Err(e) => r.error("output", &e.into()),
    }
    let name = match name_of(a.name.as_ref(), &a.out) {
        Ok(n) => n,
        Err(e) => return r.error("state", &e),
    };
    let record = a.state_dir.join(&name).join("state.json");
    let state_write = WriteOptions {
        mkdir: true,
        ..WriteOptions::default()
    };
    match sink::preflight(&record, &state_write) {
        Ok(()) => r.pass(
            "state",
            format!("{} can be written (trusted directory)", record.display()),
        ),
        Err(e) => r.error("state", &e.into()),
    }
}

/// Whether the caller may write `dir` (when it exists; a missing one is made with --mkdir).
fn writable(dir: Option<&Path>) -> Result<(), String> {
    let Some(dir) = dir.filter(|d| d.exists()) else {
        return Ok(());
    };
    nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK)
        .map_err(|e| format!("the directory {} is not writable: {e}", dir.display()))
}

/// tailscaled's backend state, with `--skip-if-logged-in`.
fn tailscaled_check(a: &ProvisionArgs, r: &mut Report) {
    if !a.skip_if_logged_in {
        return;
    }
    match tailscaled::backend_state(&a.tailscaled_socket, tailscaled::TIMEOUT) {
        Ok(s) => r.pass(
            "tailscaled",
            format!(
                "{} answers: BackendState {} ({})",
                a.tailscaled_socket.display(),
                s.as_str(),
                if s.logged_in() {
                    "logged in: provision would skip"
                } else {
                    "needs a login: provision would mint"
                }
            ),
        ),
        Err(e) => r.fail(
            "tailscaled",
            e.to_string(),
            "tailscaled is not answering on --tailscaled-socket: provision would mint as \
without --skip-if-logged-in"
                .into(),
        ),
    }
}

/// `tskeyctl doctor`.
pub fn doctor(d: DoctorArgs) -> Result<ExitCode, Error> {
    let a = &d.p;
    let mut r = Report::default();
    let opts = options(a, &mut r);
    if let Some(m) = material(a, &mut r) {
        if let (Some((key, api_settings)), Some(creds)) = (&opts, Credentials::from_material(m)) {
            if let Credentials::Federated(f) = &creds {
                clock(f, api_settings, &mut r);
            }
            api(key, api_settings, &creds, &mut r);
        }
    }
    directories(a, &mut r);
    tailscaled_check(a, &mut r);
    let ok = r.ok();
    let text = if d.json {
        let doc = serde_json::json!({ "ok": ok, "checks": r.0 });
        format!("{doc:#}\n")
    } else {
        let mut s = String::new();
        for c in &r.0 {
            let mark = if c.ok { '✓' } else { '✗' };
            s.push_str(&format!(
                "{mark} {}: {}\n",
                c.check,
                crate::log::bounded::cap(&c.detail)
            ));
            if let Some(h) = &c.hint {
                s.push_str(&format!("    hint: {h}\n"));
            }
        }
        s
    };
    write_stdout(text.as_bytes())?;
    Ok(ExitCode::from(if ok { code::OK } else { 1 }))
}
