//! `tskeyctl decrypt` (and, later in this file, `encrypt` / `updatekeys`): sops-compatible
//! commands on top of [`crate::decode`] (opening a source) and [`crate::sops`] (the engine).

use std::path::PathBuf;

use clap::Args;

use super::{output_path, parse_format, write_stdout};
use crate::decode::{self, IfPlain, Kind, OpenOptions, Opened};
use crate::error::Error;
use crate::hostkey;
use crate::log;
use crate::sink::{self, Special, WriteOptions};
use crate::sops::encrypt as enc_spec;
use crate::sops::{self, Format, Identities, Sources};
use crate::source::{self, Origin};

/// Largest sops or age file read (a documented limit: larger inputs exit 65 before any
/// allocation of their size).
pub const SOPS_LIMIT: u64 = 64 << 20;

/// Decrypt a sops file (yaml, json, dotenv, ini, binary) or an age file.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl decrypt secrets.yaml                          # with /etc/ssh/ssh_host_ed25519_key\n  \
tskeyctl decrypt -i ~/.ssh/id_ed25519 secrets.yaml --extract '[\"db\"][\"password\"]'\n  \
tskeyctl decrypt secrets.yaml --key tailscale/authkey -o /run/secrets/ts\n  \
SOPS_AGE_KEY_FILE=keys.txt tskeyctl decrypt --output-type json secrets.env\n  \
tskeyctl decrypt -i /etc/ssh/ssh_host_ed25519_key secret.age\n\n\
Identities tried (all loaded, all tried): each -i FILE (an OpenSSH ed25519 key counts twice: \
converted to X25519 like ssh-to-age, and as a native ssh-ed25519 age identity), \
SOPS_AGE_SSH_PRIVATE_KEY_FILE, ~/.ssh/id_ed25519, SOPS_AGE_KEY, SOPS_AGE_KEY_FILE, the output of \
SOPS_AGE_KEY_CMD, $XDG_CONFIG_HOME/sops/age/keys.txt (~/.config/sops/age/keys.txt), then \
/etc/ssh/ssh_host_ed25519_key; -v names each source and what it gave. Passphrase-protected \
keys: TSKEYCTL_IDENTITY_PASSPHRASE or SSH_TO_AGE_PASSPHRASE.\n\n\
Inputs larger than 64 MiB are refused before they are read (exit 65).\n\n\
Exit codes: 65 malformed file or MAC mismatch, 66 missing input, 77 no identity opens the file.")]
pub struct DecryptArgs {
    /// The encrypted file; `-` is stdin.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Identity: an OpenSSH ed25519 private key or an age identity file (repeatable).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Write to FILE (atomically, mode 0600; an existing character device or FIFO is written
    /// into) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Input format (default: from the file name like sops: .yaml/.yml, .json, .env, .ini, else binary).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Output format (default: the input format).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    output_type: Option<Format>,
    /// Print only this part, sops syntax: '["a"]["b"]' or '["list"][0]'.
    #[arg(long, value_name = "PATH", conflicts_with = "key")]
    extract: Option<String>,
    /// Print only this key, sops-nix syntax: a/b.
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
    /// Do not verify the MAC (prints a warning).
    #[arg(long)]
    ignore_mac: bool,
}

/// The contract's identity sources: the `-i` files, then sops 3.11's (its ssh keys, then its
/// age keys), then the host key.
fn identity_sources(explicit: &[PathBuf]) -> Sources {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // Go's os.UserHomeDir / os.UserConfigDir on Linux: $HOME; $XDG_CONFIG_HOME when set and
    // absolute, else $HOME/.config.
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|x| !x.is_empty()) {
        Some(x) => Some(PathBuf::from(x)).filter(|p| p.is_absolute()),
        None => home.as_ref().map(|h| h.join(".config")),
    };
    Sources {
        explicit: explicit.to_vec(),
        // Zeroized when dropped (the process environment itself keeps its copy).
        sops_age_key: var("SOPS_AGE_KEY").map(zeroize::Zeroizing::new),
        sops_age_key_file: var("SOPS_AGE_KEY_FILE").map(PathBuf::from),
        ssh_key_file: var("SOPS_AGE_SSH_PRIVATE_KEY_FILE").map(PathBuf::from),
        ssh_default: home.map(|h| h.join(".ssh/id_ed25519")),
        key_cmd: var("SOPS_AGE_KEY_CMD"),
        default_key_file: config.map(|c| c.join("sops/age/keys.txt")),
        host_key: Some(PathBuf::from(hostkey::DEFAULT_KEY)),
        passphrase: var("TSKEYCTL_IDENTITY_PASSPHRASE").or_else(|| var("SSH_TO_AGE_PASSPHRASE")),
        cli: true,
    }
}

pub(crate) fn load_identities(explicit: &[PathBuf]) -> Result<Identities, Error> {
    let (ids, warnings) = Identities::load_strict(&identity_sources(explicit))?;
    for w in warnings {
        log::warn(w);
    }
    // One line per source, in the order tried (a fixed handful, plus the -i files).
    for line in ids.report() {
        log::info(format!("identity source {line}"));
    }
    log::debug(format!(
        "identities: {}",
        crate::log::bounded::list(&ids.recipients(), ", ")
    ));
    Ok(ids)
}

/// `decrypt -o`: mode 0600; a character device or FIFO at the target is written into, like
/// `sops -d > FILE` or `cat` would.
fn stream_opts() -> WriteOptions {
    WriteOptions {
        special: Special::WriteInto,
        ..WriteOptions::default()
    }
}

pub fn decrypt(a: DecryptArgs) -> Result<(), Error> {
    if let Some(p) = output_path(&a.output) {
        sink::preflight(p, &stream_opts())?;
    }
    let origin = Origin::from_arg(&a.file);
    let data = source::read_limited(&origin, SOPS_LIMIT, "a sops or age file")?;
    // Identities first: their warnings (and an unusable -i) come before anything about the file.
    let mut ids = Some(load_identities(&a.identity)?);
    // An explicit --input-type wins; otherwise an age header means an age file, and the
    // format comes from the name like sops (content sniffing only for names sops calls binary).
    let opts = OpenOptions {
        input_type: a.input_type,
        if_plain: IfPlain::ReadAsSops,
        ignore_mac: a.ignore_mac,
    };
    if (a.extract.is_some() || a.key.is_some()) && decode::kind(&origin, &data, &opts) == Kind::Age
    {
        return Err(Error::Usage(
            "--extract/--key apply to sops files; this is a plain age file".into(),
        ));
    }
    let out = match decode::open(&origin, data, &opts, &mut || {
        Ok::<_, Error>(ids.take().unwrap_or_default())
    })? {
        Opened::Sops(doc) => {
            let out_format = a.output_type.unwrap_or(doc.format());
            if let Some(x) = &a.extract {
                let path = sops::parse_extract(x)?;
                doc.extract(&path, out_format)?
            } else if let Some(k) = &a.key {
                doc.get(k)?
            } else {
                doc.render(out_format)?
            }
        }
        Opened::Age(plain) | Opened::Plain(plain) => plain,
    };
    match output_path(&a.output) {
        Some(p) => sink::write_atomic(p, &out, &stream_opts())?,
        None => write_stdout(&out)?,
    }
    Ok(())
}

/// Encrypt a file like `sops encrypt`, to age recipients.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl encrypt --age \"$(tskeyctl recipient),$(cat ~/.ssh/id_ed25519.pub)\" secrets.yaml \\\n      \
> secrets.enc.yaml\n  \
tskeyctl encrypt -i secrets/web1.yaml            # recipients from the nearest .sops.yaml\n  \
tskeyctl encrypt --encrypted-regex '^(data|stringData)$' --age \"$(tskeyctl recipient)\" k8s.yaml\n\n\
Recipients: --age, else the first matching creation_rules entry of the nearest .sops.yaml \
(path_regex, age, key_groups + shamir_threshold, *_regex / *_suffix, mac_only_encrypted). \
Output follows sops 3.11's layout (version 3.11.0).")]
pub struct EncryptArgs {
    /// The plaintext file; `-` is stdin (then --input-type is needed for non-binary input).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Comma-separated age recipients (age1… and ssh-ed25519 …); overrides .sops.yaml.
    #[arg(short = 'a', long = "age", value_name = "RECIPIENTS")]
    age: Option<String>,
    /// Use this config instead of the nearest .sops.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Write the result back to FILE.
    #[arg(short = 'i', long = "in-place", conflicts_with = "output")]
    in_place: bool,
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Input format (default: from the file name).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Output format (default: the input format).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    output_type: Option<Format>,
    /// Leave keys ending with this suffix unencrypted.
    #[arg(long, value_name = "SUFFIX")]
    unencrypted_suffix: Option<String>,
    /// Encrypt only keys ending with this suffix.
    #[arg(long, value_name = "SUFFIX")]
    encrypted_suffix: Option<String>,
    /// Leave keys matching this regex unencrypted.
    #[arg(long, value_name = "REGEX")]
    unencrypted_regex: Option<String>,
    /// Encrypt only keys matching this regex.
    #[arg(long, value_name = "REGEX")]
    encrypted_regex: Option<String>,
    /// Key groups needed to recover the data key (with key_groups in .sops.yaml).
    #[arg(long = "shamir-secret-sharing-threshold", value_name = "N")]
    shamir_threshold: Option<usize>,
    /// Compute the MAC over encrypted values only.
    #[arg(long)]
    mac_only_encrypted: bool,
}

/// Re-wrap the data key for the recipients of the current .sops.yaml rule (sops updatekeys).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl updatekeys -i ~/.ssh/id_ed25519 secrets/web1.yaml\n  \
tskeyctl updatekeys -y secrets/web1.yaml               # without asking\n\n\
The recipient changes are printed on stderr (+++ added, --- removed, per key group), then \
\"Is this okay? (y/n)\" is asked on stdin unless -y is given; with no answer (stdin closed or \
empty) nothing is written (exit 2). A file already up to date is not rewritten.")]
pub struct UpdatekeysArgs {
    /// The encrypted file (rewritten in place).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Identity that can open the file now (repeatable; defaults as for decrypt).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Use this config instead of the nearest .sops.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Input format (default: from the file name).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Apply the changes without asking.
    #[arg(short = 'y', long)]
    yes: bool,
}

fn format_of(origin: &Origin, explicit: Option<Format>) -> Format {
    explicit.unwrap_or_else(|| Format::of_origin(origin))
}

/// Writes an encrypted file (not secret): keeps an existing file's mode, else 0644. With
/// `special`, a character device or FIFO at `-o` is written into (never for `--in-place`).
pub(crate) fn write_encrypted(
    path: &std::path::Path,
    data: &[u8],
    special: Special,
) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644);
    let opts = WriteOptions {
        mode,
        allow_sticky_dir: true,
        special,
        ..WriteOptions::default()
    };
    sink::write_atomic(path, data, &opts)?;
    Ok(())
}

pub fn encrypt(a: EncryptArgs) -> Result<(), Error> {
    use crate::sops::encrypt::{self as enc, Spec};
    let origin = Origin::from_arg(&a.file);
    if a.in_place && origin == Origin::Stdin {
        return Err(Error::Usage("--in-place needs a file, not stdin".into()));
    }
    let plain = source::read_limited(&origin, SOPS_LIMIT, "a file to encrypt")?;
    let in_format = format_of(&origin, a.input_type);
    let out_format = a.output_type.unwrap_or(in_format);
    let mut spec = match &a.age {
        Some(list) => Spec {
            groups: vec![
                list.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
            ],
            ..Spec::default()
        },
        None => enc::spec_for(a.config.as_deref(), &a.file)?,
    };
    let flags = [
        ("unencrypted_suffix", &a.unencrypted_suffix),
        ("encrypted_suffix", &a.encrypted_suffix),
        ("unencrypted_regex", &a.unencrypted_regex),
        ("encrypted_regex", &a.encrypted_regex),
    ];
    let from_flags: Vec<(&'static str, String)> = flags
        .iter()
        .filter_map(|(n, v)| v.as_ref().map(|v| (*n, v.clone())))
        .collect();
    if !from_flags.is_empty() {
        spec.rule_fields = from_flags;
    }
    if let Some(t) = a.shamir_threshold {
        spec.shamir_threshold = t;
    }
    spec.mac_only_encrypted |= a.mac_only_encrypted;
    let out = enc::encrypt(&origin, &plain, in_format, out_format, &spec)?;
    if a.in_place {
        write_encrypted(&a.file, &out, Special::Refuse)
    } else {
        match output_path(&a.output) {
            Some(p) => write_encrypted(p, &out, Special::WriteInto),
            None => write_stdout(&out),
        }
    }
}

/// The recipient changes per key group, like sops's `PrettyPrintDiffs`, or `None` when the
/// file's groups already hold exactly the spec's recipients and threshold.
fn recipient_diff(md: &sops::metadata::Metadata, spec: &enc_spec::Spec) -> Option<String> {
    let old: Vec<Vec<String>> = md
        .groups
        .iter()
        .map(|g| {
            g.age
                .iter()
                .map(|k| k.recipient.clone())
                .chain(g.others.iter().cloned())
                .collect()
        })
        .collect();
    let new: Vec<Vec<String>> = spec
        .groups
        .iter()
        .filter(|g| !g.is_empty())
        .map(|g| g.iter().map(|r| r.trim().to_string()).collect())
        .collect();
    let threshold = if new.len() > 1 {
        if spec.shamir_threshold == 0 {
            new.len()
        } else {
            spec.shamir_threshold
        }
    } else {
        0
    };
    if old == new && (md.shamir_threshold == threshold || new.len() <= 1) {
        return None;
    }
    let mut out = String::new();
    if md.shamir_threshold != threshold && new.len() > 1 {
        out.push_str(&format!(
            "Shamir threshold: {} -> {threshold}\n",
            md.shamir_threshold
        ));
    }
    for i in 0..old.len().max(new.len()) {
        let (o, n) = (
            old.get(i).cloned().unwrap_or_default(),
            new.get(i).cloned().unwrap_or_default(),
        );
        out.push_str(&format!("Group {}\n", i + 1));
        for r in o.iter().filter(|r| n.contains(r)) {
            out.push_str(&format!("    {r}\n"));
        }
        for r in n.iter().filter(|r| !o.contains(r)) {
            out.push_str(&format!("+++ {r}\n"));
        }
        for r in o.iter().filter(|r| !n.contains(r)) {
            out.push_str(&format!("--- {r}\n"));
        }
    }
    Some(out)
}

/// sops's "Is this okay? (y/n)" on stdin: `Some(answer)`, or `None` when stdin gives none.
fn ask_yes_no() -> Result<Option<bool>, Error> {
    use std::io::BufRead;
    let mut stdin = std::io::stdin().lock();
    loop {
        eprint!("Is this okay? (y/n):");
        let mut line = String::new();
        match stdin.read_line(&mut line) {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => match line.trim() {
                "y" => return Ok(Some(true)),
                "n" => return Ok(Some(false)),
                _ => {}
            },
        }
    }
}

pub fn updatekeys(a: UpdatekeysArgs) -> Result<(), Error> {
    use crate::sops::encrypt as enc;
    let origin = Origin::File(a.file.clone());
    let data = source::read_limited(&origin, SOPS_LIMIT, "a sops file")?;
    let format = format_of(&origin, a.input_type);
    let spec = enc::spec_for(a.config.as_deref(), &a.file)?;
    // An unusable -i is said before anything is asked.
    let ids = load_identities(&a.identity)?;
    let loaded = sops::load_encrypted(&origin, &data, format)?;
    let Some(diff) = recipient_diff(&loaded.metadata, &spec) else {
        log::notice(format!("{origin}: already up to date"));
        return Ok(());
    };
    if log::level() >= 0 || !a.yes {
        eprint!("The following changes will be made to the file's groups:\n{diff}");
    }
    if !a.yes {
        match ask_yes_no()? {
            Some(true) => {}
            Some(false) => {
                log::notice(format!("{origin}: left unchanged"));
                return Ok(());
            }
            None => {
                return Err(Error::Usage(format!(
                    "{origin}: no answer to \"Is this okay? (y/n)\" on stdin; nothing written (pass -y to apply without asking)"
                )));
            }
        }
    }
    let out = enc::updatekeys(&origin, &data, format, &ids, &spec)?;
    write_encrypted(&a.file, &out, Special::Refuse)?;
    log::notice(format!(
        "{origin}: synced with new keys ({} key group(s))",
        spec.groups.iter().filter(|g| !g.is_empty()).count()
    ));
    Ok(())
}
