//! `tskeyctl edit`, `set` and `unset`: changing an encrypted file without Go sops.
//!
//! `edit` shows the plaintext to `$SOPS_EDITOR`, else `$EDITOR` (split like a shell would, as
//! sops does), else the first of vim, nano, vi found; the plaintext lives only in a 0600 file
//! inside a fresh 0700 directory that is removed as soon as the editor exits (and when a
//! SIGTERM or SIGHUP ends the run). The file is written again only when the plaintext changed,
//! with its own data key ([`crate::sops::edit`]). `set`/`unset` change one index the same way.

use std::io::IsTerminal;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use clap::Args;
use zeroize::Zeroizing;

use super::parse_format;
use super::sops::{SOPS_LIMIT, load_identities, write_encrypted};
use crate::error::Error;
use crate::log;
use crate::sink::Special;
use crate::sops::edit::{Editable, json_value};
use crate::sops::{self, Format};
use crate::source::{self, Origin};

/// Edit an encrypted file in your editor, like `sops edit`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl edit secrets/web1.yaml\n  \
EDITOR='code --wait' tskeyctl edit -i ~/.ssh/id_ed25519 secrets/web1.yaml\n\n\
Editor: $SOPS_EDITOR, else $EDITOR (split like a shell would), else vim, nano or vi. The \
plaintext is only in a 0600 file in a private 0700 directory under $TMPDIR, removed when the \
editor exits. Unchanged: \"file has not changed\", exit 0, file untouched. Changed: encrypted \
again with the same data key, MAC and lastmodified updated, written atomically. An edit that \
no longer parses is refused: on a terminal, press enter to edit again; otherwise the file is \
left as it was (exit 65). A file that does not exist yet is \
created with the recipients of the nearest .sops.yaml rule, as encrypt does.")]
pub struct EditArgs {
    /// The encrypted file (created when missing).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Identity that can open the file (repeatable; defaults as for decrypt).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Use this config for a new file instead of the nearest .sops.yaml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Input format (default: from the file name).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Do not verify the MAC before editing.
    #[arg(long)]
    ignore_mac: bool,
}

/// Set one value of an encrypted file, like `sops set`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
tskeyctl set secrets.yaml '[\"db\"][\"user\"]' '\"admin\"'\n  \
tskeyctl set secrets.yaml '[\"list\"][0]' '{\"a\": true}'\n  \
printf '\"%s\"' \"$TOKEN\" | tskeyctl set --value-stdin secrets.yaml '[\"token\"]'\n  \
tskeyctl set --value-file secrets.yaml '[\"tls\"]' value.json\n\n\
VALUE is JSON (a string needs its quotes). The command line is visible to every user of the \
host (ps, /proc): give secrets with --value-stdin or --value-file; a VALUE that looks like a \
key (tskey-…, AGE-SECRET-KEY-…, a PEM block) is refused on the command line (exit 2).")]
pub struct SetArgs {
    /// The encrypted file (rewritten in place).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where, sops syntax: '["a"]["b"]', '["list"][0]'.
    #[arg(value_name = "INDEX")]
    index: String,
    /// The JSON value (with --value-file: the file holding it; omitted with --value-stdin).
    #[arg(value_name = "VALUE", required_unless_present = "value_stdin")]
    value: Option<String>,
    /// VALUE names a file holding the JSON value.
    #[arg(long, conflicts_with = "value_stdin")]
    value_file: bool,
    /// Read the JSON value from stdin.
    #[arg(long)]
    value_stdin: bool,
    /// Do not rewrite the file when the index already holds the value.
    #[arg(long)]
    idempotent: bool,
    /// Identity that can open the file (repeatable; defaults as for decrypt).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Input format (default: from the file name).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Do not verify the MAC.
    #[arg(long)]
    ignore_mac: bool,
}

/// Remove one value from an encrypted file, like `sops unset`.
#[derive(Args, Debug)]
#[command(after_help = "Example:\n  tskeyctl unset secrets.yaml '[\"db\"][\"password\"]'")]
pub struct UnsetArgs {
    /// The encrypted file (rewritten in place).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Where, sops syntax: '["a"]["b"]', '["list"][0]'.
    #[arg(value_name = "INDEX")]
    index: String,
    /// Succeed without rewriting when the index does not exist.
    #[arg(long)]
    idempotent: bool,
    /// Identity that can open the file (repeatable; defaults as for decrypt).
    #[arg(short = 'i', long = "identity", value_name = "FILE")]
    identity: Vec<PathBuf>,
    /// Input format (default: from the file name).
    #[arg(long, value_name = "yaml|json|dotenv|ini|binary", value_parser = parse_format)]
    input_type: Option<Format>,
    /// Do not verify the MAC.
    #[arg(long)]
    ignore_mac: bool,
}

fn open(
    file: &Path,
    input_type: Option<Format>,
    identity: &[PathBuf],
    ignore_mac: bool,
) -> Result<Editable, Error> {
    let origin = Origin::File(file.to_path_buf());
    let data = source::read_limited(&origin, SOPS_LIMIT, "a sops file")?;
    let format = input_type.unwrap_or_else(|| Format::of_origin(&origin));
    let ids = load_identities(identity)?;
    Ok(Editable::open(&origin, &data, format, &ids, ignore_mac)?)
}

pub fn set(a: SetArgs) -> Result<(), Error> {
    let path = sops::parse_extract(&a.index)?;
    if path.is_empty() {
        return Err(Error::Usage("set: INDEX names nothing".into()));
    }
    let text: Zeroizing<Vec<u8>> = if a.value_stdin {
        if a.value.is_some() {
            return Err(Error::Usage(
                "set --value-stdin takes FILE and INDEX only (the value comes from stdin)".into(),
            ));
        }
        source::read_limited(&Origin::Stdin, SOPS_LIMIT, "a JSON value")?
    } else if a.value_file {
        let p = PathBuf::from(a.value.as_deref().unwrap_or_default());
        source::read_limited(&Origin::File(p), SOPS_LIMIT, "a JSON value")?
    } else {
        let v = a.value.as_deref().unwrap_or_default();
        let unquoted = v.trim().trim_matches('"');
        if source::looks_like_secret(std::ffi::OsStr::new(unquoted)) {
            return Err(Error::Usage(
                "set: VALUE looks like a secret key, and the command line is visible to every \
user of this host (ps, /proc); give it with --value-stdin or --value-file"
                    .into(),
            ));
        }
        Zeroizing::new(v.as_bytes().to_vec())
    };
    let value = json_value(&text)?;
    let mut doc = open(&a.file, a.input_type, &a.identity, a.ignore_mac)?;
    let changed = doc.set(&path, value)?;
    if !changed && a.idempotent {
        log::notice(format!(
            "{}: {} already holds this value; file not written",
            a.file.display(),
            a.index
        ));
        return Ok(());
    }
    let out = doc.seal()?;
    write_encrypted(&a.file, &out, Special::Refuse)?;
    log::notice(format!("{}: set {}", a.file.display(), a.index));
    Ok(())
}

pub fn unset(a: UnsetArgs) -> Result<(), Error> {
    let path = sops::parse_extract(&a.index)?;
    if path.is_empty() {
        return Err(Error::Usage("unset: INDEX names nothing".into()));
    }
    let mut doc = open(&a.file, a.input_type, &a.identity, a.ignore_mac)?;
    match doc.unset(&path) {
        Ok(()) => {}
        Err(crate::sops::edit::ChangeError::NotFound { .. }) if a.idempotent => {
            log::notice(format!(
                "{}: {} is not there; file not written",
                a.file.display(),
                a.index
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let out = doc.seal()?;
    write_encrypted(&a.file, &out, Special::Refuse)?;
    log::notice(format!("{}: removed {}", a.file.display(), a.index));
    Ok(())
}

pub fn edit(a: EditArgs) -> Result<(), Error> {
    let origin = Origin::File(a.file.clone());
    let format = a.input_type.unwrap_or_else(|| Format::of_origin(&origin));
    let exists = std::fs::symlink_metadata(&a.file).is_ok();
    let (doc, new_spec) = if exists {
        (
            Some(open(&a.file, a.input_type, &a.identity, a.ignore_mac)?),
            None,
        )
    } else {
        // Like sops: the rule is found before the editor opens.
        let spec = crate::sops::encrypt::spec_for(a.config.as_deref(), &a.file)?;
        (None, Some(spec))
    };
    let before = match &doc {
        Some(d) => d.plain()?,
        None => Zeroizing::new(Vec::new()),
    };
    let name = a
        .file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "file".into());
    let mut doc = doc;
    let mut accept = |after: &[u8]| -> Result<(), Error> {
        match &mut doc {
            Some(d) => d.replace(after).map_err(Error::from),
            None => sops::load_plain(&origin, after, format)
                .map(drop)
                .map_err(|e| {
                    crate::sops::edit::ChangeError::Unparsable {
                        origin: origin.clone(),
                        format,
                        reason: e.to_string(),
                    }
                    .into()
                }),
        }
    };
    let Some(after) = run_editor(&name, &before, &mut accept)? else {
        log::notice(format!("{}: file has not changed", a.file.display()));
        return Ok(());
    };
    let out = match (doc, new_spec) {
        (Some(d), _) => d.seal()?,
        (None, Some(spec)) => {
            crate::sops::encrypt::encrypt(&origin, &after, format, format, &spec)?
        }
        (None, None) => return Err(Error::Usage("nothing to edit".into())),
    };
    write_encrypted(&a.file, &out, Special::Refuse)?;
    log::notice(format!(
        "{}: {}",
        a.file.display(),
        if exists { "saved" } else { "created" }
    ));
    Ok(())
}

/// The private directory holding the plaintext; removed when dropped.
struct Private {
    dir: PathBuf,
}

impl Drop for Private {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The editor command line: `$SOPS_EDITOR`, `$EDITOR` (shell-split), else vim, nano or vi.
fn editor_command() -> Result<Vec<String>, Error> {
    for var in ["SOPS_EDITOR", "EDITOR"] {
        let Ok(v) = std::env::var(var) else { continue };
        if v.is_empty() {
            continue;
        }
        return match shlex::split(&v) {
            Some(parts) if !parts.is_empty() => Ok(parts),
            _ => Err(Error::Editor(format!(
                "${var} cannot be split into a command line: {}",
                log::bounded::clip(&v, 200)
            ))),
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["vim", "nano", "vi"] {
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return Ok(vec![dir.join(name).to_string_lossy().into_owned()]);
            }
        }
    }
    Err(Error::Editor(
        "no editor: set SOPS_EDITOR or EDITOR, or install vim, nano or vi".into(),
    ))
}

/// Runs the editor on a private copy of `plain` until `accept` takes what it left there
/// (`None`: left unchanged). An edit `accept` refuses ends the run, unless stdin is a terminal:
/// then, like sops, the editor can be opened again. SIGINT is left to the editor (it shares the
/// terminal); SIGTERM and SIGHUP are passed on to it, the private directory removed, and the run
/// ended.
fn run_editor(
    name: &std::ffi::OsStr,
    plain: &[u8],
    accept: &mut dyn FnMut(&[u8]) -> Result<(), Error>,
) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    use nix::sys::signal::{SigSet, Signal};
    let argv = editor_command()?;
    let template = std::env::temp_dir().join("tskeyctl-edit.XXXXXX");
    let dir = nix::unistd::mkdtemp(&template).map_err(|e| {
        Error::EditorTemp(format!(
            "cannot create a private directory in {}: {e}",
            std::env::temp_dir().display()
        ))
    })?;
    let private = Arc::new(Mutex::new(Some(Private { dir: dir.clone() })));
    let tmp = dir.join(name);
    let temp_err =
        |e: std::io::Error| Error::EditorTemp(format!("cannot write {}: {e}", tmp.display()));
    // On an error here `private` is dropped with its last owner: the directory goes too.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(plain).and_then(|()| f.sync_all()))
        .map_err(temp_err)?;

    let mut signals = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
    ] {
        signals.add(s);
    }
    // Blocked here, taken by the watcher below; the editor starts with an empty mask (std
    // resets it in the child).
    signals
        .thread_block()
        .map_err(|e| Error::Editor(format!("cannot block signals: {e}")))?;
    let child_pid = Arc::new(Mutex::new(None::<i32>));
    let prompting = Arc::new(AtomicBool::new(false));
    {
        let private = Arc::clone(&private);
        let child_pid = Arc::clone(&child_pid);
        let prompting = Arc::clone(&prompting);
        std::thread::spawn(move || {
            loop {
                let Ok(sig) = signals.wait() else { return };
                // Left to the editor, which shares the terminal; at the re-edit prompt, Ctrl+C
                // gives up.
                if matches!(sig, Signal::SIGINT | Signal::SIGQUIT)
                    && !prompting.load(Ordering::SeqCst)
                {
                    continue;
                }
                // Held until the exit: the main thread waits on it after the editor.
                let mut gate = private.lock().unwrap_or_else(|p| p.into_inner());
                if let Ok(pid) = child_pid.lock() {
                    if let Some(pid) = *pid {
                        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
                    }
                }
                gate.take();
                eprintln!("tskeyctl: edit: ended by {sig}; the file was not changed");
                std::process::exit(128 + sig as i32);
            }
        });
    }
    let result = loop {
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).arg(&tmp);
        let status = match cmd.spawn() {
            Ok(mut child) => {
                if let Ok(mut pid) = child_pid.lock() {
                    *pid = Some(child.id() as i32);
                }
                child.wait()
            }
            Err(e) => Err(e),
        };
        // The watcher holds this lock from a SIGTERM to the end of the process: taking it
        // here means no signal ended the run (or waits for that end).
        let gate = private.lock().unwrap_or_else(|p| p.into_inner());
        let edited = match status {
            Err(e) => Err(Error::Editor(format!(
                "cannot run the editor {}: {e}",
                argv[0]
            ))),
            Ok(st) if !st.success() => Err(Error::Editor(format!(
                "the editor {} exited with {st}; the file was not changed",
                argv[0]
            ))),
            Ok(_) => {
                source::read_limited(&Origin::File(tmp.clone()), SOPS_LIMIT, "the edited file")
                    .map_err(Error::from)
            }
        };
        let after = match edited {
            Err(e) => break Err(e),
            Ok(after) if *after == *plain => break Ok(None),
            Ok(after) => after,
        };
        match accept(&after) {
            Ok(()) => break Ok(Some(after)),
            Err(e) if std::io::stdin().is_terminal() => {
                // Like sops: say why, and offer the editor again (Ctrl+C gives up).
                drop(gate);
                eprintln!("tskeyctl: error: {}", log::bounded::cap(&e.to_string()));
                eprint!("Press enter to return to the editor, or Ctrl+C to exit.");
                prompting.store(true, Ordering::SeqCst);
                let mut line = String::new();
                let answered = std::io::stdin().read_line(&mut line);
                prompting.store(false, Ordering::SeqCst);
                if !matches!(answered, Ok(n) if n > 0) {
                    break Err(e);
                }
            }
            Err(e) => break Err(e),
        }
    };
    private.lock().unwrap_or_else(|p| p.into_inner()).take();
    result
}
