//! The ENVIRONMENT, FILES and EXIT STATUS of the manual, defined once: `tskeyctl --help` prints
//! them after the command list and `tskeyctl generate man` renders them as man-page sections, so
//! the two never disagree. The exit codes are the constants of [`crate::error::code`]; the paths
//! are the ones the code uses. A test checks that every environment variable the code reads is
//! listed here.

use std::fmt::Write as _;

use crate::error::code;
use crate::hostkey;

/// An environment variable (or several that mean the same) and what it does.
pub struct Entry {
    pub names: &'static [&'static str],
    pub text: &'static str,
}

/// Every environment variable tskeyctl reads.
pub const ENVIRONMENT: &[Entry] = &[
    Entry {
        names: &["TS_API_CLIENT_SECRET", "TAILSCALE_OAUTH_CLIENT_SECRET"],
        text: "OAuth client secret (tskey-client-…) for mint, provision and revoke when no \
--oauth-secret-file is given.",
    },
    Entry {
        names: &["TS_API_CLIENT_ID", "TAILSCALE_OAUTH_CLIENT_ID"],
        text: "OAuth client id (optional: the secret embeds it).",
    },
    Entry {
        names: &["TAILSCALE_API_KEY"],
        text: "Personal API key (tskey-api-…), used when no OAuth client is given.",
    },
    Entry {
        names: &["TAILSCALE_TAILNET"],
        text: "Tailnet for an API key (default -, the key's own tailnet).",
    },
    Entry {
        names: &["TAILSCALE_BASE_URL", "TS_BASE_URL"],
        text: "Tailscale API base URL when no --api-url is given (https, or http only to \
loopback; default https://api.tailscale.com).",
    },
    Entry {
        names: &["SOPS_AGE_KEY"],
        text: "age identities (AGE-SECRET-KEY-… lines), tried before the host key.",
    },
    Entry {
        names: &["SOPS_AGE_KEY_FILE"],
        text: "A file of age identities, tried before the host key.",
    },
    Entry {
        names: &["SOPS_AGE_SSH_PRIVATE_KEY_FILE"],
        text: "An OpenSSH ed25519 private key, tried before the host key.",
    },
    Entry {
        names: &["SOPS_AGE_KEY_CMD"],
        text: "A command (split into words like a shell, run without one) whose standard output \
holds age identities; tried after SOPS_AGE_KEY_FILE.",
    },
    Entry {
        names: &["XDG_CONFIG_HOME", "HOME"],
        text: "Where sops keeps its defaults: $XDG_CONFIG_HOME/sops/age/keys.txt \
($HOME/.config/sops/age/keys.txt when unset) and $HOME/.ssh/id_ed25519, both tried when present.",
    },
    Entry {
        names: &["TS_CLIENT_ID"],
        text: "Client id of a federated identity (workload identity federation) when no \
--client-id is given; not secret.",
    },
    Entry {
        names: &["TS_ID_TOKEN"],
        text: "The OIDC ID token to exchange, or file:PATH naming a file that holds it (re-read \
every run).",
    },
    Entry {
        names: &["TS_AUDIENCE"],
        text: "Audience to request an ID token for (GitHub Actions, GCP) when no --audience is given.",
    },
    Entry {
        names: &[
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        ],
        text: "Set by GitHub Actions (permissions: id-token: write): where and with what bearer \
token to request an ID token.",
    },
    Entry {
        names: &["GCE_METADATA_HOST"],
        text: "Address of the GCP metadata server for --id-token-source gcp (default \
169.254.169.254; plain http only to loopback, link-local or metadata.google.internal).",
    },
    Entry {
        names: &["SOPS_EDITOR", "EDITOR"],
        text: "The editor of edit (split into words like a shell, as sops does); SOPS_EDITOR \
first. With neither set, the first of vim, nano and vi on PATH.",
    },
    Entry {
        names: &["PATH"],
        text: "Where edit looks for vim, nano or vi when no editor variable is set, and where \
the editor command is found.",
    },
    Entry {
        names: &["TMPDIR"],
        text: "Where edit makes the private 0700 directory for the plaintext (default /tmp).",
    },
    Entry {
        names: &["TSKEYCTL_IDENTITY_PASSPHRASE", "SSH_TO_AGE_PASSPHRASE"],
        text: "Passphrase of a passphrase-protected identity or ssh key (identity reads \
SSH_TO_AGE_PASSPHRASE, like ssh-to-age).",
    },
];

/// The state directory `provision`, `revoke` and `status` use by default.
pub const STATE_DIR: &str = "/var/lib/tskeyctl";

/// The files tskeyctl reads or writes by default.
pub fn files() -> Vec<(String, &'static str)> {
    vec![
        (
            hostkey::DEFAULT_KEY.to_string(),
            "The host key: the identity tried last (root only).",
        ),
        (
            hostkey::DEFAULT_PUB.to_string(),
            "Its public half: recipient's default input.",
        ),
        (
            format!("{STATE_DIR}/NAME/state.json"),
            "What provision minted for NAME (never the key), read by status and revoke; \
NAME/lock serializes runs.",
        ),
        (
            "/run/secrets/".to_string(),
            "Where keys are usually written (--out); install's default secrets directory.",
        ),
        (
            ".sops.yaml".to_string(),
            "encrypt's creation rules: the nearest one in the file's directory or above.",
        ),
    ]
}

/// The exit codes (`status` gives 1 and 2 their own meaning).
pub const EXIT_STATUS: &[(u8, &str)] = &[
    (code::OK, "success"),
    (
        code::INTERNAL,
        "internal error; status: a last run failed, or nothing is recorded where it looks",
    ),
    (
        code::USAGE,
        "usage error: bad flags, a secret-looking argument, a key to a terminal without \
--force; status: a key expired or expires within --warn",
    ),
    (
        code::DATA,
        "bad data: malformed sops/age/env file or ssh key, MAC mismatch, no usable material",
    ),
    (
        code::NO_INPUT,
        "missing input: a file is missing or unreadable",
    ),
    (code::CANT_CREATE, "cannot write the output"),
    (
        code::TEMP_FAIL,
        "temporary failure: network, timeout, 429, 5xx after the retries (try again later)",
    ),
    (
        code::NO_PERM,
        "permission: no identity opens the file, wrong passphrase, credentials rejected (401/403)",
    ),
    (
        code::CONFIG,
        "configuration: bad option value, insecure URL, tags not permitted, wrong tailnet or URL",
    ),
];

/// The three sections as `--help` text.
pub fn help() -> String {
    let mut s = String::from("Environment:\n");
    for e in ENVIRONMENT {
        let _ = writeln!(s, "  {}\n      {}", e.names.join(", "), e.text);
    }
    s.push_str("\nFiles:\n");
    for (path, text) in files() {
        let _ = writeln!(s, "  {path}\n      {text}");
    }
    s.push_str("\nExit status:\n");
    for (c, text) in EXIT_STATUS {
        let _ = writeln!(s, "  {c} {text}");
    }
    s.trim_end().to_string()
}

/// `text` escaped for roff: backslashes, and a leading `.` or `'` that would read as a request.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The three sections as man-page roff.
pub fn man_sections() -> String {
    let mut s = String::from(".SH ENVIRONMENT\n");
    for e in ENVIRONMENT {
        let names: Vec<String> = e
            .names
            .iter()
            .map(|n| format!("\\fB{}\\fR", roff(n)))
            .collect();
        let _ = writeln!(s, ".TP\n{}\n{}", names.join(", "), roff(e.text));
    }
    s.push_str(".SH FILES\n");
    for (path, text) in files() {
        let _ = writeln!(s, ".TP\n\\fI{}\\fR\n{}", roff(&path), roff(text));
    }
    s.push_str(".SH \"EXIT STATUS\"\n");
    for (c, text) in EXIT_STATUS {
        let _ = writeln!(s, ".TP\n\\fB{c}\\fR\n{}", roff(text));
    }
    s
}
