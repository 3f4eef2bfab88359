//! Command-line interface: flag definitions (the single source of `--help`), and `main` → `run`
//! → exit code.
//!
//! Parsing is clap's; each command lives in its own file and returns `Result<(), Error>`. Errors
//! are printed once, here, as `tskeyctl: error: …`, and turned into the exit code by
//! [`Error::exit_code`]. A closed stdout pipe (`tskeyctl recipient | head -c0`) is not an error.

mod doctor;
mod edit;
mod generate;
mod install;
mod keys;
mod manual;
pub mod mint;
mod paths;
mod provision;
mod sops;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, code};
use crate::{harden, log};

/// `--input-type` / `--output-type` values, for every command that takes them.
pub(crate) fn parse_format(s: &str) -> Result<crate::sops::Format, String> {
    crate::sops::Format::parse(s)
        .ok_or_else(|| format!("unknown format {s:?} (yaml, json, dotenv, ini, binary)"))
}

#[derive(Parser, Debug)]
#[command(
    name = "tskeyctl",
    version,
    about = "Tailscale auth keys from secrets encrypted to the host's SSH key",
    long_about = "Decrypts sops/age files with the host's own /etc/ssh/ssh_host_ed25519_key, mints \
short-lived Tailscale auth keys from OAuth or API-key material, and writes them atomically (0600) \
into /run/secrets.",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command takes.
#[derive(Args, Debug)]
struct Global {
    /// Print only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More detail on stderr (repeatable). Never prints secrets.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Command {
    Provision(provision::ProvisionArgs),
    Revoke(provision::RevokeArgs),
    Status(status::StatusArgs),
    Doctor(doctor::DoctorArgs),
    Mint(mint::MintArgs),
    Decrypt(sops::DecryptArgs),
    Encrypt(sops::EncryptArgs),
    Updatekeys(sops::UpdatekeysArgs),
    Edit(edit::EditArgs),
    Set(edit::SetArgs),
    Unset(edit::UnsetArgs),
    Install(install::InstallArgs),
    Recipient(keys::RecipientArgs),
    Identity(keys::IdentityArgs),
    Generate(generate::GenerateArgs),
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let warnings = harden::process();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match parse(&args) {
        Ok(cli) => cli,
        Err(Parse::Secret(e)) => {
            eprintln!("tskeyctl: error: {e}");
            return ExitCode::from(e.exit_code());
        }
        Err(Parse::Clap(e)) => {
            let text = e.render().to_string();
            let redacted = paths::redact(&text, &args);
            if redacted == text {
                let _ = e.print();
            } else {
                eprint!("{redacted}");
            }
            return ExitCode::from(if e.use_stderr() {
                code::USAGE
            } else {
                code::OK
            });
        }
    };
    log::set_level(if cli.global.quiet {
        -1
    } else {
        cli.global.verbose.min(4) as i8
    });
    for w in warnings {
        log::debug(w);
    }
    match run(cli.command) {
        Ok(code) => code,
        Err(Error::Stdout(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::from(code::OK)
        }
        Err(e) => {
            eprintln!(
                "tskeyctl: error: {}",
                crate::log::bounded::cap(&e.to_string())
            );
            ExitCode::from(e.exit_code())
        }
    }
}

enum Parse {
    /// Clap's own error (or `--help` / `--version`).
    Clap(clap::Error),
    /// A secret where a path belongs.
    Secret(Error),
}

/// Clap's parse, then the path check on the raw matches.
fn parse(args: &[std::ffi::OsString]) -> Result<Cli, Parse> {
    let mut cmd = definition().after_help(manual::help());
    let mut m = cmd.try_get_matches_from_mut(args).map_err(Parse::Clap)?;
    // Before anything is logged or read: no secret where a path belongs.
    paths::check(&cmd, &m).map_err(Parse::Secret)?;
    <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut m)
        .map_err(|e| Parse::Clap(e.format(&mut cmd)))
}

/// The command-line definition (`--help` adds [`manual::help`]; the man page renders the same
/// tables as its own sections).
fn definition() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn run(command: Command) -> Result<ExitCode, Error> {
    let ok = |r: Result<(), Error>| r.map(|()| ExitCode::from(code::OK));
    match command {
        Command::Recipient(a) => ok(keys::recipient(a)),
        Command::Identity(a) => ok(keys::identity(a)),
        Command::Status(a) => status::status(a),
        Command::Doctor(a) => doctor::doctor(a),
        Command::Mint(a) => ok(mint::mint(a)),
        Command::Provision(a) => ok(provision::provision(a)),
        Command::Revoke(a) => ok(provision::revoke(a)),
        Command::Decrypt(a) => ok(sops::decrypt(a)),
        Command::Encrypt(a) => ok(sops::encrypt(a)),
        Command::Updatekeys(a) => ok(sops::updatekeys(a)),
        Command::Edit(a) => ok(edit::edit(a)),
        Command::Set(a) => ok(edit::set(a)),
        Command::Unset(a) => ok(edit::unset(a)),
        Command::Install(a) => ok(install::install(a)),
        Command::Generate(a) => ok(generate::generate(a, definition())),
    }
}

/// Writes `bytes` to stdout and flushes.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(Error::Stdout)
}

/// An `-o FILE` or standard output: `-`, `/dev/stdout`, `/dev/fd/1` and `/proc/self/fd/1` all
/// mean standard output (written to fd 1, never by replacing the link in `/dev`).
pub(crate) fn output_path(o: &Option<PathBuf>) -> Option<&PathBuf> {
    o.as_ref().filter(|p| {
        !["-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"]
            .contains(&p.as_os_str().to_str().unwrap_or(""))
    })
}
